"""Rules that turn what ATMs report into tasks: the entry points for device ingest.

Ingest calls these after it has stored a device's status, event or cash-unit
report (each commits its own work):

* :func:`on_device_event` for an unsolicited event;
* :func:`on_device_status` for a status snapshot;
* :func:`on_cash_units` for an XFS cash-unit report.

The rules:

* a hardware fault becomes a repair task: first line (FLM: jams, paper,
  cassettes, bins; no parts) or second line (SLM: module failures, the PIN
  pad); a fatal fault of the dispenser, card reader or PIN pad is priority 1
  (the ATM cannot pay out), other fatal faults 2, warnings 3;
* a cassette error (jam, missing, inoperative, pick failure) or a full bin is
  an FLM task, priority 2;
* a cassette running LOW is a replenishment task, priority 3; EMPTY 2, and 1
  when every cassette is empty; a bin running HIGH is added to the
  replenishment, priority 4;
* one open task per ATM and kind: a repeated or further signal updates it
  (occurrences, facts, a higher priority) instead of opening another;
* a replenishment planned ahead of time (:func:`on_planned_replenishment`, from
  the cash plan) is a replenishment task, priority 4, due by the end of its
  day, assigned to the engineer whose route takes it; a LOW task already open
  gets the plan's loads instead;
* a device that recovers by itself is noted on its tasks, and an FLM task
  nobody has accepted yet, whose devices have all recovered, is resolved as
  ``device_recovered``;
* the ATM is down (an outage, for availability) while it is out of service,
  a core device is in fault, or every cassette is empty.

Each call locks the ATM's row first, so signals for one ATM are applied one at
a time whichever instance receives them. A new task goes to the best engineer
in the same transaction (:func:`atm_service.services.assignment.offer`), so it
reaches the engineer's page with one commit.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlmodel import Session, col, select

from atm_service.errors import InvalidInput, NotFound
from atm_service.models.condition import AtmCondition, AtmOutage
from atm_service.models.device_signals import (
    EVENT_KINDS,
    XFS_BILL_CASSETTE,
    XFS_EMPTY,
    XFS_FULL,
    XFS_HIGH,
    XFS_INOP,
    XFS_LOW,
    XFS_MISSING,
    XFS_OK,
    XFS_RECYCLING,
    XFS_REJECT,
    XFS_RETRACT,
    CashUnit,
    CashUnitError,
    CashUnitThreshold,
    DeviceEvent,
    DeviceName,
    DeviceStatus,
    HardwareError,
    HardwareRecovered,
    SafeDoor,
    ServiceMode,
)
from atm_service.models.fleet import Atm
from atm_service.models.tasks import (
    HELD_STATES,
    OPEN_STATES,
    ResolutionCode,
    Task,
    TaskKind,
    TaskSource,
    TaskState,
)
from atm_service.services import assignment, dispatch, tasks
from atm_service.services.task_states import Action
from atm_service.services.tasks import Doer, Place

logger = logging.getLogger("atm_service.dispatch")

DEFAULT_ROAD_SPEED_KMH = 40.0
RULES = Doer.system("rules")

CORE_DEVICES = frozenset(
    {DeviceName.DISPENSER, DeviceName.CARD_READER, DeviceName.ENCRYPTING_PIN_PAD}
)
# Words in a fault's code or description that say which line fixes it.
FLM_HINTS = (
    "jam",
    "pick fail",
    "paper",
    "cassette",
    "bin full",
    "retract",
    "misfeed",
    "not seated",
    "shutter",
    "presenter error",
    "stuck",
)
SLM_HINTS = (
    "module",
    "failure",
    "failed",
    "broken",
    "sensor",
    "motor",
    "board",
    "replace",
    "hardware",
    "firmware",
)
UNIT_ERRORS = {
    "jam": "jammed",
    "missing": "missing",
    "inop": "inoperative",
    "pick_failure": "pick failure",
}
_EVENTS: TypeAdapter[Any] = TypeAdapter(DeviceEvent)


def classify(device: DeviceName, code: str, description: str) -> TaskKind:
    """FLM or SLM for a hardware fault; first line when nothing says otherwise."""
    if device is DeviceName.ENCRYPTING_PIN_PAD:
        return TaskKind.SLM  # key loading and a secure replacement: never first line
    text = f"{code} {description}".lower()
    if any(hint in text for hint in FLM_HINTS):
        return TaskKind.FLM
    if any(hint in text for hint in SLM_HINTS):
        return TaskKind.SLM
    return TaskKind.FLM


@dataclass
class _Run:
    """One call's context: where, when, and what it touched."""

    session: Session
    place: Place
    condition: AtmCondition
    now: datetime
    touched: list[Task] = field(default_factory=list)
    created: list[int] = field(default_factory=list)

    def touch(self, task: Task, *, created: bool = False) -> None:
        if all(task is not seen for seen in self.touched):
            self.touched.append(task)
        if created and task.id is not None:
            self.created.append(task.id)


# --- entry points ------------------------------------------------------------------------


def on_device_event(
    session: Session,
    *,
    atm_id: int,
    event: Mapping[str, Any],
    now: datetime,
    road_speed_kmh: float = DEFAULT_ROAD_SPEED_KMH,
) -> Task | None:
    """Apply one device event; returns the task it opened or updated, if any.

    Events of a kind these rules do not know are ignored (``None``); a known
    kind with a bad field raises :class:`InvalidInput` naming the field.
    """
    kind = event.get("kind") if isinstance(event, Mapping) else None
    if kind not in EVENT_KINDS:
        logger.info("ignoring device event of unknown kind", extra={"atm_id": atm_id, "kind": kind})
        return None
    signal = _parse(_EVENTS, event, "event")
    run = _begin(session, atm_id=atm_id, now=now)
    at = _when(signal.time, run)
    handler = _HANDLERS[type(signal)]
    handler(run, signal, at)
    _track_outage(run, at)
    touched = _end(run, road_speed_kmh)
    return touched[0] if touched else None


def on_device_status(
    session: Session,
    *,
    atm_id: int,
    status: Mapping[str, Any],
    now: datetime,
    road_speed_kmh: float = DEFAULT_ROAD_SPEED_KMH,
) -> list[Task]:
    """Compare a status snapshot with the last one and act on what changed.

    A device turning ``fault`` is handled like a fatal hardware error, a device
    back to ``ok`` like a recovery; warnings are recorded but open nothing (the
    events carry the detail). A snapshot older than the last one is ignored.
    """
    parsed = _parse(TypeAdapter(DeviceStatus), status, "status")
    run = _begin(session, atm_id=atm_id, now=now)
    at = _when(parsed.time, run)
    condition = run.condition
    if condition.status_at is not None and at < condition.status_at:
        session.commit()
        return []
    previous = dict(condition.devices)
    for name, state in parsed.devices.items():
        try:
            device = DeviceName(name)
        except ValueError:
            continue
        before = previous.get(name, "ok")
        detail = parsed.details.get(name, "")
        if state == "fault" and before != "fault":
            _hardware_error(
                run,
                HardwareError(
                    kind="hardware_error",
                    time=parsed.time,
                    device=device,
                    severity="fatal",
                    description=detail or "reported in fault by the device status",
                ),
                at,
            )
        elif state == "ok" and before in ("fault", "warning"):
            _hardware_recovered(
                run,
                HardwareRecovered(kind="hardware_recovered", time=parsed.time, device=device),
                at,
            )
    condition = run.condition
    condition.devices = {name: str(state) for name, state in parsed.devices.items()}
    condition.details = dict(parsed.details)
    condition.in_service = parsed.in_service
    condition.safe_door = parsed.safe_door
    condition.status_at = at
    _track_outage(run, at)
    return _end(run, road_speed_kmh)


def on_cash_units(
    session: Session,
    *,
    atm_id: int,
    units: Sequence[Mapping[str, Any]],
    now: datetime,
    road_speed_kmh: float = DEFAULT_ROAD_SPEED_KMH,
) -> list[Task]:
    """Act on the XFS statuses that changed since the last report.

    Cassettes (usType 3, or 12 recycling): usStatus 3 LOW / 4 EMPTY → replenishment,
    5 INOP / 6 MISSING → FLM. Reject and retract bins (usType 2, 6): 2 HIGH →
    replenishment, 1 FULL → FLM. A unit back at 0 OK is noted on its tasks.
    """
    parsed = _parse(TypeAdapter(list[CashUnit]), list(units), "units")
    run = _begin(session, atm_id=atm_id, now=now)
    before = {
        int(unit.get("usNumber", 0)): int(unit.get("usStatus", 0))
        for unit in run.condition.cash_units
    }
    run.condition.cash_units = [unit.model_dump() for unit in parsed]
    run.condition.cash_units_at = now
    time = now.astimezone(ZoneInfo(run.place.site.timezone)).replace(tzinfo=None)
    for unit in parsed:
        status = unit.usStatus
        if status == before.get(unit.usNumber, XFS_OK):
            continue
        if unit.usType in (XFS_BILL_CASSETTE, XFS_RECYCLING):
            threshold = {XFS_LOW: "low", XFS_EMPTY: "empty", XFS_OK: "ok"}.get(status)
            error = {XFS_INOP: "inop", XFS_MISSING: "missing"}.get(status)
        elif unit.usType in (XFS_REJECT, XFS_RETRACT):
            threshold = {XFS_HIGH: "high", XFS_FULL: "full", XFS_OK: "ok"}.get(status)
            error = None
        else:
            continue
        if threshold is not None:
            _cash_unit_threshold(
                run,
                CashUnitThreshold.model_validate(
                    {
                        "kind": "cash_unit_threshold",
                        "time": time,
                        "unit": unit.usNumber,
                        "status": threshold,
                    }
                ),
                now,
            )
        elif error is not None:
            _cash_unit_error(
                run,
                CashUnitError.model_validate(
                    {"kind": "cash_unit_error", "time": time, "unit": unit.usNumber, "error": error}
                ),
                now,
            )
    _track_outage(run, now)
    return _end(run, road_speed_kmh)


class PlannedReplenishment(BaseModel):
    """A visit from the cash plan, as the rules take it."""

    kind: str = "planned_replenishment"
    plan_id: int
    visit_id: int
    day: date
    loads: dict[str, int]
    notes: dict[str, int]
    value: int
    engineer_id: int | None = None
    arrival: datetime | None = None
    departure: datetime | None = None


def on_planned_replenishment(
    session: Session,
    *,
    atm_id: int,
    visit: PlannedReplenishment,
    now: datetime,
    road_speed_kmh: float = DEFAULT_ROAD_SPEED_KMH,
) -> Task:
    """Open the replenishment task of a planned visit, or put the plan on the open one.

    A new task is due by the end of the visit's day at the site and goes to the
    engineer of the visit's route for the route's window; without one it waits
    for assignment like any other. The plan (loads per cassette and
    denomination, value, day) is in the task's facts under ``plan``.
    """
    run = _begin(session, atm_id=atm_id, now=now)
    summary = f"Planned replenishment on {visit.day.isoformat()}: load " + ", ".join(
        f"{n} x {d}" for d, n in sorted(visit.notes.items(), key=lambda i: int(i[0]))
    )

    def merge(facts: dict[str, Any]) -> None:
        facts["plan"] = {
            "plan_id": visit.plan_id,
            "visit_id": visit.visit_id,
            "day": visit.day.isoformat(),
            "loads": dict(visit.loads),
            "notes": dict(visit.notes),
            "value": visit.value,
        }

    existing = tasks.open_task(session, atm_id=atm_id, kind=TaskKind.REPLENISHMENT)
    task = _raise(
        run,
        kind=TaskKind.REPLENISHMENT,
        priority=4,
        merge=merge,
        at=run.now,
        signal=visit,
        summary=summary,
    )
    if existing is None:
        zone = ZoneInfo(run.place.site.timezone)
        end_of_day = datetime.combine(visit.day + timedelta(days=1), time(0), tzinfo=zone)
        task.response_due = max(task.response_due, end_of_day.astimezone(UTC))
        task.restore_due = max(task.restore_due, task.response_due)
        if visit.engineer_id is not None and visit.arrival is not None:
            assignment.place_planned(
                session,
                task,
                engineer_id=visit.engineer_id,
                start=visit.arrival,
                end=visit.departure or visit.arrival + timedelta(minutes=45),
                now=run.now,
                by=RULES,
                reason=f"planned route for {visit.day.isoformat()}",
            )
    _end(run, road_speed_kmh)
    return task


# --- plumbing ----------------------------------------------------------------------------


def _parse(adapter: TypeAdapter[Any], value: Any, where: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first.get("loc", ())]
        # Drop the discriminator tag pydantic puts in the path of a tagged union.
        if len(loc) > 1 and where == "event" and loc[0] in EVENT_KINDS:
            loc = loc[1:]
        name = ".".join([where, *loc])
        raise InvalidInput(f"{name}: {first.get('msg', 'invalid value')}", field=name) from None


def _begin(session: Session, *, atm_id: int, now: datetime) -> _Run:
    atm = session.exec(
        select(Atm)
        .where(col(Atm.id) == atm_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).first()
    if atm is None:
        raise NotFound(f"No ATM with id {atm_id}.")
    place = tasks.place_of(session, atm_id=atm_id)
    condition = session.get(AtmCondition, atm_id, populate_existing=True)
    if condition is None:
        condition = AtmCondition(atm_id=atm_id, updated_at=now)
        session.add(condition)
    return _Run(session=session, place=place, condition=condition, now=now)


def _when(time: datetime, run: _Run) -> datetime:
    """A device's local time as UTC; never later than now (device clocks drift)."""
    if time.tzinfo is None:
        time = time.replace(tzinfo=ZoneInfo(run.place.site.timezone))
    return min(time.astimezone(UTC), run.now)


def _end(run: _Run, road_speed_kmh: float) -> list[Task]:
    run.condition.updated_at = run.now
    # JSON columns change by assignment: make sure the new values are written.
    run.condition.devices = dict(run.condition.devices)
    run.condition.details = dict(run.condition.details)
    run.condition.cash_units = list(run.condition.cash_units)
    run.session.add(run.condition)
    for task in run.touched:
        if task.id in run.created:
            assignment.offer(run.session, task, now=run.now, speed_kmh=road_speed_kmh)
    run.session.commit()
    return run.touched


def _signal_data(signal: BaseModel) -> dict[str, Any]:
    return signal.model_dump(mode="json")


def _raise(
    run: _Run,
    *,
    kind: TaskKind,
    priority: int,
    merge: Callable[[dict[str, Any]], None],
    at: datetime,
    signal: BaseModel,
    summary: str,
) -> Task:
    """Open a task of ``kind`` at this ATM, or fold the signal into the open one."""
    existing = tasks.open_task(run.session, atm_id=run.place.atm.id or 0, kind=kind)
    if existing is None:
        facts: dict[str, Any] = {}
        merge(facts)
        task = dispatch.new_task(
            run.session,
            run.place,
            kind=kind,
            source=TaskSource.DEVICE,
            priority=priority,
            title=_title(kind, facts),
            description=summary,
            opened_at=at,
            now=run.now,
            by=RULES,
            facts=facts,
            reason=summary,
            announce=False,
        )
        run.touch(task, created=True)
        return task
    facts = copy.deepcopy(existing.facts)
    merge(facts)
    existing.facts = facts
    existing.title = _title(kind, facts)[:200]
    existing.occurrences += 1
    existing.last_signal_at = max(existing.last_signal_at, at)
    existing.updated_at = run.now
    data = _signal_data(signal)
    if priority < existing.priority:
        # More urgent now: the deadlines of the higher priority, counted from this
        # signal, apply where they are earlier.
        response_due, restore_due = tasks.deadlines(run.place, opened_at=at, priority=priority)
        data["priority"] = {"from": existing.priority, "to": priority}
        existing.priority = priority
        existing.response_due = min(existing.response_due, response_due)
        existing.restore_due = min(existing.restore_due, restore_due)
    run.session.add(existing)
    tasks.record(
        run.session, existing, action="signal", by=RULES, at=run.now, reason=summary, data=data
    )
    tasks.announce(run.session, existing, now=run.now)
    run.touch(existing)
    return existing


def _device_label(name: str) -> str:
    try:
        return DeviceName(name).label
    except ValueError:
        return name.replace("_", " ").capitalize()


def _title(kind: TaskKind, facts: Mapping[str, Any]) -> str:
    parts = []
    for name, info in sorted(facts.get("devices", {}).items()):
        if info.get("state") in ("fault", "warning"):
            label = _device_label(name)
            parts.append(f"{label}: {info.get('description') or info.get('code') or 'fault'}")
    for number, info in sorted(facts.get("units", {}).items(), key=lambda item: int(item[0])):
        state = info.get("state")
        if state in (None, "ok"):
            continue
        parts.append(f"{info.get('name', 'unit ' + number)} {state}")
    plan = facts.get("plan")
    if not parts and isinstance(plan, dict):
        parts.append(f"planned for {plan.get('day')}, {int(plan.get('value', 0)):,} to load")
    if not parts:
        parts.append("recovered" if facts else "check the ATM")
    prefix = "Replenish: " if kind is TaskKind.REPLENISHMENT else ""
    return (prefix + "; ".join(parts))[:200]


def _unit_name(run: _Run, unit: int, *, bin_hint: bool) -> str:
    for known in run.condition.cash_units:
        if int(known.get("usNumber", 0)) == unit:
            unit_type = int(known.get("usType", 0))
            if unit_type == XFS_REJECT:
                return "reject bin"
            if unit_type == XFS_RETRACT:
                return "retract bin"
            return f"cassette {unit}"
    return f"bin {unit}" if bin_hint else f"cassette {unit}"


# --- what each signal does -----------------------------------------------------------------


def _hardware_error(run: _Run, signal: HardwareError, at: datetime) -> None:
    device = signal.device
    fatal = signal.severity == "fatal"
    run.condition.devices = {**run.condition.devices, device.value: "fault" if fatal else "warning"}
    if signal.description or signal.code:
        run.condition.details = {
            **run.condition.details,
            device.value: " ".join(p for p in (signal.code, signal.description) if p),
        }
    kind = classify(device, signal.code, signal.description)
    priority = (1 if device in CORE_DEVICES else 2) if fatal else 3
    what = signal.description or signal.code or "fault"

    def merge(facts: dict[str, Any]) -> None:
        facts.setdefault("devices", {})[device.value] = {
            "state": "fault" if fatal else "warning",
            "severity": signal.severity,
            "code": signal.code,
            "description": signal.description,
            "at": at.isoformat(),
        }

    _raise(
        run,
        kind=kind,
        priority=priority,
        merge=merge,
        at=at,
        signal=signal,
        summary=f"{device.label} {signal.severity}: {what}",
    )


def _cash_unit_error(run: _Run, signal: CashUnitError, at: datetime) -> None:
    name = _unit_name(run, signal.unit, bin_hint=False)

    def merge(facts: dict[str, Any]) -> None:
        facts.setdefault("units", {})[str(signal.unit)] = {
            "name": name,
            "state": UNIT_ERRORS[signal.error],
            "at": at.isoformat(),
        }

    _raise(
        run,
        kind=TaskKind.FLM,
        priority=2,
        merge=merge,
        at=at,
        signal=signal,
        summary=f"{name.capitalize()} {UNIT_ERRORS[signal.error]}",
    )


_XFS_STATUS = {"ok": XFS_OK, "low": XFS_LOW, "empty": XFS_EMPTY, "high": XFS_HIGH, "full": XFS_FULL}


def _set_unit_status(run: _Run, unit: int, status: str) -> None:
    """Keep the last cash-unit report in step with a threshold event."""
    units = [dict(known) for known in run.condition.cash_units]
    for known in units:
        if int(known.get("usNumber", 0)) == unit:
            known["usStatus"] = _XFS_STATUS[status]
    run.condition.cash_units = units


def _all_cassettes_empty(run: _Run, unit: int) -> bool:
    numbers = {
        int(known.get("usNumber", 0)): int(known.get("usStatus", 0))
        for known in run.condition.cash_units
        if int(known.get("usType", 0)) in (XFS_BILL_CASSETTE, XFS_RECYCLING)
    }
    if not numbers:
        return False
    numbers[unit] = XFS_EMPTY
    return all(status == XFS_EMPTY for status in numbers.values())


def _cash_unit_threshold(run: _Run, signal: CashUnitThreshold, at: datetime) -> None:
    status = signal.status
    is_bin = status in ("high", "full")
    name = _unit_name(run, signal.unit, bin_hint=is_bin)
    _set_unit_status(run, signal.unit, status)
    if status == "ok":
        _unit_recovered(run, signal, name, at)
        return

    def merge(facts: dict[str, Any]) -> None:
        facts.setdefault("units", {})[str(signal.unit)] = {
            "name": name,
            "state": status,
            "at": at.isoformat(),
        }

    if status == "full":
        kind, priority = TaskKind.FLM, 2
    elif status == "high":
        kind, priority = TaskKind.REPLENISHMENT, 4
    elif status == "empty":
        kind = TaskKind.REPLENISHMENT
        priority = 1 if _all_cassettes_empty(run, signal.unit) else 2
    else:
        kind, priority = TaskKind.REPLENISHMENT, 3
    _raise(
        run,
        kind=kind,
        priority=priority,
        merge=merge,
        at=at,
        signal=signal,
        summary=f"{name.capitalize()} {status}",
    )


def _open_tasks(run: _Run) -> list[Task]:
    return list(
        run.session.exec(
            select(Task)
            .where(col(Task.atm_id) == run.place.atm.id, col(Task.state).in_(OPEN_STATES))
            .order_by(col(Task.id))
            .execution_options(populate_existing=True)
        )
    )


def _unit_recovered(run: _Run, signal: CashUnitThreshold, name: str, at: datetime) -> None:
    key = str(signal.unit)
    for task in _open_tasks(run):
        units = task.facts.get("units", {})
        if key not in units or units[key].get("state") == "ok":
            continue
        facts = copy.deepcopy(task.facts)
        facts["units"][key]["state"] = "ok"
        task.facts = facts
        task.title = _title(task.kind, facts)
        task.updated_at = run.now
        run.session.add(task)
        tasks.record(
            run.session,
            task,
            action="recovered",
            by=RULES,
            at=run.now,
            reason=f"{name.capitalize()} reports OK again",
            data=_signal_data(signal),
        )
        tasks.announce(run.session, task, now=run.now)
        run.touch(task)


def _hardware_recovered(run: _Run, signal: HardwareRecovered, at: datetime) -> None:
    device = signal.device.value
    run.condition.devices = {**run.condition.devices, device: "ok"}
    run.condition.details = {k: v for k, v in run.condition.details.items() if k != device}
    for task in _open_tasks(run):
        devices = task.facts.get("devices", {})
        if device not in devices or devices[device].get("state") == "recovered":
            continue
        facts = copy.deepcopy(task.facts)
        facts["devices"][device]["state"] = "recovered"
        task.facts = facts
        task.title = _title(task.kind, facts)
        task.recovered_at = at
        task.updated_at = run.now
        run.session.add(task)
        tasks.record(
            run.session,
            task,
            action="recovered",
            by=RULES,
            at=run.now,
            reason=f"{signal.device.label} recovered by itself",
            data=_signal_data(signal),
        )
        still_faulty = any(
            info.get("state") in ("fault", "warning") for info in facts.get("devices", {}).values()
        ) or any(info.get("state") != "ok" for info in facts.get("units", {}).values())
        if (
            task.kind is TaskKind.FLM
            and task.state in (TaskState.NEW, TaskState.ASSIGNED)
            and not still_faulty
        ):
            previous = task.engineer_id
            task.resolution_code = ResolutionCode.DEVICE_RECOVERED
            task.resolution_notes = "The device recovered by itself before anyone went on site."
            tasks.transition(
                run.session,
                task,
                Action.AUTO_RESOLVE,
                by=RULES,
                now=run.now,
                reason=f"{signal.device.label} recovered by itself",
            )
            tasks.announce(run.session, task, now=run.now, previous_engineer_id=previous)
        else:
            tasks.announce(run.session, task, now=run.now)
        run.touch(task)


def _safe_door(run: _Run, signal: SafeDoor, at: datetime) -> None:
    run.condition.safe_door = signal.state
    for task in _open_tasks(run):
        if task.state not in HELD_STATES:
            continue
        tasks.record(
            run.session,
            task,
            action="safe_door",
            by=RULES,
            at=run.now,
            reason=f"Safe door {signal.state}",
            data=_signal_data(signal),
        )
        run.touch(task)


def _service_mode(run: _Run, signal: ServiceMode, at: datetime) -> None:
    run.condition.in_service = signal.in_service


_HANDLERS: dict[type[BaseModel], Callable[[_Run, Any, datetime], None]] = {
    HardwareError: _hardware_error,
    HardwareRecovered: _hardware_recovered,
    CashUnitError: _cash_unit_error,
    CashUnitThreshold: _cash_unit_threshold,
    SafeDoor: _safe_door,
    ServiceMode: _service_mode,
}


# --- availability ------------------------------------------------------------------------


def down_cause(condition: AtmCondition) -> str | None:
    """Why the ATM cannot serve customers now, or ``None`` when it can."""
    if condition.in_service is False:
        return "out of service"
    faulty = sorted(
        name
        for name, state in condition.devices.items()
        if state == "fault" and name in {device.value for device in CORE_DEVICES}
    )
    if faulty:
        return ", ".join(_device_label(name) for name in faulty) + " in fault"
    cassettes = [
        int(unit.get("usStatus", 0))
        for unit in condition.cash_units
        if int(unit.get("usType", 0)) in (XFS_BILL_CASSETTE, XFS_RECYCLING)
    ]
    if cassettes and all(status == XFS_EMPTY for status in cassettes):
        return "out of cash"
    return None


def _track_outage(run: _Run, at: datetime) -> None:
    cause = down_cause(run.condition)
    current = run.session.exec(
        select(AtmOutage).where(
            col(AtmOutage.atm_id) == run.place.atm.id, col(AtmOutage.ended_at).is_(None)
        )
    ).first()
    if cause is not None and current is None:
        assert run.place.atm.id is not None
        run.session.add(AtmOutage(atm_id=run.place.atm.id, started_at=at, cause=cause))
    elif cause is None and current is not None:
        current.ended_at = max(at, current.started_at)
        run.session.add(current)
