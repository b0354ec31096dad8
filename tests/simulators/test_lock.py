"""The simulated lock: keypad, bolt and door, penalty timer, dual control, duress alarm,
resync, and its trail compared with the service's log."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lockctl import (
    AuditLog,
    CheckpointSigner,
    EntryKind,
    EventKind,
    LockChain,
    LockControl,
    LockKey,
    LockPolicy,
    LockStatus,
    MemoryLogStore,
    NotOpen,
    Operation,
    Outcome,
    Provisioning,
    ProvisioningError,
    compare_trail,
    entry_for_event,
)
from lockctl.cli import app as lock_cli
from lockctl.codes import duress_code
from lockctl.trail import parse_trail
from simulators.lock import SimulatedLock
from tests.support import FakeClock

KEY = LockKey("CX-000123", 1, bytes(range(32)))
POLICY = LockPolicy(dual_control=frozenset({Operation.BANK}))


class Service:
    """The service's side, reduced to the library calls it makes."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.control = LockControl(POLICY)
        self.chain: LockChain = self.control.provision(KEY)
        self.log = AuditLog(MemoryLogStore(), CheckpointSigner.generate(), log_id="svc")

    def issue(self, user: int = 42, operation: Operation = Operation.OPEN) -> str:
        issuance = self.control.issue(
            self.chain, KEY, user=user, operation=operation, now=self.clock()
        )
        self.chain = issuance.chain
        self.log.append(EntryKind.CODE_ISSUED, issuance.codes[0].audit_fields(), now=self.clock())
        return issuance.codes[0].code

    def issue_dual(self, users: tuple[int, int]) -> tuple[str, str]:
        issuance = self.control.issue_dual(
            self.chain, KEY, users=users, operation=Operation.BANK, now=self.clock()
        )
        self.chain = issuance.chain
        for issued in issuance.codes:
            self.log.append(EntryKind.CODE_ISSUED, issued.audit_fields(), now=self.clock())
        return issuance.codes[0].code, issuance.codes[1].code

    def report(self, seal: str) -> bool:
        confirmed = self.control.verify_seal(self.chain, KEY, seal, now=self.clock())
        self.chain = confirmed.chain
        self.log.append(EntryKind.SEAL_REPORTED, confirmed.audit_fields(), now=self.clock())
        if confirmed.duress:
            self.log.append(EntryKind.DURESS, confirmed.audit_fields(), now=self.clock())
        return confirmed.duress

    def entries(self) -> list[dict[str, object]]:
        return [json.loads(r.line) for r in self.log.store.read(0, 10**6)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lock(clock: FakeClock) -> SimulatedLock:
    return SimulatedLock(Provisioning(KEY, POLICY), clock=clock)


@pytest.fixture
def service(clock: FakeClock) -> Service:
    return Service(clock)


def test_keypad_display_and_clear(lock: SimulatedLock, clock: FakeClock) -> None:
    assert lock.display == "ENTER CODE"
    assert lock.press("42") == "42"
    assert lock.press("*123") == "42*---"
    assert lock.press("C") == "ENTER CODE"
    lock.press("42*1")
    clock.advance(seconds=31)
    assert lock.press("7") == "7"  # the unfinished entry timed out
    assert lock.press("#") == "ENTRY ERROR"
    with pytest.raises(ValueError, match="no key 'x'"):
        lock.press("x")


def test_open_work_close_and_report_the_seal(
    lock: SimulatedLock, service: Service, clock: FakeClock
) -> None:
    code = service.issue()
    with pytest.raises(NotOpen):
        lock.open_door()
    assert lock.enter_code(42, f"{code[:4]} {code[4:]}") is Outcome.OPENED
    assert lock.status is LockStatus.OPEN
    assert lock.display == "OPEN"
    lock.open_door()
    clock.advance(minutes=25)  # the door stays open while the engineer works
    assert lock.status is LockStatus.OPEN
    seal = lock.close_door()
    assert lock.display == f"SEAL {seal[:4]}-{seal[4:]}"
    assert lock.status is LockStatus.LOCKED
    assert lock.sequence == 1
    assert service.report(seal) is False
    # the code is spent
    assert lock.enter_code(42, code) is Outcome.WRONG_CODE
    assert lock.display == "WRONG CODE"


def test_the_bolt_throws_by_itself_if_the_door_stays_shut(
    lock: SimulatedLock, service: Service, clock: FakeClock
) -> None:
    lock.enter_code(42, service.issue())
    clock.advance(seconds=59)
    assert lock.status is LockStatus.OPEN
    clock.advance(seconds=5)
    assert lock.status is LockStatus.LOCKED
    assert lock.display.startswith("SEAL ")
    closed = lock.download_trail()[-1]
    assert closed.kind is EventKind.CLOSED
    assert closed.at == clock.now - timedelta(seconds=4)
    assert lock.last_seal is not None
    service.report(lock.last_seal)


def test_penalty_timer(lock: SimulatedLock, service: Service, clock: FakeClock) -> None:
    code = service.issue()
    for _ in range(4):
        assert lock.enter_code(7, "12345678") is Outcome.WRONG_CODE
    assert lock.enter_code(7, "12345678") is Outcome.LOCKED_OUT
    assert lock.status is LockStatus.PENALTY
    assert lock.display == "PENALTY 15:00"
    clock.advance(minutes=10)
    assert lock.display == "PENALTY 05:00"
    assert lock.enter_code(42, code) is Outcome.IN_PENALTY
    clock.advance(minutes=5)
    assert lock.penalty_until is None
    assert lock.enter_code(42, code) is Outcome.OPENED


def test_dual_control_on_the_keypad(
    lock: SimulatedLock, service: Service, clock: FakeClock
) -> None:
    first, second = service.issue_dual((42, 7))
    assert lock.enter_code(42, first) is Outcome.FIRST_CODE
    assert lock.display == "2ND CODE"
    assert lock.status is LockStatus.DUAL_WAITING
    assert lock.enter_code(42, first) is Outcome.SAME_USER
    assert lock.display == "OTHER USER"
    clock.advance(seconds=121)
    assert lock.status is LockStatus.LOCKED  # the first code expired
    assert lock.display == "ENTER CODE"
    assert lock.download_trail()[-1].kind is EventKind.DUAL_EXPIRED
    assert lock.enter_code(7, second) is Outcome.FIRST_CODE
    clock.advance(seconds=30)
    assert lock.enter_code(42, first) is Outcome.OPENED
    lock.open_door()
    assert service.report(lock.close_door()) is False


def test_duress_opens_silently_and_the_service_learns_it(
    lock: SimulatedLock, service: Service
) -> None:
    code = service.issue(operation=Operation.ROUTE)
    assert lock.enter_code(42, duress_code(code)) is Outcome.OPENED
    assert lock.display == "OPEN"  # nothing on the display gives it away
    assert lock.alarm
    lock.open_door()
    assert service.report(lock.close_door()) is True
    assert [e.kind for e in lock.download_trail()] == [
        EventKind.OPENED,
        EventKind.DURESS,
        EventKind.CLOSED,
    ]
    lock.reset_alarm()
    assert not lock.alarm


def test_lost_seal_resync(lock: SimulatedLock, service: Service, clock: FakeClock) -> None:
    lock.enter_code(42, service.issue())
    lock.open_door()
    lock.close_door()  # the engineer leaves without reporting the seal
    service.chain = service.control.force_close(service.chain, now=clock()).chain
    clock.advance(hours=1)
    assert lock.enter_code(42, service.issue()) is Outcome.WRONG_CODE
    resync = service.control.issue_resync(service.chain, KEY, user=42, now=clock())
    service.chain = resync.chain
    assert lock.enter_code(42, resync.codes[0].code) is Outcome.RESYNCED
    assert lock.status is LockStatus.LOCKED
    assert lock.display.startswith("RESYNC ")
    assert lock.last_seal is not None
    confirmed = service.control.verify_seal(service.chain, KEY, lock.last_seal, now=clock())
    service.chain = confirmed.chain
    assert lock.enter_code(42, service.issue()) is Outcome.OPENED


def test_trail_download_matches_the_service_log(
    lock: SimulatedLock, service: Service, clock: FakeClock
) -> None:
    for _ in range(2):
        lock.enter_code(42, service.issue())
        lock.open_door()
        clock.advance(minutes=20)
        service.report(lock.close_door())
        clock.advance(hours=3)
    lock.enter_code(99, "00000000")
    lock_id, events = parse_trail(lock.trail_jsonl())
    assert lock_id == "CX-000123"
    assert events == lock.download_trail()
    found = compare_trail(lock_id, events, service.entries())
    assert [d.kind for d in found] == ["not-imported"]
    for event in lock.download_trail(since_seq=found[0].lock_seq or 0):
        kind, fields = entry_for_event(lock_id, event)
        service.log.append(kind, fields, now=clock())
    assert compare_trail(lock_id, events, service.entries()) == []


def test_a_lock_provisioned_from_the_command_line(tmp_path: Path, clock: FakeClock) -> None:
    runner = CliRunner()
    master = tmp_path / "master.key"
    assert runner.invoke(lock_cli, ["new-master-key", str(master)]).exit_code == 0
    record = tmp_path / "cx.json"
    result = runner.invoke(
        lock_cli,
        [
            "provision-lock",
            "CX-9",
            "--keys",
            str(tmp_path / "keys.json"),
            "--out",
            str(record),
            "--master-key",
            str(master),
        ],
    )
    assert result.exit_code == 0, result.stderr
    lock = SimulatedLock.from_file(record, clock=clock, bolt_open_seconds=30)
    provisioning = Provisioning.from_json(record.read_bytes())
    control = LockControl(provisioning.policy)
    issuance = control.issue(
        control.provision(provisioning.key),
        provisioning.key,
        user=5,
        operation=Operation.FLM,
        now=clock(),
    )
    assert lock.enter_code(5, issuance.codes[0].code) is Outcome.OPENED
    clock.advance(seconds=31)
    assert lock.status is LockStatus.LOCKED


def test_the_lock_keeps_its_chain_through_a_power_cycle(
    lock: SimulatedLock, service: Service, clock: FakeClock
) -> None:
    code = service.issue()
    assert lock.enter_code(42, code) is Outcome.OPENED
    lock.open_door()
    memory = json.loads(json.dumps(lock.memory()))  # as written to and read from a file
    restarted = SimulatedLock(Provisioning(KEY, POLICY), clock=clock)
    restarted.restore(memory)
    assert restarted.status is LockStatus.OPEN
    assert restarted.door_open
    seal = restarted.close_door()
    assert seal == lock.close_door()  # the same state gives the same seal
    service.report(seal)
    # the next code follows the new seal: a lock that forgot its chain refuses it
    code = service.issue()
    forgetful = SimulatedLock(Provisioning(KEY, POLICY), clock=clock)
    assert forgetful.enter_code(42, code) is Outcome.WRONG_CODE
    assert restarted.enter_code(42, code) is Outcome.OPENED
    trail = restarted.download_trail()
    assert [(e.seq, e.kind) for e in trail] == [
        (0, EventKind.OPENED),
        (1, EventKind.CLOSED),
        (2, EventKind.OPENED),
    ]


def test_a_lock_refuses_memory_that_is_not_its_own(lock: SimulatedLock) -> None:
    other = SimulatedLock(
        Provisioning(LockKey("CX-000999", 1, bytes(32)), POLICY), clock=FakeClock()
    )
    with pytest.raises(ProvisioningError, match="of lock 'CX-000999', not of CX-000123"):
        lock.restore(other.memory())
    memory = lock.memory()
    memory["state"]["sequence"] = -1
    with pytest.raises(ProvisioningError, match="sequence must be a non-negative integer"):
        lock.restore(memory)
    del memory["state"]["seal"]
    with pytest.raises(ProvisioningError, match="lacks 'seal'"):
        lock.restore(memory)
    with pytest.raises(ProvisioningError, match="not a lock memory"):
        lock.restore({"format": "something else"})
