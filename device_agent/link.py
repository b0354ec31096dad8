"""The agent's end of the serial link: pulls journals, counters, status and events.

:class:`DeviceLink` opens any pyserial URL (a serial device path such as a
simulator's pseudo-terminal, ``socket://host:port``, ``loop://``), says hello,
and after every (re)start of either side resynchronises: it asks the device for
its journal list, status and cash units, then reads every journal from the
offset the sink already holds, older days to completion first, and follows the
current day as the device reports it growing. Data that arrives beyond what is
stored (an earlier read failed while a later one was queued) leaves a gap: the
link asks for the journal again from its stored offset once, and asks again only
when that read fails (JOURNAL_ERROR) or goes unanswered, no journal data at all
for ``reread_timeout``. Everything it reads goes to a
:class:`LinkSink`; a message is acknowledged to the device only after the sink
has returned, so what the device forgets the sink has stored. A sink that fails
is retried after ``retry_interval`` without acknowledging anything, so nothing is
lost, and a port that fails is reopened.

Given the ``terminal_id`` it serves, the link refuses a device that introduces
itself as another terminal (a cable in the wrong port): it stores nothing the
device sends and acknowledges nothing, so that device loses nothing either,
and :attr:`DeviceLink.refused` says why until the right device answers.

The protocol itself is :mod:`device_agent.protocol`; this module adds threads and
the port. ``run(stop)`` serves until the event is set; ``start()``/``stop()`` do
the same in a background thread.
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Protocol, Self

import serial

from device_agent.protocol import (
    COMMANDS,
    CashUnits,
    Command,
    CommandResult,
    CommandTimeout,
    Connection,
    Event,
    InvalidArgument,
    Item,
    JournalData,
    JournalError,
    JournalErrorCode,
    JournalInfo,
    JournalRead,
    LinkConfig,
    LinkReset,
    LinkStats,
    PeerInfo,
    PortError,
    Priority,
    Query,
    Received,
    Role,
    SessionEnded,
    SessionStarted,
    Status,
    Undecodable,
)

logger = logging.getLogger(__name__)

READ_SIZE = 4096
SEEN_EVENTS = 4096


@dataclass
class _Refill:
    """A read of a journal from its stored offset, sent and not yet answered."""

    offset: int
    sent_at: float


class LinkSink(Protocol):
    """Where the link puts what it reads; each call returns only once the data is stored."""

    def journal_offset(self, name: str) -> int:
        """Bytes of journal ``name`` already stored (0 for a journal never seen)."""
        ...

    def store_journal(self, name: str, offset: int, data: bytes) -> None: ...

    def store_cash_units(self, units: list[dict[str, object]], reason: str) -> None: ...

    def store_status(self, status: dict[str, object]) -> None: ...

    def store_event(self, event: dict[str, object]) -> None: ...


SerialOpener = Callable[[str, int, float], Any]


def open_serial(url: str, baudrate: int, timeout: float) -> Any:
    """Open ``url`` with pyserial: 8N1, no flow control, reads time out after ``timeout``."""
    return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)


class DeviceLink:
    """The agent's end of the serial link to one device; see the module docstring."""

    def __init__(
        self,
        url: str,
        sink: LinkSink,
        *,
        baudrate: int = 115200,
        config: LinkConfig | None = None,
        retry_interval: float = 1.0,
        reread_timeout: float = 10.0,
        read_timeout: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        session_ids: Callable[[], int] | None = None,
        opener: SerialOpener = open_serial,
        terminal_id: str | None = None,
    ) -> None:
        self.url = url
        self.terminal_id = terminal_id
        self.sink = sink
        self.baudrate = baudrate
        self.retry_interval = retry_interval
        self.reread_timeout = reread_timeout
        self.read_timeout = read_timeout
        self._clock = clock
        self._opener = opener
        self.connection = Connection(
            Role.HOST,
            now=clock(),
            session_ids=session_ids or (lambda: secrets.randbits(32)),
            config=config,
        )
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._up_event = threading.Event()
        self._request_ids = itertools.count(random.SystemRandom().randrange(1, 1 << 31))
        self._pending: dict[int, Future[dict[str, object]]] = {}
        self._seen_events: OrderedDict[int, None] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._requested: dict[str, int] = {}
        self._stored: dict[str, int] = {}
        self._refills: dict[str, _Refill] = {}
        self._last_reply_at = clock()
        self._retry_at = 0.0
        self._reread_at: float | None = None
        self._peer: PeerInfo | None = None
        self._refused: str | None = None
        self.error: BaseException | None = None

    # -- what callers see -----------------------------------------------------------------------

    @property
    def up(self) -> bool:
        with self._lock:
            return self.connection.up

    @property
    def peer(self) -> PeerInfo | None:
        """The device as it introduced itself in the current session (terminal, boot id)."""
        with self._lock:
            return self._peer

    @property
    def refused(self) -> str | None:
        """Why the device on the port is not served (another terminal), or None."""
        with self._lock:
            return self._refused

    @property
    def journals(self) -> dict[str, int]:
        """Journal sizes as the device last announced them."""
        with self._lock:
            return dict(self._sizes)

    @property
    def stats(self) -> LinkStats:
        """A copy of the link's counters (frames, retransmissions, line errors)."""
        with self._lock:
            return replace(self.connection.stats, reader=self.connection.reader_stats)

    def wait_up(self, timeout: float) -> bool:
        """Wait until a session with the device is up."""
        return self._up_event.wait(timeout)

    def caught_up(self) -> bool:
        """Up, and every journal the device announced is stored to its announced size."""
        with self._lock:
            return (
                self.connection.up
                and bool(self._sizes)
                and all(self._stored.get(name, -1) >= size for name, size in self._sizes.items())
            )

    def send_command(self, command: str, *, timeout: float = 10.0) -> dict[str, object]:
        """Run a remote command on the device and return its result (``{"ok": bool, ...}``).

        Raises :class:`NotConnected` without a session, :class:`LinkReset` if the
        session ends first, :class:`CommandTimeout` if no answer comes in time.
        """
        if command not in COMMANDS:
            raise InvalidArgument(
                f"command must be one of {', '.join(sorted(COMMANDS))}, got {command!r}"
            )
        future: Future[dict[str, object]] = Future()
        with self._wake:
            request_id = next(self._request_ids) & 0xFFFFFFFF
            self.connection.send(Command(request_id, command), Priority.HIGH)
            self._pending[request_id] = future
            self._wake.notify_all()
        try:
            return future.result(timeout)
        except FutureTimeout:
            raise CommandTimeout(f"no answer to {command} within {timeout} s") from None
        finally:
            with self._lock:
                self._pending.pop(request_id, None)

    def query(self, *, journals: bool = True, status: bool = True, cash_units: bool = True) -> None:
        """Ask the device to send these now (answers go to the sink)."""
        with self._wake:
            self.connection.send(Query(journals=journals, status=status, cash_units=cash_units))
            self._wake.notify_all()

    # -- running --------------------------------------------------------------------------------

    def start(self) -> None:
        """Run in a background thread until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self.run, name="device-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop and close the port; returns once the link has stopped (or ``timeout``)."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def run(self, stop: threading.Event | None = None) -> None:
        """Serve the link until ``stop`` (or :meth:`stop`) is set, reopening the port as needed."""
        if stop is not None:
            self._stop = stop
        try:
            while not self._stop.is_set():
                try:
                    port = self._open()
                except PortError as exc:
                    logger.warning("%s", exc)
                    self._stop.wait(self.retry_interval)
                    continue
                try:
                    self._serve(port)
                except PortError as exc:
                    logger.warning("%s; reopening", exc)
                    self._stop.wait(self.retry_interval)
                finally:
                    _close_quietly(port)
        except Exception as exc:
            logger.exception("device link stopped on an error")
            self.error = exc
            raise
        finally:
            with self._wake:
                self._end_commands("the link stopped")

    def _open(self) -> Any:
        try:
            port = self._opener(self.url, self.baudrate, self.read_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortError(f"cannot open {self.url}: {exc}") from exc
        logger.info("opened %s", self.url)
        return port

    def _serve(self, port: Any) -> None:
        """Run the link on an open port until stopped or the port fails (:class:`PortError`)."""
        failure: list[str] = []
        writer = threading.Thread(
            target=self._write_loop, args=(port, failure), name="device-link-writer", daemon=True
        )
        writer.start()
        try:
            while not self._stop.is_set() and not failure:
                data = self._read(port, failure)
                with self._wake:
                    now = self._clock()
                    if data:
                        self.connection.receive(data, now)
                    if now >= self._retry_at:
                        self._handle_items(now)
                    if self._reread_at is not None and now >= self._reread_at:
                        self._reread_at = None
                        if self.connection.up:
                            self._schedule_reads()
                    if self._refills and self.connection.up:
                        self._retry_unanswered(now)
                    self._wake.notify_all()
        finally:
            failure.append("")  # tells the writer to finish
            with self._wake:
                self._wake.notify_all()
            writer.join()
            with self._wake:
                self.connection.restart(self._clock(), "the port was closed")
                self._handle_items(self._clock())
        if failure[0] and not self._stop.is_set():
            raise PortError(f"{self.url}: {failure[0]}")

    def _read(self, port: Any, failure: list[str]) -> bytes:
        try:
            waiting = port.in_waiting
            data: bytes = port.read(min(waiting, READ_SIZE) if waiting > 1 else READ_SIZE)
            return data
        except (serial.SerialException, OSError) as exc:
            failure.append(f"read failed: {exc}")
            return b""

    def _write_loop(self, port: Any, failure: list[str]) -> None:
        while not self._stop.is_set() and not failure:
            with self._wake:
                now = self._clock()
                frame = self.connection.next_frame(now)
                if frame is None:
                    deadline = self.connection.next_deadline(now)
                    wait = 0.05 if deadline is None else min(max(deadline - now, 0.0), 0.05)
                    self._wake.wait(wait)
                    continue
            try:
                port.write(frame)
            except (serial.SerialException, OSError) as exc:
                failure.append(f"write failed: {exc}")

    # -- what the device sends ------------------------------------------------------------------

    def _handle_items(self, now: float) -> None:
        while (item := self.connection.next_item()) is not None:
            if self._refused is not None and isinstance(item, Received):
                return  # another terminal's data: neither stored nor acknowledged
            try:
                self._handle(item, now)
            except Exception:
                # The sink failed: keep the message unacknowledged and try again later.
                logger.exception("storing %s failed; retrying", _describe(item))
                self._retry_at = now + self.retry_interval
                self._last_reply_at = now  # the device waits for us, not we for it
                return
            self.connection.pop_item()

    def _handle(self, item: Item, now: float) -> None:
        if isinstance(item, SessionStarted):
            self._peer = item.peer
            if self.terminal_id is not None and item.peer.terminal_id != self.terminal_id:
                self._refused = (
                    f"the device on {self.url} is terminal {item.peer.terminal_id}, "
                    f"not {self.terminal_id}"
                )
                logger.error("%s; reading nothing from it", self._refused)
                return
            self._refused = None
            logger.info(
                "link up with %s (boot %d)",
                item.peer.terminal_id,
                item.peer.boot_id,
                extra={"terminal_id": item.peer.terminal_id},
            )
            self._requested.clear()
            self._stored.clear()
            self._refills.clear()
            self._last_reply_at = now
            self.connection.send(Query(journals=True, status=True, cash_units=True))
            self._up_event.set()
        elif isinstance(item, SessionEnded):
            logger.info("link down: %s", item.reason)
            self._refused = None
            self._up_event.clear()
            self._peer = None
            self._requested.clear()
            self._refills.clear()
            self._end_commands(item.reason)
        elif isinstance(item, Received):
            self._on_message(item.message, now)
        elif isinstance(item, Undecodable):
            logger.warning("ignored an unreadable message 0x%02x: %s", item.type_code, item.error)

    def _on_message(self, message: object, now: float) -> None:
        if isinstance(message, JournalData):
            self._last_reply_at = now
            self._on_journal_data(message)
        elif isinstance(message, JournalInfo):
            for name, size in message.journals:
                if size < self._sizes.get(name, 0):
                    logger.warning("journal %s shrank on the device to %d bytes", name, size)
                if self._stored_offset(name) > size:
                    logger.warning(
                        "journal %s: %d bytes stored, the device has only %d",
                        name,
                        self._stored_offset(name),
                        size,
                    )
                self._sizes[name] = size
            self._schedule_reads()
        elif isinstance(message, Event):
            if message.event_id not in self._seen_events:
                self.sink.store_event(message.event)
                self._seen_events[message.event_id] = None
                while len(self._seen_events) > SEEN_EVENTS:
                    self._seen_events.popitem(last=False)
        elif isinstance(message, Status):
            self.sink.store_status(message.status)
        elif isinstance(message, CashUnits):
            self.sink.store_cash_units(message.units, message.reason)
        elif isinstance(message, CommandResult):
            future = self._pending.pop(message.request_id, None)
            if future is not None and not future.done():
                future.set_result(message.result)
        elif isinstance(message, JournalError):
            logger.warning(
                "device refused journal %s at %d: %s", message.name, message.offset, message.text
            )
            self._last_reply_at = now
            self._requested.pop(message.name, None)
            self._refills.pop(message.name, None)  # if it was the read from the stored offset
            if message.code == JournalErrorCode.UNKNOWN_JOURNAL:
                self._sizes.pop(message.name, None)
            else:
                self._reread_at = now + self.retry_interval
        else:
            logger.warning("ignored a %s from the device", type(message).__name__)

    def _stored_offset(self, name: str) -> int:
        if name not in self._stored:
            self._stored[name] = self.sink.journal_offset(name)
        return self._stored[name]

    def _schedule_reads(self) -> None:
        for name in sorted(self._sizes):
            size = self._sizes[name]
            start = self._requested.get(name)
            if start is None:
                start = self._stored_offset(name)
            if size > start:
                self.connection.send(JournalRead(name, start, size - start))
                self._requested[name] = size
                if start == self._stored_offset(name):
                    # Answered from where the gap, if one shows, begins: it fills it.
                    self._refills[name] = _Refill(start, self._clock())

    def _retry_unanswered(self, now: float) -> None:
        """Ask again for journals whose read from the stored offset has gone unanswered.

        The device serves reads in order, so while any journal data comes, a read
        further back in its queue is only waiting its turn; after ``reread_timeout``
        without any, the device has lost it.
        """
        quiet_since = self._last_reply_at
        expired = [
            name
            for name, refill in self._refills.items()
            if now - max(refill.sent_at, quiet_since) >= self.reread_timeout
        ]
        for name in expired:
            logger.warning(
                "journal %s: no answer to the read from %d within %.1f s; asking again",
                name,
                self._refills[name].offset,
                self.reread_timeout,
            )
            del self._refills[name]
            self._requested.pop(name, None)
        if expired:
            self._schedule_reads()

    def _on_journal_data(self, message: JournalData) -> None:
        name = message.name
        expected = self._stored_offset(name)
        end = message.offset + len(message.data)
        if message.offset > expected:
            if name in self._refills:
                # The rest of a read queued before the gap; the read that fills it is on its way.
                logger.debug(
                    "journal %s: data at %d, expected %d; already asked",
                    name,
                    message.offset,
                    expected,
                )
                return
            logger.warning(
                "journal %s: data at %d, expected %d; asking again", name, message.offset, expected
            )
            self._requested[name] = expected
            self._schedule_reads()
            return
        if end > expected:
            self.sink.store_journal(name, expected, message.data[expected - message.offset :])
            self._stored[name] = end
            self._refills.pop(name, None)  # the read from the stored offset is being answered
        if message.last and end < self._requested.get(name, 0):
            # The journal ended before the range asked for: ask again when it grows.
            self._requested[name] = max(end, expected)
            self._refills.pop(name, None)

    def _end_commands(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkReset(f"the session ended: {reason}"))
        self._pending.clear()


def _describe(item: Item) -> str:
    if isinstance(item, Received):
        return type(item.message).__name__
    return type(item).__name__


def _close_quietly(port: Any) -> None:
    try:
        port.close()
    except (serial.SerialException, OSError) as exc:
        logger.debug("closing the port: %s", exc)


__all__ = ["DeviceLink", "LinkSink", "open_serial"]
