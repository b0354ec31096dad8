"""A state machine over the service and one lock: whatever engineers, attackers and
dispatchers do, in any order, the invariants of lock control hold.

- the lock opens only with a code the service issued (nothing critical in the
  comparison of the lock's trail with the service's log);
- when every seal the lock showed has been confirmed and nothing is outstanding,
  the service's chain value is the lock's: the next code will open;
- every export of the log verifies.
"""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lockctl import (
    AuditLog,
    ChainStateError,
    CheckpointSigner,
    EntryKind,
    InvalidSeal,
    LockControl,
    LockFirmware,
    LockKey,
    LockPolicy,
    MemoryLogStore,
    NotOpen,
    Operation,
    Outcome,
    PublicKeys,
    compare_trail,
    entry_for_event,
    mismatch_fields,
    verify_export,
)
from lockctl.codes import duress_code

KEY = LockKey("CX-SM", 1, bytes(range(7, 39)))
POLICY = LockPolicy(dual_control=frozenset({Operation.BANK}))
SIGNER = CheckpointSigner.from_seed(bytes(range(32)))


class LockControlMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
        self.control = LockControl(POLICY)
        self.firmware = LockFirmware(KEY, POLICY)
        self.chain = self.control.provision(KEY)
        self.state = self.firmware.initial_state()
        self.trail: list = []  # type: ignore[type-arg]
        self.log = AuditLog(MemoryLogStore(), SIGNER, log_id="sm", checkpoint_every=5)
        self.codes: dict[int, str] = {}  # user -> code in hand
        self.seal: str | None = None  # the last seal the lock showed
        self.imported = 0

    # -- helpers -------------------------------------------------------------------

    def _key_in(self, user: int, code: str) -> Outcome:
        entry = self.firmware.enter(self.state, user=user, code=code, now=self.now)
        self.state = entry.state
        self.trail.extend(entry.events)
        if entry.seal is not None:
            self.seal = entry.seal
        return entry.outcome

    def _log(self, kind: EntryKind, fields: dict[str, object]) -> None:
        self.log.append(kind, fields, now=self.now)

    # -- the dispatcher --------------------------------------------------------------

    @rule(user=st.sampled_from([42, 43]), operation=st.sampled_from(list(Operation)))
    def issue(self, user: int, operation: Operation) -> None:
        try:
            if operation in POLICY.dual_control:
                issuance = self.control.issue_dual(
                    self.chain, KEY, users=(user, 7), operation=operation, now=self.now
                )
            else:
                issuance = self.control.issue(
                    self.chain, KEY, user=user, operation=operation, now=self.now
                )
        except ChainStateError:
            assert self.chain.outstanding is not None or self.chain.blocked
            return
        self.chain = issuance.chain
        self.codes = {}
        for issued in issuance.codes:
            self._log(EntryKind.CODE_ISSUED, issued.audit_fields())
            self.codes[issued.user] = issued.code

    @rule(user=st.sampled_from([42, 43]))
    def resync(self, user: int) -> None:
        try:
            issuance = self.control.issue_resync(self.chain, KEY, user=user, now=self.now)
        except ChainStateError:
            return
        self.chain = issuance.chain
        self._log(EntryKind.RESYNC_ISSUED, issuance.codes[0].audit_fields())
        self.codes = {user: issuance.codes[0].code}

    @precondition(lambda self: self.chain.outstanding is not None)
    @rule()
    def force_close(self) -> None:
        closed = self.control.force_close(self.chain, now=self.now)
        self.chain = closed.chain
        self._log(EntryKind.FORCE_CLOSE, closed.audit_fields())

    # -- people at the lock ----------------------------------------------------------

    @precondition(lambda self: bool(self.codes))
    @rule(duress=st.booleans(), data=st.data())
    def engineer_keys_a_code(self, duress: bool, data: st.DataObject) -> None:
        user = data.draw(st.sampled_from(sorted(self.codes)))
        code = self.codes[user]
        self._key_in(user, duress_code(code) if duress else code)

    @precondition(lambda self: self.state.lockouts < 2)
    @rule(user=st.integers(1, 99), seed=st.integers(0, 2**32))
    def attacker_keys_a_guess(self, user: int, seed: int) -> None:
        guess = f"{random.Random(seed).randrange(10**8):08d}"
        assert self._key_in(user, guess) is not Outcome.OPENED

    @rule()
    def relock(self) -> None:
        try:
            relocked = self.firmware.relock(self.state, now=self.now)
        except NotOpen:
            return
        self.state = relocked.state
        self.trail.extend(relocked.events)
        self.seal = relocked.seal

    @precondition(lambda self: self.seal is not None)
    @rule(typo=st.booleans())
    def engineer_reports_the_seal(self, typo: bool) -> None:
        assert self.seal is not None
        reported = f"{(int(self.seal) + 1) % 10**8:08d}" if typo else self.seal
        try:
            confirmed = self.control.verify_seal(self.chain, KEY, reported, now=self.now)
        except InvalidSeal as wrong:
            self.chain = wrong.chain
            self._log(EntryKind.SEAL_REPORTED, mismatch_fields(wrong, reported))
            return
        except ChainStateError:
            return
        self.chain = confirmed.chain
        kind = (
            EntryKind.SEAL_REPORTED if confirmed.kind == "opening" else (EntryKind.RESYNC_CONFIRMED)
        )
        self._log(kind, confirmed.audit_fields())
        if confirmed.duress:
            self._log(EntryKind.DURESS, confirmed.audit_fields())
        self.seal = None

    @rule(minutes=st.integers(1, 150))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule()
    def trail_is_imported(self) -> None:
        for event in self.trail[self.imported :]:
            if event.kind.value in ("wrong-code", "used-code", "lockout", "duress"):
                kind, fields = entry_for_event(KEY.lock_id, event)
                self._log(kind, fields)
        self.imported = len(self.trail)

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def lock_opens_only_with_issued_codes(self) -> None:
        entries = [json.loads(r.line) for r in self.log.store.read(0, 10**6)]
        critical = [
            d
            for d in compare_trail(KEY.lock_id, self.trail, entries)
            if d.severity == "critical" and d.kind == "opened-without-issue"
        ]
        assert critical == []

    @invariant()
    def a_settled_chain_matches_the_lock(self) -> None:
        """Every seal the lock showed was confirmed, nothing is out, the lock is shut:
        then the service's chain value is the lock's, and its next code will open."""
        settled = self.chain.outstanding is None and not self.chain.blocked
        if settled and self.seal is None and self.state.opening is None:
            assert self.chain.seal == self.state.seal

    def teardown(self) -> None:
        out = io.BytesIO()
        self.log.export(out, now=self.now, by="auditor")
        verify_export(io.BytesIO(out.getvalue()), PublicKeys([SIGNER.public_key]))


TestLockControl = LockControlMachine.TestCase
