"""``/api/v1/sites``: where ATMs stand."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from atm_service.api.deps import FleetEditor, FleetReader, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.models.fleet import SiteCreate, SitePublic, SiteUpdate
from atm_service.services import fleet

router = APIRouter(prefix="/sites", tags=["fleet"], responses=problems(401, 403))


@router.get("", response_model=Page[SitePublic], summary="List sites")
def list_sites(
    session: SessionDep,
    _user: FleetReader,
    region: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[SitePublic]:
    sites, total = fleet.list_sites(session, region=region, limit=limit, offset=offset)
    return Page(
        items=[SitePublic.model_validate(site) for site in sites],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "",
    response_model=SitePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a site",
    responses=problems(409, 422),
)
def create_site(
    data: SiteCreate, session: SessionDep, now: NowDep, _user: FleetEditor
) -> SitePublic:
    return SitePublic.model_validate(fleet.create_site(session, data=data, now=now))


@router.get("/{site_id}", response_model=SitePublic, summary="Get a site", responses=problems(404))
def get_site(site_id: DbId, session: SessionDep, _user: FleetReader) -> SitePublic:
    return SitePublic.model_validate(fleet.get_site(session, site_id=site_id))


@router.patch(
    "/{site_id}",
    response_model=SitePublic,
    summary="Change a site",
    responses=problems(404, 409, 422),
)
def update_site(
    site_id: DbId, data: SiteUpdate, session: SessionDep, now: NowDep, _user: FleetEditor
) -> SitePublic:
    return SitePublic.model_validate(
        fleet.update_site(session, site_id=site_id, data=data, now=now)
    )


@router.delete(
    "/{site_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a site without ATMs",
    responses=problems(404, 409),
)
def delete_site(site_id: DbId, session: SessionDep, _user: FleetEditor) -> Response:
    fleet.delete_site(session, site_id=site_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
