"""Lock-control fixtures: settings with lock secrets, locks provisioned through the service,
tasks brought on site, and simulated locks loaded from the service's provisioning record."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlmodel import Session

from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.models.locks import Lock, LockCreate
from atm_service.models.tasks import Task, TaskKind
from atm_service.models.users import Role, User, UserCreate
from atm_service.services import assignment, dispatch, dispatch_rules, engineers, locks, users
from atm_service.services.task_states import Actor
from atm_service.services.tasks import Doer
from lockctl import CheckpointSigner, MasterKey, Provisioning
from simulators.lock import SimulatedLock
from tests.service.dispatch_world import World, cash_units, fault
from tests.support import PASSWORD, FakeClock, make_settings


@lru_cache(maxsize=1)
def lock_secrets() -> tuple[str, str]:
    """A master key and a checkpoint signing key (text), made once per test run."""
    return MasterKey.generate().to_text(), CheckpointSigner.generate().private_pem().decode()


def lock_settings(**overrides: object) -> Settings:
    master, signing = lock_secrets()
    values: dict[str, object] = {"lock_master_key": master, "lock_log_signing_key": signing}
    values.update(overrides)
    return make_settings(**values)


def admin(session: Session, context: AppContext, name: str = "ada") -> User:
    found = users.find_user(session, username=name)
    if found is not None:
        return found
    return users.create_user(
        session,
        data=UserCreate(
            username=name, full_name=name.capitalize(), role=Role.ADMIN, password=PASSWORD
        ),
        passwords=context.passwords,
        now=context.clock(),
    )


def provision(
    session: Session,
    context: AppContext,
    world: World,
    terminal: str = "T1000001",
    *,
    lock_id: str | None = None,
    dual: bool = False,
) -> Lock:
    return locks.provision(
        session,
        secrets=context.locks,
        atm_id=world.atms[terminal],
        data=LockCreate(lock_id=lock_id or f"CX-{terminal[1:]}", dual_control=dual),
        by=admin(session, context),
        now=context.clock(),
    )


def simulated(
    session: Session,
    context: AppContext,
    world: World,
    clock: FakeClock,
    terminal: str = "T1000001",
) -> SimulatedLock:
    """The lock itself, loaded from the record the service exports for it."""
    _, record = locks.provisioning_record(
        session,
        secrets=context.locks,
        atm_id=world.atms[terminal],
        by=admin(session, context),
        reason="load the test lock",
        now=clock(),
    )
    return SimulatedLock(Provisioning.from_json(record), clock=clock)


def user(session: Session, name: str) -> User:
    found = users.find_user(session, username=name)
    assert found is not None
    return found


def on_site(
    session: Session,
    world: World,
    clock: FakeClock,
    *,
    terminal: str = "T1000001",
    kind: TaskKind = TaskKind.FLM,
    engineer: str = "eli",
    steps: int = 3,
) -> Task:
    """A task at ``terminal`` held by ``engineer``, accepted, travelled and arrived (or only
    the first ``steps`` of those)."""
    atm_id = world.atms[terminal]
    if kind is TaskKind.REPLENISHMENT:
        task = dispatch_rules.on_cash_units(
            session, atm_id=atm_id, units=cash_units(3, 0, 0, 0), now=clock()
        )[0]
    else:
        opened = dispatch_rules.on_device_event(session, atm_id=atm_id, event=fault(), now=clock())
        assert opened is not None
        task = opened
    assert task.id is not None
    dispatcher = Doer(name="dana", actor=Actor.DISPATCHER)
    if task.engineer_id is None:
        task = assignment.assign(
            session,
            task_id=task.id,
            engineer_id=world.engineers[engineer],
            by=dispatcher,
            now=clock(),
            speed_kmh=40,
        )
    elif task.engineer_id != world.engineers[engineer]:
        task = assignment.reassign(
            session,
            task_id=task.id,
            engineer_id=world.engineers[engineer],
            by=dispatcher,
            reason="the test wants this engineer",
            now=clock(),
            speed_kmh=40,
        )
    by = Doer.of(user(session, engineer))
    profile = engineers.get_engineer(session, engineer_id=world.engineers[engineer])
    for step in (dispatch.accept, dispatch.depart, dispatch.arrive)[:steps]:
        task = step(session, task_id=task.id, engineer=profile, by=by, now=clock())
    return task


@dataclass
class Issued:
    code: str
    user_number: int


def issue(session: Session, context: AppContext, task: Task, name: str = "eli") -> Issued:
    assert task.id is not None
    out = locks.request_code(
        session,
        secrets=context.locks,
        atm_id=task.atm_id,
        task_id=task.id,
        user=user(session, name),
        operation=None,
        now=context.clock(),
        timing=context.lock_timing,
    )
    assert out.code is not None
    return Issued(out.code, out.user_number)
