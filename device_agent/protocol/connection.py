"""One end of the device link as a pure state machine: sessions, window, timers, frames.

A :class:`Connection` does no I/O and reads no clock. Its owner feeds it the bytes
read from the port (:meth:`Connection.receive`), asks it for the next frame to
write whenever the line is free (:meth:`Connection.next_frame`), queues messages
(:meth:`Connection.send`) and takes what arrived (:meth:`Connection.next_item`,
then :meth:`Connection.pop_item` once it is stored). Every call takes ``now``.

Sessions
    Each end draws a random, non-zero 32-bit session id when it starts and whenever
    it resets. HELLO carries the sender's session id and the id it knows for its
    peer (0 if none). An end that sees a new peer session resets its window and
    treats everything in flight as undelivered; it is *up* once it has a peer and
    a HELLO from that peer names its own session. An end that is not up repeats
    HELLO every ``hello_interval`` with the ANSWER flag; an end answers a HELLO
    that asks for it, or that names the wrong session for it. Each sender's first
    sequence number is the low 16 bits of its session id.

    Every frame but HELLO is bound to its session: its CRC also covers the sender's
    and the receiver's session ids (:func:`~device_agent.protocol.framing.session_binding`).
    When one end restarts, the other keeps its id and so its first sequence number;
    binding is what keeps a frame of the old session that the line delivers late
    (or twice) from passing for the same number in the new one. A HELLO from a
    peer session that a newer one has replaced is stale too, and ignored.

Liveness
    An end sends an ACK at least every ``keepalive_interval``, busy or idle: on a
    line that damages most long frames a short one still gets through, so the peer
    keeps hearing it. An end that hears nothing valid for ``link_timeout`` takes a
    new session id and starts over, so a peer that lost power, a pulled cable or a
    restarted agent all end in the same resynchronisation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import TypeAlias

from device_agent.protocol.errors import (
    DecodeError,
    EncodeError,
    InvalidArgument,
    NotConnected,
    PayloadError,
)
from device_agent.protocol.framing import (
    MAX_PAYLOAD,
    Frame,
    FrameReader,
    frame_to_wire,
    session_binding,
)
from device_agent.protocol.messages import (
    Ack,
    Hello,
    Message,
    MessageType,
    decode_message,
    encode_message,
    is_sequenced,
)
from device_agent.protocol.window import SEQ_MASK, Outstanding, Receiver, Sender

MIN_PAYLOAD = 256
"""The smallest max_payload an end may announce: room for every control message."""
RETIRED_PEERS = 16
"""How many replaced peer sessions an end remembers, to ignore their late HELLOs."""


class Role(Enum):
    HOST = "host"
    DEVICE = "device"


class Priority(IntEnum):
    """Order in which queued messages take the line: events before journal bulk."""

    HIGH = 0
    NORMAL = 1
    LOW = 2


@dataclass(frozen=True)
class LinkConfig:
    """Window and timers of one end. Times are in seconds."""

    window: int = 32
    max_payload: int = 4096
    hello_interval: float = 0.5
    keepalive_interval: float = 1.0
    link_timeout: float = 6.0
    rto_initial: float = 1.0
    rto_min: float = 0.25
    rto_max: float = 4.0

    def __post_init__(self) -> None:
        if not 1 <= self.window <= 1024:
            raise InvalidArgument(f"window must be 1..1024 frames, got {self.window}")
        if not MIN_PAYLOAD <= self.max_payload <= MAX_PAYLOAD:
            raise InvalidArgument(
                f"max_payload must be {MIN_PAYLOAD}..{MAX_PAYLOAD}, got {self.max_payload}"
            )
        for name in ("hello_interval", "keepalive_interval", "link_timeout", "rto_min"):
            if getattr(self, name) <= 0:
                raise InvalidArgument(f"{name} must be positive, got {getattr(self, name)}")
        if not self.rto_min <= self.rto_initial <= self.rto_max:
            raise InvalidArgument("need rto_min <= rto_initial <= rto_max")
        if self.link_timeout <= self.keepalive_interval:
            raise InvalidArgument("link_timeout must be longer than keepalive_interval")


@dataclass(frozen=True)
class PeerInfo:
    """What the peer said about itself in its HELLO."""

    session: int
    device: bool
    boot_id: int
    terminal_id: str
    window: int
    max_payload: int


@dataclass(frozen=True)
class SessionStarted:
    """The link is up with this peer; everything before is forgotten."""

    peer: PeerInfo


@dataclass(frozen=True)
class SessionEnded:
    """The session ended; ``unacknowledged`` lists what the peer never acknowledged."""

    reason: str
    unacknowledged: tuple[Message, ...] = ()


@dataclass(frozen=True)
class Received:
    """A message from the peer, in sequence."""

    message: Message


@dataclass(frozen=True)
class Undecodable:
    """An intact sequenced frame whose payload this end cannot read (a peer bug or newer peer)."""

    type_code: int
    payload: bytes
    error: str


Item: TypeAlias = SessionStarted | SessionEnded | Received | Undecodable


@dataclass
class LinkStats:
    """Counters over the life of a connection, across sessions."""

    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    hellos_sent: int = 0
    acks_sent: int = 0
    retransmissions: int = 0
    fast_retransmits: int = 0
    timeouts: int = 0
    probes: int = 0
    duplicates: int = 0
    out_of_window: int = 0
    ignored: int = 0
    sessions: int = 0
    resets: int = 0
    reader: dict[str, int] = field(default_factory=dict)


@dataclass
class _Queued:
    message: Message
    type_code: int
    payload: bytes


class Connection:
    """One end of the device link; see the module docstring."""

    def __init__(
        self,
        role: Role,
        *,
        now: float,
        session_ids: Callable[[], int],
        config: LinkConfig | None = None,
        boot_id: int = 0,
        terminal_id: str = "",
    ) -> None:
        self.role = role
        self.config = config or LinkConfig()
        self.boot_id = boot_id
        self.terminal_id = terminal_id
        self._session_ids = session_ids
        self._reader = FrameReader(
            self.config.max_payload, unbound_types=frozenset({MessageType.HELLO})
        )
        self._reader.binding = None
        self._queues: dict[Priority, deque[_Queued]] = {p: deque() for p in Priority}
        self._items: deque[Item] = deque()
        self._peer: PeerInfo | None = None
        self._latest_peer: int | None = None
        self._retired_peers: deque[int] = deque(maxlen=RETIRED_PEERS)
        self._sender: Sender | None = None
        self._receiver: Receiver | None = None
        self._up = False
        self._answer_pending = False
        self._ack_pending = False
        self._hello_due = now
        self._last_heard = now
        self._last_ack_sent = now
        self._peeked: tuple[int, Item] | None = None
        self.stats = LinkStats()
        self.session = self._new_session_id(0)
        # Validate the identity now rather than at the first HELLO.
        encode_message(self._hello(answer=True))

    # -- state ----------------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._up

    @property
    def peer(self) -> PeerInfo | None:
        return self._peer if self._up else None

    @property
    def peer_max_payload(self) -> int:
        """The largest payload the peer accepts (our own limit before a session)."""
        if self._peer is None:
            return self.config.max_payload
        return min(self._peer.max_payload, MAX_PAYLOAD)

    def queued(self, priority: Priority | None = None) -> int:
        if priority is not None:
            return len(self._queues[priority])
        return sum(len(q) for q in self._queues.values())

    @property
    def in_flight(self) -> int:
        return self._sender.in_flight if self._sender else 0

    def wants_bulk(self) -> bool:
        """Whether a LOW-priority message queued now would go out without waiting behind others."""
        return (
            self._up
            and self._sender is not None
            and not self._queues[Priority.LOW]
            and self._sender.in_flight + self.queued() < self._sender.window
        )

    def idle(self) -> bool:
        """Nothing queued, nothing unacknowledged."""
        return self.queued() == 0 and self.in_flight == 0

    # -- sending --------------------------------------------------------------------------------

    def send(self, message: Message, priority: Priority = Priority.NORMAL) -> None:
        """Queue a sequenced message for the peer; :class:`NotConnected` without a session."""
        if not self._up:
            raise NotConnected("the link is not up")
        type_code, payload = encode_message(message)
        if not is_sequenced(type_code):
            raise EncodeError(f"{type(message).__name__} is link control; it is not queued")
        if len(payload) > self.peer_max_payload:
            raise EncodeError(
                f"{len(payload)} bytes, the peer accepts at most {self.peer_max_payload}",
                field="payload",
            )
        self._queues[priority].append(_Queued(message, type_code, payload))

    def next_frame(self, now: float) -> bytes | None:
        """The next frame to put on the line (COBS-encoded, with delimiter), or None."""
        if self._up and now - self._last_heard > self.config.link_timeout:
            self.restart(now, "nothing heard from the peer")
        if self._answer_pending or (not self._up and now >= self._hello_due):
            self._answer_pending = False
            self._hello_due = now + self.config.hello_interval
            self.stats.hellos_sent += 1
            return self._emit(Frame(MessageType.HELLO, 0, 0, self._hello_payload()), now)
        if not self._up:
            return None
        sender, receiver = self._sender, self._receiver
        assert sender is not None
        assert receiver is not None
        selective = receiver.selective()
        if (self._ack_pending and selective) or self._keepalive_due(now):
            return self._emit_ack(now, selective)
        entry = sender.due(now)
        if entry is not None:
            if entry.lost:
                self.stats.fast_retransmits += 1
            else:
                self.stats.timeouts += 1
            sender.retransmitted(entry, now)
            self.stats.retransmissions += 1
            return self._emit_data(entry, now)
        if sender.can_send():
            for priority in Priority:
                queue = self._queues[priority]
                if queue:
                    queued = queue.popleft()
                    return self._emit_data(sender.send(queued.type_code, queued.payload, now), now)
        probe = sender.probe_due(now)
        if probe is not None:
            sender.retransmitted(probe, now, probe=True)
            self.stats.retransmissions += 1
            self.stats.probes += 1
            return self._emit_data(probe, now)
        if self._ack_pending:
            return self._emit_ack(now, selective)
        return None

    def _keepalive_due(self, now: float) -> bool:
        return now - self._last_ack_sent >= self.config.keepalive_interval

    def next_deadline(self, now: float) -> float | None:
        """When :meth:`next_frame` may next have something to send (``now`` if it has now)."""
        if self._answer_pending:
            return now
        if not self._up:
            return self._hello_due
        sender = self._sender
        assert sender is not None
        if self._ack_pending or (sender.can_send() and self.queued()):
            return now
        times = [
            self._last_ack_sent + self.config.keepalive_interval,
            self._last_heard + self.config.link_timeout,
        ]
        for retransmit in (sender.deadline(), sender.probe_deadline()):
            if retransmit is not None:
                times.append(retransmit)
        return max(min(times), 0.0)

    def _emit_data(self, entry: Outstanding, now: float) -> bytes:
        assert self._receiver is not None
        self._ack_pending = False
        return self._emit(Frame(entry.type, entry.seq, self._receiver.ack, entry.payload), now)

    def _emit_ack(self, now: float, selective: tuple[int, ...]) -> bytes:
        assert self._receiver is not None
        self._ack_pending = False
        self._last_ack_sent = now
        self.stats.acks_sent += 1
        _, payload = encode_message(Ack(selective))
        return self._emit(Frame(MessageType.ACK, 0, self._receiver.ack, payload), now)

    def _emit(self, frame: Frame, now: float) -> bytes:
        binding = b""
        if frame.type != MessageType.HELLO:
            assert self._peer is not None
            binding = session_binding(self.session, self._peer.session)
        wire = frame_to_wire(frame, binding)
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(wire)
        return wire

    def _hello(self, *, answer: bool) -> Hello:
        return Hello(
            session=self.session,
            peer=self._peer.session if self._peer else 0,
            answer=answer,
            device=self.role is Role.DEVICE,
            window=self.config.window,
            max_payload=self.config.max_payload,
            boot_id=self.boot_id,
            terminal_id=self.terminal_id,
        )

    def _hello_payload(self) -> bytes:
        return encode_message(self._hello(answer=not self._up))[1]

    # -- receiving ------------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Take bytes read from the line."""
        for frame in self._reader.feed(data):
            self.stats.frames_received += 1
            self._on_frame(frame, now)

    @property
    def reader_stats(self) -> dict[str, int]:
        return dict(vars(self._reader.stats))

    def _on_frame(self, frame: Frame, now: float) -> None:
        if frame.type == MessageType.HELLO:
            try:
                hello = decode_message(frame.type, frame.payload)
            except DecodeError:
                self.stats.ignored += 1
                return
            assert isinstance(hello, Hello)
            self._on_hello(hello, now)
            return
        if not self._up:
            self.stats.ignored += 1
            return
        sender, receiver = self._sender, self._receiver
        assert sender is not None
        assert receiver is not None
        if frame.type == MessageType.ACK:
            try:
                ack = decode_message(frame.type, frame.payload)
            except DecodeError:
                self.stats.ignored += 1
                return
            assert isinstance(ack, Ack)
            self._last_heard = now
            sender.on_ack(frame.ack, ack.received, now=now)
        elif is_sequenced(frame.type):
            self._last_heard = now
            sender.on_ack(frame.ack, now=now)
            outcome = receiver.on_frame(frame.seq, frame.type, frame.payload)
            if outcome == Receiver.OUT_OF_WINDOW:
                self.stats.out_of_window += 1
            else:
                if outcome == Receiver.DUPLICATE:
                    self.stats.duplicates += 1
                self._ack_pending = True
        else:
            self.stats.ignored += 1

    def _on_hello(self, hello: Hello, now: float) -> None:
        if hello.device == (self.role is Role.DEVICE) or hello.session == 0:
            self.stats.ignored += 1  # our own echo (a loopback line) or nonsense
            return
        if hello.max_payload < MIN_PAYLOAD or hello.session in self._retired_peers:
            self.stats.ignored += 1  # nonsense, or a late HELLO of a session since replaced
            return
        if self._peer is None or hello.session != self._peer.session:
            if self._peer is not None:
                self._end_session("the peer restarted")
            if self._latest_peer is not None and self._latest_peer != hello.session:
                self._retired_peers.append(self._latest_peer)
            self._latest_peer = hello.session
            self._peer = PeerInfo(
                session=hello.session,
                device=hello.device,
                boot_id=hello.boot_id,
                terminal_id=hello.terminal_id,
                window=hello.window,
                max_payload=hello.max_payload,
            )
            self._sender = Sender(
                window=min(self.config.window, hello.window),
                initial_seq=self.session & SEQ_MASK,
                rto_initial=self.config.rto_initial,
                rto_min=self.config.rto_min,
                rto_max=self.config.rto_max,
            )
            self._receiver = Receiver(
                window=self.config.window, initial_seq=hello.session & SEQ_MASK
            )
            self._reader.binding = session_binding(hello.session, self.session)
        if hello.peer == self.session and not self._up:
            self._up = True
            self._last_ack_sent = now
            self.stats.sessions += 1
            self._items.append(SessionStarted(self._peer))
        self._last_heard = now
        if hello.answer or hello.peer != self.session:
            self._answer_pending = True

    # -- the application's side -----------------------------------------------------------------

    def next_item(self) -> Item | None:
        """What the application should handle next; it stays until :meth:`pop_item`."""
        if self._items:
            return self._items[0]
        if not self._up or self._receiver is None:
            return None
        top = self._receiver.peek()
        if top is None:
            return None
        seq, type_code, payload = top
        if self._peeked is None or self._peeked[0] != seq:
            item: Item
            try:
                item = Received(decode_message(type_code, payload))
            except PayloadError as exc:
                item = Undecodable(type_code, payload, str(exc))
            self._peeked = (seq, item)
        return self._peeked[1]

    def pop_item(self) -> None:
        """The application has handled (and stored) the item :meth:`next_item` gave."""
        if self._items:
            self._items.popleft()
            return
        if self._receiver is None or self._receiver.peek() is None:
            raise InvalidArgument("there is no item to pop")
        self._receiver.consume()
        self._peeked = None
        self._ack_pending = True

    # -- resets ---------------------------------------------------------------------------------

    def restart(self, now: float, reason: str) -> None:
        """Abandon the session and start a new one under a new session id."""
        self._end_session(reason)
        self.stats.resets += 1
        self.session = self._new_session_id(self.session)
        self._answer_pending = False
        self._hello_due = now

    def _end_session(self, reason: str) -> None:
        unacknowledged: list[Message] = []
        if self._sender is not None:
            for entry in self._sender.outstanding():
                try:
                    unacknowledged.append(decode_message(entry.type, entry.payload))
                except DecodeError:  # pragma: no cover - we encoded it ourselves
                    continue
        for priority in Priority:
            unacknowledged.extend(q.message for q in self._queues[priority])
            self._queues[priority].clear()
        was_up = self._up
        self._peer = None
        self._sender = None
        self._receiver = None
        self._reader.binding = None
        self._up = False
        self._ack_pending = False
        self._peeked = None
        if was_up or unacknowledged:
            self._items.append(SessionEnded(reason, tuple(unacknowledged)))

    def _new_session_id(self, old: int) -> int:
        for _ in range(16):
            session = self._session_ids() & 0xFFFFFFFF
            if session not in (0, old):
                return session
        raise InvalidArgument("session_ids keeps returning 0 or the same id")
