"""``/api/v1/atms/{atm_id}/device-...``: feed a device signal to the dispatch rules by hand.

For dispatchers and administrators: replay what an ATM reported (a call from
the branch, a test of the rules, a demo). The rules are the same ones device
ingest calls after storing what the agents upload.
"""

from __future__ import annotations

from fastapi import APIRouter

from atm_service.api.deps import ContextDep, Dispatcher, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.params import DbId
from atm_service.models.device_signals import CashUnit, DeviceEvent, DeviceStatus
from atm_service.models.tasks import SignalResult
from atm_service.services import dispatch_rules, tasks

router = APIRouter(prefix="/atms", tags=["dispatch"], responses=problems(401, 403))


@router.post(
    "/{atm_id}/device-events",
    response_model=SignalResult,
    summary="Apply a device event (fault, recovery, threshold, safe door, service mode)",
    responses=problems(404, 422),
)
def post_event(
    atm_id: DbId,
    event: DeviceEvent,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    _user: Dispatcher,
) -> SignalResult:
    task = dispatch_rules.on_device_event(
        session,
        atm_id=atm_id,
        event=event.model_dump(mode="json"),
        now=now,
        road_speed_kmh=context.settings.dispatch_road_speed_kmh,
    )
    return SignalResult(tasks=tasks.publics(session, [task] if task else [], now=now))


@router.post(
    "/{atm_id}/device-status",
    response_model=SignalResult,
    summary="Apply a device status snapshot",
    responses=problems(404, 422),
)
def post_status(
    atm_id: DbId,
    status: DeviceStatus,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    _user: Dispatcher,
) -> SignalResult:
    touched = dispatch_rules.on_device_status(
        session,
        atm_id=atm_id,
        status=status.model_dump(mode="json"),
        now=now,
        road_speed_kmh=context.settings.dispatch_road_speed_kmh,
    )
    return SignalResult(tasks=tasks.publics(session, touched, now=now))


@router.post(
    "/{atm_id}/cash-units",
    response_model=SignalResult,
    summary="Apply an XFS cash-unit report",
    responses=problems(404, 422),
)
def post_cash_units(
    atm_id: DbId,
    units: list[CashUnit],
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    _user: Dispatcher,
) -> SignalResult:
    touched = dispatch_rules.on_cash_units(
        session,
        atm_id=atm_id,
        units=[unit.model_dump() for unit in units],
        now=now,
        road_speed_kmh=context.settings.dispatch_road_speed_kmh,
    )
    return SignalResult(tasks=tasks.publics(session, touched, now=now))
