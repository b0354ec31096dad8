"""Service-level figures for a period: availability, MTTR, first-time fix, SLA compliance.

* Availability of an ATM is the share of its contract's service hours in the
  period during which it had no outage (:class:`AtmOutage`); the fleet's is
  the same over all ATMs' service hours together.
* Mean time to respond: fault to engineer on site; to restore: fault to
  resolved, for repairs an engineer resolved (a device that recovered by
  itself is not a repair). Both are wall-clock minutes.
* First-time fix: of the repairs opened by a fault (not follow-ups) and
  finished in the period, the share resolved on that visit rather than
  needing parts.
* SLA compliance: arrivals by the response deadline, resolutions by the
  restore deadline (deadlines already count service hours).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from atm_service.errors import InvalidInput
from atm_service.models.condition import AtmOutage
from atm_service.models.fleet import Atm, AtmStatus, ServiceContract, Site
from atm_service.models.kpis import AtmAvailability, Kpis
from atm_service.models.tasks import OPEN_STATES, ResolutionCode, Risk, Task, TaskEvent, TaskKind
from atm_service.services.task_states import Action
from atm_service.services.tasks import Place, risk

_REPAIRS = (TaskKind.FLM, TaskKind.SLM)
_MAX_PERIOD = timedelta(days=366)


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _mean_minutes(deltas: Sequence[timedelta]) -> float | None:
    if not deltas:
        return None
    return round(sum(d.total_seconds() for d in deltas) / len(deltas) / 60, 1)


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def compute(
    session: Session, *, start: datetime, end: datetime, now: datetime, region: str | None = None
) -> Kpis:
    if end <= start:
        raise InvalidInput("The period must end after it starts.", field="end")
    if end - start > _MAX_PERIOD:
        raise InvalidInput("Ask for at most a year at a time.", field="start")
    end_clip = min(end, now)
    query = (
        select(Atm, Site, ServiceContract)
        .join(Site, col(Site.id) == col(Atm.site_id))
        .join(ServiceContract, col(ServiceContract.id) == col(Atm.contract_id), isouter=True)
        .where(col(Atm.status) != AtmStatus.DECOMMISSIONED)
        .order_by(col(Atm.terminal_id))
    )
    if region is not None:
        query = query.where(col(Site.region) == region)
    places = [Place(atm=a, site=s, contract=c) for a, s, c in session.exec(query)]
    atm_ids = [place.atm.id for place in places if place.atm.id is not None]
    outages: dict[int, list[AtmOutage]] = {atm_id: [] for atm_id in atm_ids}
    if atm_ids:
        for outage in session.exec(
            select(AtmOutage).where(
                col(AtmOutage.atm_id).in_(atm_ids),
                col(AtmOutage.started_at) < end_clip,
                (col(AtmOutage.ended_at).is_(None)) | (col(AtmOutage.ended_at) > start),
            )
        ):
            outages[outage.atm_id].append(outage)

    rows: list[AtmAvailability] = []
    fleet_service = fleet_down = timedelta(0)
    for place in places:
        assert place.atm.id is not None
        hours = place.hours
        since = max(start, place.atm.created_at)  # not before the ATM was registered
        service = hours.between(since, end_clip)
        down = timedelta(0)
        for outage in outages[place.atm.id]:
            down += hours.between(
                max(since, outage.started_at), min(end_clip, outage.ended_at or now)
            )
        down = min(down, service)
        fleet_service += service
        fleet_down += down
        availability = round(100 * (1 - down / service), 3) if service > timedelta(0) else None
        target = place.contract.availability_target_pct if place.contract else None
        rows.append(
            AtmAvailability(
                atm_id=place.atm.id,
                terminal_id=place.atm.terminal_id,
                region=place.site.region,
                service_hours=round(_hours(service), 2),
                down_hours=round(_hours(down), 2),
                availability_pct=availability,
                target_pct=target,
                meets_target=(
                    None if availability is None or target is None else availability >= target
                ),
            )
        )

    def in_scope(column: object) -> list[Task]:
        if not atm_ids:
            return []
        return list(
            session.exec(
                select(Task).where(
                    col(Task.atm_id).in_(atm_ids),
                    col(column) >= start,
                    col(column) < end,
                )
            )
        )

    arrived = in_scope(Task.arrived_at)
    resolved = in_scope(Task.resolved_at)
    repairs_restored = [
        t
        for t in resolved
        if t.kind in _REPAIRS and t.resolution_code is not ResolutionCode.DEVICE_RECOVERED
    ]
    finished_events = (
        list(
            session.exec(
                select(TaskEvent, Task)
                .join(Task, col(Task.id) == col(TaskEvent.task_id))
                .where(
                    col(Task.atm_id).in_(atm_ids),
                    col(Task.kind).in_(list(_REPAIRS)),
                    col(Task.parent_id).is_(None),
                    col(TaskEvent.action).in_([Action.RESOLVE.value, Action.NEEDS_PARTS.value]),
                    col(TaskEvent.at) >= start,
                    col(TaskEvent.at) < end,
                )
            )
        )
        if atm_ids
        else []
    )
    fixed_first = sum(1 for event, _ in finished_events if event.action == Action.RESOLVE.value)
    open_now = (
        list(
            session.exec(
                select(Task).where(col(Task.atm_id).in_(atm_ids), col(Task.state).in_(OPEN_STATES))
            )
        )
        if atm_ids
        else []
    )
    return Kpis(
        period_start=start,
        period_end=end,
        region=region,
        fleet_availability_pct=(
            round(100 * (1 - fleet_down / fleet_service), 3)
            if fleet_service > timedelta(0)
            else None
        ),
        atms=rows,
        responded=len(arrived),
        mean_time_to_respond_minutes=_mean_minutes(
            [t.arrived_at - t.opened_at for t in arrived if t.arrived_at is not None]
        ),
        restored=len(repairs_restored),
        mean_time_to_restore_minutes=_mean_minutes(
            [t.resolved_at - t.opened_at for t in repairs_restored if t.resolved_at is not None]
        ),
        first_visits=len(finished_events),
        first_time_fix_rate_pct=_pct(fixed_first, len(finished_events)),
        response_sla_pct=_pct(
            sum(1 for t in arrived if t.arrived_at is not None and t.arrived_at <= t.response_due),
            len(arrived),
        ),
        restore_sla_pct=_pct(
            sum(
                1 for t in resolved if t.resolved_at is not None and t.resolved_at <= t.restore_due
            ),
            len(resolved),
        ),
        open_tasks=len(open_now),
        open_breached=sum(1 for t in open_now if risk(t, now=now) is Risk.BREACHED),
    )
