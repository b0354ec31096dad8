"""Two service instances on one PostgreSQL: parallel requests never double-dispatch.

Each instance has its own engine and pool over a schema of its own whose
transactions commit, as two processes would; requests go over HTTP from a
pool of threads, split between the instances.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from atm_service.models.tasks import Task, TaskEvent, TaskKind, TaskSource, TaskState
from atm_service.models.users import Role, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services import dispatch, tasks, users
from atm_service.services.tasks import Doer
from tests.service.dispatch_world import World, add_engineer, build, fault
from tests.service.live_servers import (
    Login,
    SharedDatabase,
    instance,
    log_in,
    running,
    shared_database,
)
from tests.support import PASSWORD, FakeClock

pytestmark = pytest.mark.postgres

PARALLEL = 16


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[SharedDatabase]:
    with shared_database("postgresql", tmp_path) as shared:
        yield shared


@pytest.fixture
def world(shared: SharedDatabase, clock: FakeClock) -> World:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    database = shared.database()
    with database.session() as session:
        world = build(session, passwords=passwords, now=clock())
        for n in range(4):
            add_engineer(
                session, world, f"flm{n}", passwords=passwords, now=clock(), site="NORTH",
                skills="flm,cash", home_region="North",
            )  # fmt: skip
        users.create_user(
            session,
            data=UserCreate(
                username="dana", full_name="Dana", role=Role.DISPATCHER, password=PASSWORD
            ),
            passwords=passwords,
            now=clock(),
        )
    return world


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Closes the test's HTTP clients (and servers) when it ends."""
    with ExitStack() as stack:
        yield stack


@pytest.fixture
def urls(shared: SharedDatabase, world: World, clock: FakeClock, stack: ExitStack) -> list[str]:
    return [stack.enter_context(running(instance(shared, clock))) for _ in range(2)]


def clients(stack: ExitStack, login: Login, urls: list[str]) -> list[httpx.Client]:
    return [stack.enter_context(login.client(url)) for url in urls]


def new_tasks(shared: SharedDatabase, world: World, clock: FakeClock, count: int) -> list[int]:
    """Open tasks without assigning them, as if nobody had been free."""
    ids = []
    with shared.database().session() as session:
        terminals = itertools.cycle(world.atms.items())
        kinds = itertools.cycle([TaskKind.FLM, TaskKind.REPLENISHMENT])
        for _ in range(count):
            (_, atm_id), kind = next(terminals), next(kinds)
            if tasks.open_task(session, atm_id=atm_id, kind=kind) is not None:
                continue
            task = dispatch.new_task(
                session,
                tasks.place_of(session, atm_id=atm_id),
                kind=kind,
                source=TaskSource.DISPATCHER,
                priority=2,
                title="waiting",
                description="",
                opened_at=clock(),
                now=clock(),
                by=Doer.system(),
            )
            session.commit()
            assert task.id is not None
            ids.append(task.id)
    return ids


def fire(calls: list[tuple[Any, str, str, dict[str, Any]]]) -> list[Any]:
    """Run (client, method, url, kwargs) calls at once from a pool of threads."""

    def call(item: tuple[Any, str, str, dict[str, Any]]) -> Any:
        client, method, url, kwargs = item
        return client.request(method, url, **kwargs)

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(call, calls))


def _check_no_overlaps(shared: SharedDatabase) -> dict[int, int]:
    """Every engineer's planned windows are disjoint; returns tasks held per engineer."""
    with shared.database().session() as session:
        held = list(session.exec(select(Task).where(col(Task.engineer_id).is_not(None))))
    by_engineer: dict[int, list[Task]] = {}
    for task in held:
        assert task.engineer_id is not None
        by_engineer.setdefault(task.engineer_id, []).append(task)
    for engineer_tasks in by_engineer.values():
        windows = sorted((t.planned_start, t.planned_end) for t in engineer_tasks)
        for (_, end), (start, _) in itertools.pairwise(windows):
            assert end is not None
            assert start is not None
            assert start >= end, "two planned windows of one engineer overlap"
    return {engineer: len(ts) for engineer, ts in by_engineer.items()}


def test_parallel_assignment_on_two_instances_gives_each_task_once(
    shared: SharedDatabase, world: World, urls: list[str], clock: FakeClock, stack: ExitStack
) -> None:
    ids = new_tasks(shared, world, clock, 8)
    dana = clients(stack, log_in(urls[0], "dana"), urls)
    # Every task is asked for twice, once on each instance, all at the same time.
    calls = [
        (dana[n % 2], "POST", f"/api/v1/tasks/{task_id}/assign", {"json": {}})
        for task_id in ids
        for n in range(2)
    ]
    responses = fire(calls)
    by_task = Counter()
    for (_, _, url, _), response in zip(calls, responses, strict=True):
        assert response.status_code in (200, 409), response.text
        if response.status_code == 200:
            by_task[url] += 1
        else:
            assert "is assigned" in response.json()["detail"]
    assert set(by_task.values()) == {1}
    assert len(by_task) == len(ids)
    with shared.database().session() as session:
        assigns = session.exec(
            select(TaskEvent.task_id).where(col(TaskEvent.action) == "assign")
        ).all()
    assert Counter(assigns) == dict.fromkeys(ids, 1)
    assert sum(_check_no_overlaps(shared).values()) == len(ids)


def test_two_dispatchers_pick_different_engineers_for_one_task(
    shared: SharedDatabase, world: World, urls: list[str], clock: FakeClock, stack: ExitStack
) -> None:
    ids = new_tasks(shared, world, clock, 6)
    dana = clients(stack, log_in(urls[0], "dana"), urls)
    names = ["flm0", "flm1", "flm2", "flm3", "eli"]
    calls = []
    for task_id in ids:
        for n, name in enumerate(names):
            calls.append(
                (
                    dana[n % 2],
                    "POST",
                    f"/api/v1/tasks/{task_id}/assign",
                    {"json": {"engineer_id": world.engineers[name]}},
                )
            )
    responses = fire(calls)
    winners: dict[str, list[int]] = {}
    for (_, _, url, kwargs), response in zip(calls, responses, strict=True):
        if response.status_code == 200:
            winners.setdefault(url, []).append(kwargs["json"]["engineer_id"])
        else:
            assert response.status_code == 409, response.text
    assert sorted(winners) == sorted(f"/api/v1/tasks/{i}/assign" for i in ids)
    assert all(len(chosen) == 1 for chosen in winners.values())
    with shared.database().session() as session:
        for task_id in ids:
            task = session.get(Task, task_id)
            assert task is not None
            assert [task.engineer_id] == winners[f"/api/v1/tasks/{task_id}/assign"]
    _check_no_overlaps(shared)


def test_simultaneous_faults_on_two_instances_open_one_task(
    shared: SharedDatabase, world: World, urls: list[str], stack: ExitStack
) -> None:
    dana = clients(stack, log_in(urls[0], "dana"), urls)
    atm = world.atms["T1000002"]
    calls = [
        (dana[n % 2], "POST", f"/api/v1/atms/{atm}/device-events", {"json": fault()})
        for n in range(12)
    ]
    responses = fire(calls)
    assert {r.status_code for r in responses} == {200}
    task_ids = {r.json()["tasks"][0]["id"] for r in responses}
    assert len(task_ids) == 1
    with shared.database().session() as session:
        [task] = session.exec(select(Task).where(col(Task.atm_id) == atm)).all()
        assert task.occurrences == 12
        assert task.state is TaskState.ASSIGNED
        history = [e.action for e in tasks.history(session, task_id=task.id or 0)]
    assert history.count("opened") == 1
    assert history.count("assign") == 1
    assert history.count("signal") == 11


def test_a_double_tap_on_two_instances_accepts_once(
    shared: SharedDatabase, world: World, urls: list[str], stack: ExitStack
) -> None:
    dana = clients(stack, log_in(urls[0], "dana"), urls)[0]
    created = dana.post(f"/api/v1/atms/{world.atms['T1000001']}/device-events", json=fault())
    task = created.json()["tasks"][0]
    holder = {v: k for k, v in world.engineers.items()}[task["engineer_id"]]
    engineer = clients(stack, log_in(urls[0], holder), urls)
    key = {"Idempotency-Key": "same-tap"}
    calls = [
        (engineer[n % 2], "POST", f"/api/v1/tasks/{task['id']}/accept", {"headers": key})
        for n in range(8)
    ]
    responses = fire(calls)
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    with shared.database().session() as session:
        history = [e.action for e in tasks.history(session, task_id=task["id"])]
    assert history.count("accept") == 1
