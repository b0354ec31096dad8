"""A lock's trail against the service's log: import and comparison."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from lockctl import (
    AuditLog,
    CheckpointSigner,
    EntryKind,
    EventKind,
    LockControl,
    LockEvent,
    LockFirmware,
    LockKey,
    MemoryLogStore,
    Operation,
    ProvisioningError,
    compare_trail,
    entry_for_event,
)
from lockctl.codes import duress_code
from lockctl.trail import parse_trail
from tests.lockctl.conftest import LOCK, T0


class Scenario:
    """A lock and the service side by side, with both records."""

    def __init__(self, key: LockKey, control: LockControl, firmware: LockFirmware) -> None:
        self.key, self.control, self.firmware = key, control, firmware
        self.chain = control.provision(key)
        self.state = firmware.initial_state()
        self.trail: list[LockEvent] = []
        self.log = AuditLog(MemoryLogStore(), CheckpointSigner.generate(), log_id="t")
        self.now = T0

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(r.line) for r in self.log.store.read(0, 10**6)]

    def key_in(self, code: str, user: int = 42) -> None:
        entry = self.firmware.enter(self.state, user=user, code=code, now=self.now)
        self.state = entry.state
        self.trail.extend(entry.events)

    def visit(self, *, report: bool = True, duress: bool = False) -> str:
        issuance = self.control.issue(
            self.chain, self.key, user=42, operation=Operation.OPEN, now=self.now
        )
        self.chain = issuance.chain
        self.log.append(EntryKind.CODE_ISSUED, issuance.codes[0].audit_fields(), now=self.now)
        code = issuance.codes[0].code
        self.key_in(duress_code(code) if duress else code)
        relocked = self.firmware.relock(self.state, now=self.now + timedelta(minutes=5))
        self.state = relocked.state
        self.trail.extend(relocked.events)
        if report:
            confirmed = self.control.verify_seal(self.chain, self.key, relocked.seal, now=self.now)
            self.chain = confirmed.chain
            self.log.append(EntryKind.SEAL_REPORTED, confirmed.audit_fields(), now=self.now)
            if confirmed.duress:
                self.log.append(EntryKind.DURESS, confirmed.audit_fields(), now=self.now)
        else:
            self.chain = self.control.force_close(self.chain, now=self.now).chain
        self.now += timedelta(hours=2)
        return relocked.seal


@pytest.fixture
def scenario(key: LockKey, control: LockControl, firmware: LockFirmware) -> Scenario:
    return Scenario(key, control, firmware)


def test_matching_records_have_no_discrepancy(scenario: Scenario) -> None:
    scenario.visit()
    scenario.visit(duress=True)
    assert compare_trail(LOCK, scenario.trail, scenario.entries()) == []


def test_an_unreported_seal_is_a_warning(scenario: Scenario) -> None:
    scenario.visit()
    seal = scenario.visit(report=False)
    found = compare_trail(LOCK, scenario.trail, scenario.entries())
    assert [(d.severity, d.kind) for d in found] == [("warning", "seal-not-reported")]
    assert seal in found[0].message


def test_an_opening_without_an_issued_code_is_critical(scenario: Scenario) -> None:
    scenario.visit()
    entries = [e for e in scenario.entries() if e["kind"] != "code-issued"]
    kinds = {d.kind for d in compare_trail(LOCK, scenario.trail, entries)}
    assert "opened-without-issue" in kinds


def test_failures_must_be_imported_and_then_match(scenario: Scenario) -> None:
    for _ in range(5):
        scenario.key_in("00000000")
    found = compare_trail(LOCK, scenario.trail, scenario.entries())
    assert [d.kind for d in found] == ["not-imported"] * 6
    for event in scenario.trail:
        kind, fields = entry_for_event(LOCK, event)
        scenario.log.append(kind, fields, now=scenario.now)
    kinds = [e["kind"] for e in scenario.entries()]
    assert kinds == ["failure"] * 5 + ["lockout"]
    assert compare_trail(LOCK, scenario.trail, scenario.entries()) == []


def test_a_seal_the_lock_never_showed_is_critical(scenario: Scenario) -> None:
    scenario.visit()
    trail_without_close = [e for e in scenario.trail if e.kind is not EventKind.CLOSED]
    found = compare_trail(LOCK, trail_without_close, scenario.entries())
    assert {d.kind for d in found} == {"seal-not-shown"}
    assert found[0].log_index == 1


def test_an_unlogged_duress_is_critical(scenario: Scenario) -> None:
    scenario.visit(duress=True)
    entries = [e for e in scenario.entries() if e["kind"] != "duress"]
    assert [d.kind for d in compare_trail(LOCK, scenario.trail, entries)] == ["duress-not-logged"]


def test_trail_files_round_trip_and_bad_ones_are_named(scenario: Scenario) -> None:
    scenario.visit()
    text = "\n".join(
        [json.dumps({"format": "atm-lock-trail", "version": 1, "lock": LOCK})]
        + [json.dumps(e.to_dict()) for e in scenario.trail]
    )
    lock_id, events = parse_trail(text)
    assert lock_id == LOCK
    assert events == scenario.trail
    with pytest.raises(ProvisioningError, match="line 1"):
        parse_trail("{}")
    with pytest.raises(ProvisioningError, match="line 2: not JSON"):
        parse_trail(text.splitlines()[0] + "\n{oops")
    with pytest.raises(ProvisioningError, match=r"line 2: .*lacks 'seq'"):
        parse_trail(text.splitlines()[0] + '\n{"event": "opened"}')
    with pytest.raises(ProvisioningError, match="line 2"):
        parse_trail(text.splitlines()[0] + '\n{"seq": 0, "event": "teleported", "at": "x"}')


def test_a_force_closed_code_used_afterwards_is_critical(scenario: Scenario) -> None:
    issuance = scenario.control.issue(
        scenario.chain, scenario.key, user=42, operation=Operation.OPEN, now=scenario.now
    )
    scenario.log.append(EntryKind.CODE_ISSUED, issuance.codes[0].audit_fields(), now=scenario.now)
    closed = scenario.control.force_close(issuance.chain, now=scenario.now)
    assert closed.usable_until == T0 - timedelta(minutes=10) + timedelta(hours=2, minutes=5)
    scenario.log.append(EntryKind.FORCE_CLOSE, closed.audit_fields(), now=scenario.now)
    scenario.now += timedelta(minutes=30)
    scenario.key_in(issuance.codes[0].code)  # still valid at the lock
    found = compare_trail(LOCK, scenario.trail, scenario.entries())
    assert [(d.severity, d.kind) for d in found] == [("critical", "opened-after-force-close")]


def test_a_force_closed_code_used_before_is_a_lost_seal(scenario: Scenario) -> None:
    issuance = scenario.control.issue(
        scenario.chain, scenario.key, user=42, operation=Operation.OPEN, now=scenario.now
    )
    scenario.log.append(EntryKind.CODE_ISSUED, issuance.codes[0].audit_fields(), now=scenario.now)
    scenario.key_in(issuance.codes[0].code)
    scenario.now += timedelta(hours=3)
    closed = scenario.control.force_close(issuance.chain, now=scenario.now)
    scenario.log.append(EntryKind.FORCE_CLOSE, closed.audit_fields(), now=scenario.now)
    found = compare_trail(LOCK, scenario.trail, scenario.entries())
    assert [(d.severity, d.kind) for d in found] == [("warning", "force-closed-code-used")]
