"""Choosing the engineer: skills, shifts, distance, queues, deadlines, declines and overrides."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from atm_service.errors import Conflict, IllegalTransition, InvalidInput
from atm_service.models.engineers import Engineer
from atm_service.models.notifications import Audience, DispatchNotification
from atm_service.models.tasks import Task, TaskCreate, TaskKind, TaskSource, TaskState
from atm_service.models.users import User
from atm_service.security.passwords import Passwords
from atm_service.services import assignment, dispatch, tasks
from atm_service.services.assignment import haversine_km
from atm_service.services.dispatch_rules import on_device_event
from atm_service.services.task_states import Actor
from atm_service.services.tasks import Doer
from tests.service.dispatch_world import World, add_engineer, fault

NOW = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
DISPATCHER = Doer(name="dana", actor=Actor.DISPATCHER)


def engineer(session: Session, world: World, name: str) -> Engineer:
    found = session.get(Engineer, world.engineers[name])
    assert found is not None
    return found


def doer(session: Session, world: World, name: str) -> Doer:
    user = session.get(User, world.users[name])
    assert user is not None
    return Doer.of(user)


def deactivate(session: Session, world: World, name: str) -> None:
    found = engineer(session, world, name)
    found.active = False
    session.add(found)
    session.commit()


def open_by_hand(session: Session, world: World, terminal: str, kind: TaskKind) -> Task:
    return dispatch.create_task(
        session,
        data=TaskCreate(atm_id=world.atms[terminal], kind=kind, title="Customer reports a fault"),
        by=DISPATCHER,
        now=NOW,
        speed_kmh=40,
    )


def test_haversine() -> None:
    assert haversine_km(0, 0, 0, 1) == pytest.approx(111.2, abs=0.1)
    assert haversine_km(40.7506, -73.9935, 42.6526, -73.7562) == pytest.approx(212.0, abs=1.0)
    assert haversine_km(10, 20, 10, 20) == 0


def test_the_nearest_engineer_with_the_skill_gets_it(
    session: Session, world: World, passwords: Passwords
) -> None:
    add_engineer(
        session, world, "nina", passwords=passwords, now=NOW, site="FAR", skills="flm",
        home_region="North",
    )  # fmt: skip
    far = open_by_hand(session, world, "T1000004", TaskKind.FLM)
    assert far.engineer_id == world.engineers["nina"]
    near = open_by_hand(session, world, "T1000001", TaskKind.FLM)
    assert near.engineer_id == world.engineers["eli"]


def test_the_queue_delays_arrival_and_a_free_engineer_wins(
    session: Session, world: World, passwords: Passwords
) -> None:
    deactivate(session, world, "erin")
    first = open_by_hand(session, world, "T1000001", TaskKind.FLM)
    assert first.engineer_id == world.engineers["eli"]
    # Eli's next arrival is after this task's planned window.
    second = open_by_hand(session, world, "T1000002", TaskKind.REPLENISHMENT)
    assert second.engineer_id == world.engineers["eli"]
    assert first.planned_end is not None
    assert second.planned_start is not None
    assert second.planned_start >= first.planned_end
    # Now a free first-line engineer at the same site arrives sooner than Eli can.
    add_engineer(
        session, world, "fred", passwords=passwords, now=NOW, site="NORTH", skills="flm",
        home_region="North",
    )  # fmt: skip
    third = on_device_event(session, atm_id=world.atms["T1000002"], event=fault(), now=NOW)
    assert third is not None
    assert third.engineer_id == world.engineers["fred"]


def test_off_shift_and_inactive_engineers_are_not_chosen(session: Session, world: World) -> None:
    deactivate(session, world, "erin")
    task = open_by_hand(session, world, "T1000001", TaskKind.SLM)
    # Sam does second line but starts at 08:00 New York; it is 03:00.
    assert task.state is TaskState.NEW
    assert task.engineer_id is None
    with pytest.raises(Conflict, match="No active engineer with the slm skill"):
        assignment.assign(
            session, task_id=task.id or 0, engineer_id=None, by=DISPATCHER, now=NOW, speed_kmh=40
        )
    # A dispatcher may still send Sam (shift is their call); skills are not.
    assigned = assignment.assign(
        session,
        task_id=task.id or 0,
        engineer_id=world.engineers["sam"],
        by=DISPATCHER,
        now=NOW,
        speed_kmh=40,
    )
    assert assigned.engineer_id == world.engineers["sam"]


def test_a_dispatcher_cannot_send_someone_without_the_skill(session: Session, world: World) -> None:
    deactivate(session, world, "erin")
    task = open_by_hand(session, world, "T1000001", TaskKind.SLM)
    with pytest.raises(InvalidInput) as raised:
        assignment.assign(
            session,
            task_id=task.id or 0,
            engineer_id=world.engineers["eli"],
            by=DISPATCHER,
            now=NOW,
            speed_kmh=40,
        )
    assert raised.value.field == "engineer_id"
    assert "slm" in raised.value.detail
    session.rollback()
    with pytest.raises(IllegalTransition, match="allowed only when it is new"):
        assignment.assign(
            session,
            task_id=open_by_hand(session, world, "T1000002", TaskKind.FLM).id or 0,
            engineer_id=world.engineers["eli"],
            by=DISPATCHER,
            now=NOW,
            speed_kmh=40,
        )


def test_out_of_region_engineers_pay_a_penalty(
    session: Session, world: World, passwords: Passwords
) -> None:
    # Two first-line engineers at the same distance: the one from the site's region wins.
    add_engineer(
        session, world, "ola", passwords=passwords, now=NOW, site="FAR", skills="flm",
        home_region="Upstate",
    )  # fmt: skip
    add_engineer(
        session, world, "nina", passwords=passwords, now=NOW, site="FAR", skills="flm",
        home_region="North",
    )  # fmt: skip
    task = open_by_hand(session, world, "T1000004", TaskKind.FLM)
    assert task.engineer_id == world.engineers["nina"]


def test_a_late_arrival_counts_against_an_engineer(
    session: Session, world: World, passwords: Passwords
) -> None:
    # Eli is busy for hours at North Station; Nina would come from Albany (~5 h away).
    deactivate(session, world, "erin")
    for terminal in ("T1000001", "T1000002"):
        open_by_hand(session, world, terminal, TaskKind.FLM)
        open_by_hand(session, world, terminal, TaskKind.REPLENISHMENT)
    add_engineer(
        session, world, "nina", passwords=passwords, now=NOW, site="FAR", skills="flm",
        home_region="North",
    )  # fmt: skip
    place = tasks.place_of(session, atm_id=world.atms["T1000001"])
    probe = Task(
        id=-1,
        atm_id=world.atms["T1000001"],
        kind=TaskKind.FLM,
        state=TaskState.NEW,
        source=TaskSource.DISPATCHER,
        priority=1,
        title="probe",
        opened_at=NOW,
        last_signal_at=NOW,
        response_due=NOW + timedelta(minutes=120),
        restore_due=NOW + timedelta(minutes=240),
        created_at=NOW,
        updated_at=NOW,
    )
    plans = {
        plan.engineer_id: plan
        for plan in assignment.candidates(session, probe, place, now=NOW, speed_kmh=40)
    }
    eli, nina = plans[world.engineers["eli"]], plans[world.engineers["nina"]]
    assert eli.held == 4
    assert nina.late_minutes > 0
    assert nina.cost == pytest.approx((nina.eta - NOW).total_seconds() / 60 + 3 * nina.late_minutes)
    assert eli.late_minutes > 0
    # Both would be late; Eli's queue still gets him there first, so he costs less.
    assert eli.eta < nina.eta
    assert eli.cost < nina.cost


def test_a_decline_goes_to_the_next_best_and_never_back(
    session: Session, world: World, passwords: Passwords
) -> None:
    add_engineer(
        session, world, "fred", passwords=passwords, now=NOW, site="SOUTH", skills="flm",
        home_region="North",
    )  # fmt: skip
    task = open_by_hand(session, world, "T1000001", TaskKind.FLM)
    assert task.engineer_id == world.engineers["eli"]
    moved = dispatch.decline(
        session,
        task_id=task.id or 0,
        engineer=engineer(session, world, "eli"),
        by=doer(session, world, "eli"),
        reason="car broke down",
        now=NOW,
        speed_kmh=40,
    )
    assert moved.state is TaskState.ASSIGNED
    assert moved.engineer_id in {world.engineers["fred"], world.engineers["erin"]}
    first_taker = moved.engineer_id
    name = "fred" if first_taker == world.engineers["fred"] else "erin"
    again = dispatch.decline(
        session,
        task_id=task.id or 0,
        engineer=engineer(session, world, name),
        by=doer(session, world, name),
        reason="stuck in traffic",
        now=NOW,
        speed_kmh=40,
    )
    assert again.engineer_id not in {world.engineers["eli"], first_taker}
    assert again.engineer_id is not None
    events = [e.action for e in tasks.history(session, task_id=task.id or 0)]
    assert events.count("decline") == 2
    assert events.count("assign") == 3


def test_reassign_moves_the_task_and_tells_both_engineers(session: Session, world: World) -> None:
    task = open_by_hand(session, world, "T1000001", TaskKind.FLM)
    with pytest.raises(InvalidInput, match="why"):
        assignment.reassign(
            session,
            task_id=task.id or 0,
            engineer_id=world.engineers["erin"],
            by=DISPATCHER,
            reason="",
            now=NOW,
            speed_kmh=40,
        )
    session.rollback()
    moved = assignment.reassign(
        session,
        task_id=task.id or 0,
        engineer_id=world.engineers["erin"],
        by=DISPATCHER,
        reason="Eli is needed elsewhere",
        now=NOW,
        speed_kmh=40,
    )
    assert moved.engineer_id == world.engineers["erin"]
    assert moved.state is TaskState.ASSIGNED
    last = list(
        session.exec(
            select(DispatchNotification)
            .where(col(DispatchNotification.audience) == Audience.ENGINEER)
            .order_by(col(DispatchNotification.id).desc())
            .limit(2)
        )
    )
    told = {note.user_id: note.payload["removed"] for note in last}
    assert told == {world.users["erin"]: False, world.users["eli"]: True}
    with pytest.raises(Conflict, match="already assigned"):
        assignment.reassign(
            session,
            task_id=task.id or 0,
            engineer_id=world.engineers["erin"],
            by=DISPATCHER,
            reason="again",
            now=NOW,
            speed_kmh=40,
        )


def test_an_engineers_planned_windows_never_overlap(session: Session, world: World) -> None:
    deactivate(session, world, "erin")
    for terminal in ("T1000001", "T1000002", "T1000004"):
        for kind in (TaskKind.FLM, TaskKind.REPLENISHMENT):
            open_by_hand(session, world, terminal, kind)
    held = tasks.held_by(session, engineer_id=world.engineers["eli"])
    assert len(held) >= 4
    windows = sorted((t.planned_start, t.planned_end) for t in held)
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert end is not None
        assert start is not None
        assert start >= end
