"""The sliding window over a channel that loses, duplicates and reorders frames and acks.

The state machine sends chunks of a byte stream through a :class:`Sender`, lets
the channel do anything to the frames and the acknowledgements, and checks that
what the :class:`Receiver` hands the application is always a prefix of what was
sent and, once the channel behaves, exactly all of it.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from device_agent.protocol.errors import InvalidArgument
from device_agent.protocol.window import Receiver, Sender, seq_add, seq_diff

DATA = 0x21


class WindowOverBadChannel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.sent = bytearray()
        self.delivered = bytearray()
        self.frames: list[tuple[int, bytes]] = []
        self.acks: list[tuple[int, tuple[int, ...]]] = []

    @initialize(window=st.integers(1, 12), initial_seq=st.integers(0, 0xFFFF))
    def start(self, window: int, initial_seq: int) -> None:
        self.sender = Sender(
            window=window, initial_seq=initial_seq, rto_initial=1.0, rto_min=0.5, rto_max=4.0
        )
        self.receiver = Receiver(window=window, initial_seq=initial_seq)

    # -- the two ends -------------------------------------------------------------------------

    @rule(chunk=st.binary(min_size=1, max_size=6))
    def send(self, chunk: bytes) -> None:
        if self.sender.can_send():
            entry = self.sender.send(DATA, chunk, self.now)
            self.sent += chunk
            self.frames.append((entry.seq, entry.payload))

    @rule()
    def consume(self) -> None:
        while (top := self.receiver.peek()) is not None:
            self.delivered += top[2]
            self.receiver.consume()
        self._ack()

    @rule(seconds=st.floats(0.0, 3.0))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        while (entry := self.sender.due(self.now)) is not None:
            self.sender.retransmitted(entry, self.now)
            self.frames.append((entry.seq, entry.payload))

    @rule(seconds=st.floats(0.0, 1.0))
    def idle_sender_probes(self, seconds: float) -> None:
        self.now += seconds
        if (entry := self.sender.probe_due(self.now)) is not None:
            self.sender.retransmitted(entry, self.now, probe=True)
            self.frames.append((entry.seq, entry.payload))

    def _ack(self) -> None:
        self.acks.append((self.receiver.ack, self.receiver.selective()))

    # -- the channel --------------------------------------------------------------------------

    @precondition(lambda self: self.frames)
    @rule(pick=st.integers(0, 1000))
    def deliver_frame(self, pick: int) -> None:
        seq, payload = self.frames.pop(pick % len(self.frames))
        self.receiver.on_frame(seq, DATA, payload)
        self._ack()

    @precondition(lambda self: self.frames)
    @rule(pick=st.integers(0, 1000))
    def lose_frame(self, pick: int) -> None:
        self.frames.pop(pick % len(self.frames))

    @precondition(lambda self: self.frames)
    @rule(pick=st.integers(0, 1000))
    def duplicate_frame(self, pick: int) -> None:
        self.frames.append(self.frames[pick % len(self.frames)])

    @precondition(lambda self: self.acks)
    @rule(pick=st.integers(0, 1000))
    def deliver_ack(self, pick: int) -> None:
        ack, received = self.acks.pop(pick % len(self.acks))
        self.sender.on_ack(ack, received, now=self.now)

    @precondition(lambda self: self.acks)
    @rule(pick=st.integers(0, 1000))
    def lose_ack(self, pick: int) -> None:
        self.acks.pop(pick % len(self.acks))

    @precondition(lambda self: self.acks)
    @rule(pick=st.integers(0, 1000))
    def duplicate_ack(self, pick: int) -> None:
        self.acks.append(self.acks[pick % len(self.acks)])

    # -- what must hold -----------------------------------------------------------------------

    @invariant()
    def delivered_is_a_prefix_of_sent(self) -> None:
        assert self.sent[: len(self.delivered)] == self.delivered

    @invariant()
    def window_is_respected(self) -> None:
        assert self.sender.in_flight <= self.sender.window
        assert seq_diff(self.sender.next_seq, self.sender.base) == self.sender.in_flight
        assert self.receiver.buffered <= self.receiver.window

    def teardown(self) -> None:
        """Once the channel behaves, everything sent arrives exactly once and is acknowledged."""
        for _ in range(200):
            if self.sender.in_flight == 0 and not self.frames:
                break
            self.time_passes(5.0)
            while self.frames:
                seq, payload = self.frames.pop(0)
                self.receiver.on_frame(seq, DATA, payload)
            self.consume()
            while self.acks:
                ack, received = self.acks.pop(0)
                self.sender.on_ack(ack, received, now=self.now)
        assert self.sender.in_flight == 0
        assert self.delivered == self.sent


WindowOverBadChannel.TestCase.settings = settings(
    WindowOverBadChannel.TestCase.settings, stateful_step_count=80
)
TestWindowOverBadChannel = WindowOverBadChannel.TestCase


def test_sequence_arithmetic_wraps() -> None:
    assert seq_add(0xFFFF, 1) == 0
    assert seq_diff(2, 0xFFFE) == 4
    assert seq_diff(0xFFFE, 2) == 0xFFFC


def test_a_frame_overtaken_by_an_acknowledged_one_is_resent_at_once() -> None:
    sender = Sender(window=8, initial_seq=10)
    for n in range(4):
        sender.send(DATA, bytes([n]), now=0.0)
    # 10 lost; 11 and 12 arrived and wait beyond the gap.
    sender.on_ack(10, (0, 1), now=0.1)
    entry = sender.due(0.1)
    assert entry is not None
    assert entry.seq == 10
    sender.retransmitted(entry, 0.1)
    # 13 is not presumed lost: nothing sent after it has been acknowledged.
    assert sender.due(0.1) is None
    assert sender.stats.fast_retransmits == 1
    sender.on_ack(14, (), now=0.2)
    assert sender.in_flight == 0


def test_timeout_resends_the_oldest_and_backs_off() -> None:
    sender = Sender(window=4, rto_initial=1.0, rto_min=0.5, rto_max=4.0)
    sender.send(DATA, b"a", now=0.0)
    assert sender.due(0.9) is None
    assert sender.deadline() == pytest.approx(1.0)
    entry = sender.due(1.0)
    assert entry is not None
    sender.retransmitted(entry, 1.0)
    assert sender.rto == 2.0
    assert sender.due(2.9) is None
    assert sender.due(3.0) is entry


def test_round_trip_time_sets_the_timeout_and_ignores_resent_frames() -> None:
    sender = Sender(window=4, rto_initial=1.0, rto_min=0.1, rto_max=4.0)
    for n in range(3):
        sender.send(DATA, b"x", now=float(n))
        sender.on_ack(seq_add(0, n + 1), now=n + 0.2)
    assert sender.srtt == pytest.approx(0.2)
    assert sender.rto == pytest.approx(0.2 + 4 * sender._rttvar, abs=1e-9)
    entry = sender.send(DATA, b"y", now=10.0)
    sender.retransmitted(entry, 12.0)
    sender.on_ack(4, now=12.05)
    assert sender.srtt == pytest.approx(0.2)  # Karn: no sample from a resent frame


def test_a_frame_resent_once_its_loss_is_proved_measures_the_round_trip() -> None:
    """On a line that damages most frames no frame arrives the first time; Karn's rule
    must still let the sender learn the round trip, or its probes wait a whole RTO."""
    sender = Sender(window=4, rto_initial=1.0, rto_min=0.1, rto_max=4.0)
    a = sender.send(DATA, b"a", now=0.0)
    b = sender.send(DATA, b"b", now=0.0)
    # Both lost. The oldest times out and everything is presumed lost and sent again.
    assert sender.due(1.0) is a
    sender.retransmitted(a, 1.0)
    assert sender.due(1.1) is b
    sender.retransmitted(b, 1.1)
    assert sender.rto == 2.0
    # a's repeat is lost too; b's arrives. Either of b's copies may be the one that
    # did: no sample. But b was sent after a's repeat, which is therefore lost.
    sender.on_ack(0, (0,), now=1.3)
    assert sender.srtt is None
    assert sender.due(1.3) is a
    sender.retransmitted(a, 1.3)
    sender.on_ack(2, now=1.5)  # only the copy sent at 1.3 can have arrived
    assert sender.srtt == pytest.approx(0.2)
    assert sender.rto == pytest.approx(0.6)  # SRTT + 4·RTTVAR: the back-off is over
    assert sender.probe_interval == pytest.approx(0.4)


def test_acks_outside_what_was_sent_are_ignored() -> None:
    sender = Sender(window=4, initial_seq=100)
    sender.send(DATA, b"a", now=0.0)
    assert sender.on_ack(105, now=0.1) == []
    assert sender.on_ack(99, now=0.1) == []
    assert sender.in_flight == 1


def test_receiver_holds_frames_beyond_a_gap_and_acks_only_what_was_taken() -> None:
    receiver = Receiver(window=4, initial_seq=0xFFFE)
    assert receiver.on_frame(0xFFFF, DATA, b"b") == Receiver.NEW
    assert receiver.on_frame(1, DATA, b"d") == Receiver.NEW
    assert receiver.on_frame(2, DATA, b"e") == Receiver.OUT_OF_WINDOW
    assert receiver.selective() == (0, 2)
    assert receiver.peek() is None
    assert receiver.on_frame(0xFFFE, DATA, b"a") == Receiver.NEW
    assert receiver.ack == 0xFFFE  # arrived, not yet consumed
    assert receiver.selective() == (0, 2)  # held beyond the ack, in order or not
    out = b""
    while (top := receiver.peek()) is not None:
        out += top[2]
        receiver.consume()
    assert out == b"ab"
    assert receiver.ack == 0
    assert receiver.on_frame(0xFFFF, DATA, b"b") == Receiver.DUPLICATE
    with pytest.raises(InvalidArgument):
        receiver.consume()


def test_an_idle_sender_repeats_its_oldest_frame_after_two_round_trips() -> None:
    sender = Sender(window=2, rto_initial=1.0, rto_min=0.5, rto_max=4.0)
    sender.send(DATA, b"a", now=0.0)
    sender.on_ack(1, now=0.1)
    assert sender.probe_interval == pytest.approx(0.2)
    first = sender.send(DATA, b"b", now=1.0)
    sender.send(DATA, b"c", now=1.0)
    sender.on_ack(1, (0,), now=1.1)  # "c" arrived; "b" did: the window is stuck on "b"
    entry = sender.due(1.1)
    assert entry is first  # proved lost by "c"
    sender.retransmitted(entry, 1.1)
    assert sender.due(1.25) is None
    assert sender.probe_due(1.25) is None
    assert sender.probe_deadline() == pytest.approx(1.3)
    assert sender.probe_due(1.3) is first  # long before the 1 s timeout
    sender.retransmitted(first, 1.3, probe=True)
    assert sender.stats.probes == 1
    assert sender.rto == 0.5  # no back-off for a probe


def test_window_bounds_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="window"):
        Sender(window=0)
    with pytest.raises(InvalidArgument, match="window"):
        Receiver(window=2000)
    with pytest.raises(InvalidArgument, match="rto"):
        Sender(window=1, rto_min=2.0, rto_initial=1.0)
    sender = Sender(window=1)
    sender.send(DATA, b"", now=0.0)
    with pytest.raises(InvalidArgument, match="full"):
        sender.send(DATA, b"", now=0.0)
