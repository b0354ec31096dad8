"""The spool as a state machine: whatever the link, crashes and a flaky upload do, the service
ends with every byte and record once.

The machine plays the device (journals that grow), the serial link (stores, retransmits,
bad offers), the agent process (crash and reopen), the uploader (batches whose answers
may be lost) and a model of the service that applies the service's own rules (bytes by
offset, compared where they overlap; records by sequence number).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from device_agent.errors import JournalConflict, JournalGap
from device_agent.spool import Spool
from tests.support import FakeClock

NAMES = ("20261116", "20261117")
names = st.sampled_from(NAMES)


class ServiceModel:
    """What the service does with uploads (see atm_service.services.ingest)."""

    def __init__(self) -> None:
        self.journals: dict[str, bytearray] = {name: bytearray() for name in NAMES}
        self.records: dict[int, tuple[str, dict[str, Any]]] = {}

    def put_journal(self, name: str, offset: int, data: bytes) -> int:
        held = self.journals[name]
        assert offset <= len(held), f"the uploader left a gap in {name}"
        overlap = held[offset : offset + len(data)]
        assert overlap == data[: len(overlap)], f"the uploader sent other bytes for {name}"
        held.extend(data[len(overlap) :])
        return len(held)

    def post_records(self, records: list[tuple[int, str, dict[str, Any]]]) -> int:
        last = max(self.records, default=0)
        assert records[0][0] <= last + 1, "the uploader skipped records"
        for seq, kind, data in records:
            if seq > last:
                self.records[seq] = (kind, data)
        return max(self.records, default=0)


class SpoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="spool-machine-"))
        self.clock = FakeClock()
        self.spool = self._open()
        self.device: dict[str, bytes] = dict.fromkeys(NAMES, b"")
        self.stored: dict[str, int] = dict.fromkeys(NAMES, 0)
        self.expected: list[tuple[str, dict[str, Any]]] = []
        self.events: list[dict[str, Any]] = []
        self.service = ServiceModel()
        self.counter = 0

    def _open(self) -> Spool:
        # Small chunks, so pruning and reads across chunk borders happen in short runs.
        return Spool(self.directory / "spool.db", clock=self.clock, chunk_target=16)

    def teardown(self) -> None:
        try:
            self._drain()
            for name in NAMES:
                assert bytes(self.service.journals[name]) == self.device[name][: self.stored[name]]
            assert [self.service.records[seq] for seq in sorted(self.service.records)] == (
                self.expected
            )
            assert self.spool.backlog().journal_bytes == 0
        finally:
            self.spool.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    # --- the device and the link -------------------------------------------------

    @rule(name=names, data=st.binary(min_size=1, max_size=64))
    def device_writes(self, name: str, data: bytes) -> None:
        self.device[name] += data

    @precondition(lambda self: any(len(self.device[n]) > self.stored[n] for n in NAMES))
    @rule(data=st.data(), size=st.integers(min_value=0, max_value=64))
    def link_delivers(self, data: st.DataObject, size: int) -> None:
        name = data.draw(
            st.sampled_from([n for n in NAMES if len(self.device[n]) > self.stored[n]])
        )
        offset = self.spool.journal_offset(name)
        assert offset == self.stored[name]
        chunk = self.device[name][offset : offset + size]
        self.spool.store_journal(name, offset, chunk)
        self.stored[name] += len(chunk)

    @rule(name=names, back=st.integers(min_value=1, max_value=80), ahead=st.integers(0, 40))
    def link_retransmits(self, name: str, back: int, ahead: int) -> None:
        offset = max(0, self.stored[name] - back)
        end = min(len(self.device[name]), self.stored[name] + ahead)
        self.spool.store_journal(name, offset, self.device[name][offset:end])
        self.stored[name] = max(self.stored[name], end)

    @precondition(lambda self: any(self.stored.values()))
    @rule(name=names, data=st.data())
    def link_offers_other_bytes(self, name: str, data: st.DataObject) -> None:
        if not self.stored[name]:
            return
        offset = data.draw(st.integers(0, self.stored[name] - 1))
        held = self.device[name][offset : self.stored[name]]
        changed = bytes([held[0] ^ 0xFF]) + held[1:]
        try:
            self.spool.store_journal(name, offset, changed)
        except JournalConflict:
            pass
        else:
            # Only bytes pruned after acknowledgement escape the comparison.
            state = self.spool.journal_state(name)
            assert state is not None
            assert offset < state.pruned
        assert self.spool.journal_offset(name) == self.stored[name]

    @rule(name=names, skip=st.integers(1, 50))
    def link_offers_a_gap(self, name: str, skip: int) -> None:
        with pytest.raises(JournalGap) as gap:
            self.spool.store_journal(name, self.stored[name] + skip, b"x")
        assert gap.value.expected == self.stored[name]

    @rule(kind=st.sampled_from(["status", "event", "cash_units"]))
    def link_delivers_a_record(self, kind: str) -> None:
        self.counter += 1
        if kind == "status":
            data: dict[str, Any] = {"time": f"t{self.counter}", "in_service": True}
            self.spool.store_status(data)
        elif kind == "event":
            data = {"kind": "safe_door", "time": f"t{self.counter}", "state": "open"}
            self.spool.store_event(data)
            self.events.append(data)
        else:
            units: list[dict[str, object]] = [{"usNumber": 1, "ulCount": self.counter}]
            self.spool.store_cash_units(units, "requested")
            data = {"reason": "requested", "cash_units": units}
        self.expected.append((kind, data))

    @precondition(lambda self: self.events)
    @rule(pick=st.integers(0, 10**6))
    def link_retransmits_an_event(self, pick: int) -> None:
        last = self.spool.last_seq()
        self.spool.store_event(dict(self.events[pick % len(self.events)]))
        assert self.spool.last_seq() == last

    # --- the agent process ---------------------------------------------------------

    @rule()
    def agent_crashes_and_restarts(self) -> None:
        crashed = self.spool
        self.spool = self._open()
        assert self.spool.stream_id == crashed.stream_id
        crashed.close()

    @rule()
    def prune(self) -> None:
        self.spool.prune()

    # --- the uploader ---------------------------------------------------------------

    @precondition(lambda self: any(self.stored[n] for n in NAMES))
    @rule(data=st.data(), limit=st.integers(1, 64), answer_lost=st.booleans())
    def upload_journal(self, data: st.DataObject, limit: int, answer_lost: bool) -> None:
        pending = self.spool.pending_journals()
        if not pending:
            return
        state = data.draw(st.sampled_from(pending))
        name = state.name
        sent = self.spool.read_journal(name, state.acked, limit)
        held = self.service.put_journal(name, state.acked, sent)
        if not answer_lost:
            self.spool.ack_journal(name, min(held, state.size))

    @rule(limit=st.integers(1, 20), answer_lost=st.booleans())
    def upload_records(self, limit: int, answer_lost: bool) -> None:
        records = self.spool.pending_records(limit)
        if not records:
            return
        acked = self.service.post_records([(r.seq, r.kind, r.data) for r in records])
        if not answer_lost:
            self.spool.ack_records(min(acked, records[-1].seq))

    def _drain(self) -> None:
        """Upload everything, in batches that end inside chunks, pruning as the agent does."""
        for name in NAMES:
            while (state := self.spool.journal_state(name)) is not None and state.pending:
                data = self.spool.read_journal(name, state.acked, 7)
                self.spool.ack_journal(name, self.service.put_journal(name, state.acked, data))
                self.spool.prune()
        while records := self.spool.pending_records(7):
            acked = self.service.post_records([(r.seq, r.kind, r.data) for r in records])
            self.spool.ack_records(acked)
            self.spool.prune()

    # --- what always holds ------------------------------------------------------------

    @invariant()
    def spool_holds_what_the_link_stored(self) -> None:
        for name in NAMES:
            assert self.spool.journal_offset(name) == self.stored[name]

    @invariant()
    def service_holds_a_true_prefix_and_acks_never_run_ahead(self) -> None:
        for name in NAMES:
            held = bytes(self.service.journals[name])
            assert self.device[name].startswith(held)
            state = self.spool.journal_state(name)
            if state is not None:
                assert state.acked <= len(held)
                assert state.pruned <= state.acked
        assert self.spool.records_acked <= max(self.service.records, default=0)

    @invariant()
    def service_records_are_each_stored_once(self) -> None:
        for seq, stored in self.service.records.items():
            assert stored == self.expected[seq - 1]
        assert sorted(self.service.records) == list(range(1, len(self.service.records) + 1))


TestSpoolMachine = pytest.mark.slow(SpoolMachine.TestCase)
