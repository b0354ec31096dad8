"""The latest state of each ATM: status, counters, last seen, ingest lag."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from atm_service.api.deps import ContextDep, FleetReader, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.models.devices import AtmStatePublic
from atm_service.services import fleet_state

router = APIRouter(tags=["fleet"], responses=problems(401, 403))


@router.get(
    "/fleet/state",
    response_model=Page[AtmStatePublic],
    summary="Every ATM's latest reported state",
)
def list_states(
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    _user: FleetReader,
    region: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AtmStatePublic]:
    states, total = fleet_state.list_states(
        session,
        now=now,
        offline_after=timedelta(seconds=context.settings.device_offline_after_s),
        region=region,
        limit=limit,
        offset=offset,
    )
    return Page(items=states, total=total, limit=limit, offset=offset)


@router.get(
    "/atms/{atm_id}/state",
    response_model=AtmStatePublic,
    summary="One ATM's latest reported state",
    responses=problems(404),
)
def get_state(
    atm_id: DbId, session: SessionDep, context: ContextDep, now: NowDep, _user: FleetReader
) -> AtmStatePublic:
    return fleet_state.get_state(
        session,
        atm_id=atm_id,
        now=now,
        offline_after=timedelta(seconds=context.settings.device_offline_after_s),
    )
