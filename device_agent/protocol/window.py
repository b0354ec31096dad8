"""The sliding window: selective-repeat sender and receiver over 16-bit sequence numbers.

Pure state machines; time is passed in as ``now`` (seconds, any monotonic origin).

Sender
    At most ``window`` sequenced frames are unacknowledged at once. A frame is
    acknowledged cumulatively (the peer's ack field: every sequence number before it
    has been taken by the peer's application) or selectively (the ACK bitmap: it
    arrived beyond a gap and waits in the peer's buffer). A frame is presumed lost,
    and sent again at once, when a frame first transmitted after its own latest
    transmission has been acknowledged: on a serial line frames cannot overtake one
    another, so that is proof. A frame nothing proves lost is sent again when its
    retransmission timeout (RTO) runs out: the RTO follows the measured round trip
    (RFC 6298: SRTT + 4·RTTVAR, bounded, doubled after each timeout). A round trip is
    sampled only when it is certain which transmission was acknowledged (Karn): a
    frame sent once, or one sent again only after a later frame's acknowledgement
    proved each earlier transmission lost. On a line that damages most frames,
    nearly every frame is sent more than once, and without the second case the
    sender would never learn the round trip. When the oldest frame times out,
    every other frame not selectively acknowledged is presumed lost as well. A
    sender that has nothing new to send (window full, or queue empty) does not wait
    for the timeout: it repeats its oldest unacknowledged frame every two round
    trips, since the line would otherwise stand idle.

Receiver
    Accepts frames whose sequence number lies in [next, next + window), keeps those
    that arrive beyond a gap, and hands the application one message at a time in
    sequence order. The acknowledgement it advertises advances only when the
    application *consumes* a message (after it has stored it), never on arrival;
    frames held beyond it are listed in the selective acknowledgement.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_agent.protocol.errors import InvalidArgument

SEQ_BITS = 16
SEQ_MOD = 1 << SEQ_BITS
SEQ_MASK = SEQ_MOD - 1
MAX_WINDOW = 1024
PROBE_MIN = 0.02
"""Seconds: the shortest wait before an idle sender repeats an unacknowledged frame."""


def seq_add(seq: int, count: int) -> int:
    return (seq + count) & SEQ_MASK


def seq_diff(a: int, b: int) -> int:
    """How far ``a`` lies after ``b``, modulo 2**16."""
    return (a - b) & SEQ_MASK


def _check_window(window: int) -> None:
    if not 1 <= window <= MAX_WINDOW:
        raise InvalidArgument(f"window must be 1..{MAX_WINDOW}, got {window}")


@dataclass
class Outstanding:
    """A sequenced frame sent and not yet cumulatively acknowledged."""

    seq: int
    type: int
    payload: bytes
    sent_at: float
    order: int
    """Transmission counter value of the latest transmission of this frame."""
    transmissions: int = 1
    sacked: bool = False
    lost: bool = False
    ambiguous: bool = False
    """Whether an earlier transmission may still be the one acknowledged (Karn's problem)."""


@dataclass
class SenderStats:
    sent: int = 0
    retransmitted: int = 0
    fast_retransmits: int = 0
    timeouts: int = 0
    probes: int = 0
    acked: int = 0


class Sender:
    """The sending half of a selective-repeat window."""

    def __init__(
        self,
        *,
        window: int,
        initial_seq: int = 0,
        rto_initial: float = 1.0,
        rto_min: float = 0.2,
        rto_max: float = 8.0,
    ) -> None:
        _check_window(window)
        if not 0 < rto_min <= rto_initial <= rto_max:
            raise InvalidArgument(
                "need 0 < rto_min <= rto_initial <= rto_max, "
                f"got {rto_min}, {rto_initial}, {rto_max}"
            )
        self.window = window
        self.base = initial_seq & SEQ_MASK
        self.next_seq = self.base
        self.rto = rto_initial
        self._rto_min = rto_min
        self._rto_max = rto_max
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._order = 0
        self._delivered_order = 0
        self._outstanding: dict[int, Outstanding] = {}
        self.stats = SenderStats()

    @property
    def in_flight(self) -> int:
        return len(self._outstanding)

    def can_send(self) -> bool:
        return len(self._outstanding) < self.window

    def outstanding(self) -> list[Outstanding]:
        """Unacknowledged frames, oldest first."""
        return [self._outstanding[seq_add(self.base, i)] for i in range(len(self._outstanding))]

    def send(self, type_code: int, payload: bytes, now: float) -> Outstanding:
        """Assign the next sequence number to a new frame and record its transmission."""
        if not self.can_send():
            raise InvalidArgument("the send window is full")
        self._order += 1
        entry = Outstanding(self.next_seq, type_code, bytes(payload), now, self._order)
        self._outstanding[self.next_seq] = entry
        self.next_seq = seq_add(self.next_seq, 1)
        self.stats.sent += 1
        return entry

    def on_ack(self, ack: int, received: tuple[int, ...] = (), *, now: float) -> list[Outstanding]:
        """Apply an acknowledgement; returns the frames it newly acknowledged cumulatively.

        Acknowledgements that point outside what was sent (stale, or from garbage that
        passed every check) are ignored.
        """
        acked: list[Outstanding] = []
        advance = seq_diff(ack, self.base)
        if advance > len(self._outstanding):
            return acked
        for _ in range(advance):
            entry = self._outstanding.pop(self.base)
            self.base = seq_add(self.base, 1)
            acked.append(entry)
            if not entry.sacked:
                self._delivered(entry, now)
        for offset in received:
            seq = seq_add(ack, offset + 1)
            entry_or_none = self._outstanding.get(seq)
            if entry_or_none is not None and not entry_or_none.sacked:
                entry_or_none.sacked = True
                entry_or_none.lost = False
                self._delivered(entry_or_none, now)
        self.stats.acked += len(acked)
        if self._delivered_order:
            for entry in self._outstanding.values():
                if not entry.sacked and entry.order < self._delivered_order:
                    # Every transmission of it went before a frame that arrived: all lost.
                    entry.lost = True
                    entry.ambiguous = False
        return acked

    def _delivered(self, entry: Outstanding, now: float) -> None:
        self._delivered_order = max(self._delivered_order, entry.order)
        if not entry.ambiguous:
            self._sample_rtt(now - entry.sent_at)

    def _sample_rtt(self, rtt: float) -> None:
        rtt = max(rtt, 0.0)
        if self._srtt is None:
            self._srtt = rtt
            self._rttvar = rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt
        self.rto = min(max(self._srtt + 4 * self._rttvar, self._rto_min), self._rto_max)

    @property
    def srtt(self) -> float | None:
        return self._srtt

    def due(self, now: float) -> Outstanding | None:
        """The frame to send again now, if any: a presumed loss first, then a timeout."""
        first_expired: Outstanding | None = None
        for entry in self.outstanding():
            if entry.sacked:
                continue
            if entry.lost:
                return entry
            if first_expired is None and now >= entry.sent_at + self.rto:
                first_expired = entry
        return first_expired

    @property
    def probe_interval(self) -> float:
        """How long an idle sender waits before sending an unacknowledged frame again."""
        if self._srtt is None:
            return self.rto
        return min(max(2 * self._srtt, PROBE_MIN), self.rto)

    def probe_due(self, now: float) -> Outstanding | None:
        """For a sender with nothing new to send: the oldest frame to send again anyway.

        When the window is full, or nothing is queued, a lost frame can be proved lost
        by no later frame; rather than leave the line idle until the timeout (which
        backs off), the sender repeats it once a couple of round trips have passed
        since its latest transmission. A repeat costs nothing on an idle line, and the
        receiver drops duplicates.
        """
        interval = self.probe_interval
        for entry in self.outstanding():
            if not entry.sacked and now >= entry.sent_at + interval:
                return entry
        return None

    def retransmitted(self, entry: Outstanding, now: float, *, probe: bool = False) -> None:
        """Record that ``entry`` (from :meth:`due` or :meth:`probe_due`) has been sent again."""
        if probe:
            self.stats.probes += 1
        elif entry.lost:
            self.stats.fast_retransmits += 1
        else:
            self.stats.timeouts += 1
            if entry.seq == self.base:
                # The oldest frame timed out: nothing has come back for a while, so
                # whatever else is unacknowledged is presumed lost too (RFC 6675).
                self.rto = min(self.rto * 2, self._rto_max)
                for other in self._outstanding.values():
                    if other is not entry and not other.sacked:
                        other.lost = True
        if entry.order >= self._delivered_order:
            # Nothing proves the previous transmission lost: it may yet be acknowledged.
            entry.ambiguous = True
        self._order += 1
        entry.order = self._order
        entry.sent_at = now
        entry.transmissions += 1
        entry.lost = False
        self.stats.retransmitted += 1

    def deadline(self) -> float | None:
        """When the earliest retransmission timeout runs out (None when nothing waits)."""
        waiting = [e for e in self._outstanding.values() if not e.sacked]
        if any(e.lost for e in waiting):
            return 0.0
        return min(e.sent_at for e in waiting) + self.rto if waiting else None

    def probe_deadline(self) -> float | None:
        """When :meth:`probe_due` will next have a frame (None when nothing waits)."""
        waiting = [e.sent_at for e in self._outstanding.values() if not e.sacked]
        return min(waiting) + self.probe_interval if waiting else None


@dataclass
class ReceiverStats:
    accepted: int = 0
    duplicates: int = 0
    out_of_window: int = 0
    consumed: int = 0


class Receiver:
    """The receiving half of a selective-repeat window."""

    NEW = "new"
    DUPLICATE = "duplicate"
    OUT_OF_WINDOW = "out-of-window"

    def __init__(self, *, window: int, initial_seq: int = 0) -> None:
        _check_window(window)
        self.window = window
        self.next_seq = initial_seq & SEQ_MASK
        self._buffer: dict[int, tuple[int, bytes]] = {}
        self.stats = ReceiverStats()

    def on_frame(self, seq: int, type_code: int, payload: bytes) -> str:
        """Take a sequenced frame; says whether it was new, a duplicate or out of the window."""
        ahead = seq_diff(seq, self.next_seq)
        if ahead < self.window:
            if seq in self._buffer:
                self.stats.duplicates += 1
                return self.DUPLICATE
            self._buffer[seq] = (type_code, bytes(payload))
            self.stats.accepted += 1
            return self.NEW
        if seq_diff(self.next_seq, seq) <= self.window:
            self.stats.duplicates += 1
            return self.DUPLICATE
        self.stats.out_of_window += 1
        return self.OUT_OF_WINDOW

    def peek(self) -> tuple[int, int, bytes] | None:
        """The next message in sequence, as (seq, type, payload), if it has arrived."""
        item = self._buffer.get(self.next_seq)
        return None if item is None else (self.next_seq, item[0], item[1])

    def consume(self) -> None:
        """The application has taken (and stored) the message :meth:`peek` showed."""
        if self.next_seq not in self._buffer:
            raise InvalidArgument("nothing to consume: the next message has not arrived")
        del self._buffer[self.next_seq]
        self.next_seq = seq_add(self.next_seq, 1)
        self.stats.consumed += 1

    @property
    def ack(self) -> int:
        """The cumulative acknowledgement to advertise: the next sequence number to consume."""
        return self.next_seq

    def selective(self) -> tuple[int, ...]:
        """ACK bitmap offsets: every frame held beyond the one the ack names."""
        return tuple(
            sorted(seq_diff(seq, self.next_seq) - 1 for seq in self._buffer if seq != self.next_seq)
        )

    @property
    def buffered(self) -> int:
        return len(self._buffer)
