"""``/api/v1/users``: accounts and roles (administrators only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from atm_service.api.deps import Admin, ContextDep, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.models.users import Role, UserCreate, UserPublic, UserUpdate
from atm_service.services import users

router = APIRouter(prefix="/users", tags=["users"], responses=problems(401, 403))


@router.get("", response_model=Page[UserPublic], summary="List users")
def list_users(
    session: SessionDep,
    _user: Admin,
    role: Role | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[UserPublic]:
    found, total = users.list_users(session, role=role, limit=limit, offset=offset)
    return Page(
        items=[UserPublic.model_validate(u) for u in found], total=total, limit=limit, offset=offset
    )


@router.post(
    "",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user",
    responses=problems(409, 422),
)
def create_user(
    data: UserCreate, session: SessionDep, context: ContextDep, now: NowDep, _user: Admin
) -> UserPublic:
    user = users.create_user(session, data=data, passwords=context.passwords, now=now)
    return UserPublic.model_validate(user)


@router.get("/{user_id}", response_model=UserPublic, summary="Get a user", responses=problems(404))
def get_user(user_id: DbId, session: SessionDep, _user: Admin) -> UserPublic:
    return UserPublic.model_validate(users.get_user(session, user_id=user_id))


@router.patch(
    "/{user_id}",
    response_model=UserPublic,
    summary="Change a user (role, name, password, active); ends their sessions where needed",
    responses=problems(404, 422),
)
def update_user(
    user_id: DbId,
    data: UserUpdate,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    _user: Admin,
) -> UserPublic:
    user = users.update_user(
        session, user_id=user_id, data=data, passwords=context.passwords, now=now
    )
    return UserPublic.model_validate(user)


@router.post(
    "/{user_id}/unlock",
    response_model=UserPublic,
    summary="Lift a lock after failed logins",
    responses=problems(404),
)
def unlock_user(user_id: DbId, session: SessionDep, _user: Admin) -> UserPublic:
    return UserPublic.model_validate(users.unlock_user(session, user_id=user_id))
