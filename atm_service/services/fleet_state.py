"""The latest state of each ATM, as its agent last reported it.

One row per ATM (``atm_state``), kept current by ingest, joined with the fleet
master data. An ATM is *online* when it was heard from within
``device_offline_after_s``; one that never reported has no state yet and is
shown as such, not hidden.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from atm_service.models.devices import AtmState, AtmStatePublic, CassetteCount
from atm_service.models.fleet import Atm, Site
from atm_service.services.fleet import get_atm

BILL_CASSETTE = 3
XFS_UNIT_STATUS = {0: "ok", 1: "full", 2: "high", 3: "low", 4: "empty", 5: "inop", 6: "missing"}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def cassette_counts(cash_units: list[dict[str, Any]] | None) -> list[CassetteCount]:
    """The bill cassettes (XFS ``usType`` 3) of a cash-unit snapshot, by number."""
    cassettes = []
    for unit in cash_units or []:
        if unit.get("usType") != BILL_CASSETTE:
            continue
        number = _int(unit.get("usNumber"))
        if number is None:
            continue
        status = _int(unit.get("usStatus"))
        currency = unit.get("cCurrencyID")
        cassettes.append(
            CassetteCount(
                number=number,
                denomination=_int(unit.get("ulValues")),
                currency=currency if isinstance(currency, str) else None,
                count=_int(unit.get("ulCount")),
                status=XFS_UNIT_STATUS.get(status, str(status))
                if status is not None
                else "unknown",
            )
        )
    return sorted(cassettes, key=lambda cassette: cassette.number)


def to_public(
    atm: Atm, state: AtmState | None, *, now: datetime, offline_after: timedelta
) -> AtmStatePublic:
    assert atm.id is not None
    if state is None:
        return AtmStatePublic(
            atm_id=atm.id,
            terminal_id=atm.terminal_id,
            site_id=atm.site_id,
            online=False,
            last_seen_at=None,
            last_heartbeat_at=None,
            agent_version=None,
            link_state=None,
            agent_error=None,
            backlog_bytes=0,
            backlog_records=0,
            ingest_lag_s=None,
            in_service=None,
            safe_door=None,
            devices=None,
            status_time=None,
            cassettes=[],
            cash_units=None,
            counters_reason=None,
            counters_received_at=None,
            last_event_kind=None,
            last_event_at=None,
            last_journal_at=None,
        )
    return AtmStatePublic.model_validate(
        {
            **state.model_dump(),
            "terminal_id": atm.terminal_id,
            "site_id": atm.site_id,
            "online": now - state.last_seen_at <= offline_after,
            "cassettes": cassette_counts(state.cash_units),
        }
    )


def list_states(
    session: Session,
    *,
    now: datetime,
    offline_after: timedelta,
    region: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AtmStatePublic], int]:
    """Every ATM with its latest state (or none yet), by terminal id."""
    query = select(Atm, AtmState).join(AtmState, col(AtmState.atm_id) == col(Atm.id), isouter=True)
    count = select(func.count()).select_from(Atm)
    if region is not None:
        query = query.join(Site, col(Site.id) == col(Atm.site_id)).where(col(Site.region) == region)
        count = count.join(Site, col(Site.id) == col(Atm.site_id)).where(col(Site.region) == region)
    rows = session.exec(query.order_by(col(Atm.terminal_id)).offset(offset).limit(limit)).all()
    states = [to_public(atm, state, now=now, offline_after=offline_after) for atm, state in rows]
    return states, session.exec(count).one()


def get_state(
    session: Session, *, atm_id: int, now: datetime, offline_after: timedelta
) -> AtmStatePublic:
    atm = get_atm(session, atm_id=atm_id)
    return to_public(atm, session.get(AtmState, atm_id), now=now, offline_after=offline_after)
