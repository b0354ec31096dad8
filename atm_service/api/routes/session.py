"""``/api/v1/session``: log in and out from API clients, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from atm_service.api.deps import AddressDep, AnyUser, AuthDep, ContextDep, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.models.users import UserPublic
from atm_service.security.cookies import clear_session_cookie, set_session_cookie
from atm_service.services import auth

router = APIRouter(prefix="/session", tags=["session"])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SessionInfo(BaseModel):
    user: UserPublic
    csrf_token: str = Field(description="Send as X-CSRF-Token on POST, PATCH, PUT and DELETE")


@router.post(
    "",
    response_model=SessionInfo,
    summary="Log in; sets the session cookie",
    responses=problems(401, 422, 423, 429),
)
def login(
    credentials: Credentials,
    response: Response,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    address: AddressDep,
) -> SessionInfo:
    grant = auth.login(
        session,
        settings=context.settings,
        passwords=context.passwords,
        username=credentials.username,
        password=credentials.password,
        address=address,
        now=now,
    )
    set_session_cookie(response, context, grant)
    return SessionInfo(user=UserPublic.model_validate(grant.user), csrf_token=grant.csrf_token)


@router.get(
    "", response_model=SessionInfo, summary="The logged-in user", responses=problems(401, 403)
)
def current(found: AuthDep, _user: AnyUser) -> SessionInfo:
    return SessionInfo(
        user=UserPublic.model_validate(found.user), csrf_token=found.session.csrf_token
    )


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out",
    responses=problems(401, 403),
)
def logout(found: AuthDep, _user: AnyUser, context: ContextDep, session: SessionDep) -> Response:
    auth.logout(session, token=found.token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response, context)
    return response
