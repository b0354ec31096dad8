"""``/api/v1/atms``: terminals, their dialect, cassettes and contract."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from atm_service.api.deps import FleetEditor, FleetReader, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.models.fleet import AtmCreate, AtmPublic, AtmStatus, AtmUpdate
from atm_service.services import fleet

router = APIRouter(prefix="/atms", tags=["fleet"], responses=problems(401, 403))


@router.get("", response_model=Page[AtmPublic], summary="List ATMs")
def list_atms(
    session: SessionDep,
    _user: FleetReader,
    site_id: DbId | None = None,
    region: str | None = None,
    status: AtmStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AtmPublic]:
    atms, total = fleet.list_atms(
        session, site_id=site_id, region=region, status=status, limit=limit, offset=offset
    )
    return Page(items=atms, total=total, limit=limit, offset=offset)


@router.post(
    "",
    response_model=AtmPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Register an ATM with its cassettes",
    responses=problems(409, 422),
)
def create_atm(data: AtmCreate, session: SessionDep, now: NowDep, _user: FleetEditor) -> AtmPublic:
    return fleet.create_atm(session, data=data, now=now)


@router.get("/{atm_id}", response_model=AtmPublic, summary="Get an ATM", responses=problems(404))
def get_atm(atm_id: DbId, session: SessionDep, _user: FleetReader) -> AtmPublic:
    return fleet.get_atm_public(session, atm_id=atm_id)


@router.patch(
    "/{atm_id}",
    response_model=AtmPublic,
    summary="Change an ATM; a cassettes list replaces the configuration",
    responses=problems(404, 409, 422),
)
def update_atm(
    atm_id: DbId, data: AtmUpdate, session: SessionDep, now: NowDep, _user: FleetEditor
) -> AtmPublic:
    return fleet.update_atm(session, atm_id=atm_id, data=data, now=now)


@router.delete(
    "/{atm_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an ATM",
    responses=problems(404, 409),
)
def delete_atm(atm_id: DbId, session: SessionDep, _user: FleetEditor) -> Response:
    fleet.delete_atm(session, atm_id=atm_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
