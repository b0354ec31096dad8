"""``/api/v1/engineers``: engineers' skills, regions, shifts and locations."""

from __future__ import annotations

from fastapi import APIRouter, status

from atm_service.api.deps import (
    CurrentEngineer,
    Dispatcher,
    EngineerUser,
    NowDep,
    SessionDep,
)
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.models.engineers import (
    EngineerCreate,
    EngineerPublic,
    EngineerUpdate,
    LocationIn,
)
from atm_service.services import engineers

router = APIRouter(prefix="/engineers", tags=["dispatch"], responses=problems(401, 403))


@router.get("", response_model=Page[EngineerPublic], summary="List engineers with their load")
def list_engineers(
    session: SessionDep,
    _user: Dispatcher,
    region: str | None = None,
    active: bool | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[EngineerPublic]:
    found, total = engineers.list_engineers(
        session, region=region, active=active, limit=limit, offset=offset
    )
    return Page(items=engineers.to_public(session, found), total=total, limit=limit, offset=offset)


@router.post(
    "",
    response_model=EngineerPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Give a user with the engineer role a dispatch profile",
    responses=problems(409, 422),
)
def create_engineer(
    data: EngineerCreate, session: SessionDep, now: NowDep, _user: Dispatcher
) -> EngineerPublic:
    engineer = engineers.create_engineer(session, data=data, now=now)
    return engineers.to_public(session, [engineer])[0]


@router.get("/me", response_model=EngineerPublic, summary="My own profile", responses=problems(404))
def my_profile(
    session: SessionDep, _user: EngineerUser, engineer: CurrentEngineer
) -> EngineerPublic:
    return engineers.to_public(session, [engineer])[0]


@router.put(
    "/me/location",
    response_model=EngineerPublic,
    summary="Where I am now (travel estimates start here)",
    responses=problems(404, 422),
)
def set_my_location(
    location: LocationIn,
    session: SessionDep,
    now: NowDep,
    _user: EngineerUser,
    engineer: CurrentEngineer,
) -> EngineerPublic:
    updated = engineers.set_location(session, engineer=engineer, location=location, now=now)
    return engineers.to_public(session, [updated])[0]


@router.get(
    "/{engineer_id}",
    response_model=EngineerPublic,
    summary="Get an engineer",
    responses=problems(404),
)
def get_engineer(engineer_id: DbId, session: SessionDep, _user: Dispatcher) -> EngineerPublic:
    return engineers.to_public(session, [engineers.get_engineer(session, engineer_id=engineer_id)])[
        0
    ]


@router.patch(
    "/{engineer_id}",
    response_model=EngineerPublic,
    summary="Change an engineer's skills, region, shift, location or activity",
    responses=problems(404, 422),
)
def update_engineer(
    engineer_id: DbId, data: EngineerUpdate, session: SessionDep, now: NowDep, _user: Dispatcher
) -> EngineerPublic:
    engineer = engineers.update_engineer(session, engineer_id=engineer_id, data=data, now=now)
    return engineers.to_public(session, [engineer])[0]
