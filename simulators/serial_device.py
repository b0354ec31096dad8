"""The device end of the serial link: serves a :class:`DeviceBackend` to the agent.

:class:`SerialDevice` answers the agent's requests (journal reads by name and
offset, queries, remote commands) and pushes what changes on its own: journal
growth, device status, cash units and unsolicited events, events first. It
runs the link protocol of :mod:`device_agent.protocol` over a :class:`Port`:

- ``SerialDevice.on_pty(backend)`` creates a pseudo-terminal; the agent opens
  ``device.device_path`` with pyserial as it would a real serial port;
- ``SerialDevice.on_tcp(backend)`` listens on loopback; the agent opens ``device.url``;
- ``SerialDevice.on_url(backend, url)`` opens any pyserial URL itself.

``python -m simulators.serial_device --journals DIR --terminal-id TID`` serves a
directory of journal files this way and prints what the agent should open.

By default the port is throttled to the baud rate (8N1: ``baud / 10`` bytes per
second each way), so timings are those of a real line, and ``byte_error_rate``
adds line noise. Journal chunks shrink on a line that corrupts frames and grow
back when it clears (:mod:`device_agent.protocol.sizing`). A change of the
backend's ``boot_id`` is a reboot: the link starts a new session and the agent
resynchronises.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self

from device_agent.protocol import (
    COMMANDS,
    CashUnits,
    Command,
    CommandResult,
    Connection,
    EncodeError,
    Event,
    Item,
    JournalData,
    JournalError,
    JournalErrorCode,
    JournalInfo,
    JournalRead,
    LinkConfig,
    LinkStats,
    Message,
    Priority,
    Query,
    Received,
    Role,
    SessionEnded,
    SessionStarted,
    Status,
    Undecodable,
)
from device_agent.protocol.messages import MAX_JOURNAL_ENTRIES
from device_agent.protocol.sizing import LossEstimator, best_chunk_size
from simulators.device_backend import DeviceBackend
from simulators.noise import NoisyPort
from simulators.ports import Port, PtyPort, SerialUrlPort, TcpServerPort, ThrottledPort

logger = logging.getLogger(__name__)

DATA_HEADER_MAX = 1 + 32 + 4 + 1
"""JOURNAL_DATA payload bytes before the data: name (length + up to 32), offset, flags."""
MIN_CHUNK = 128
"""The smallest journal chunk the device shrinks to on a noisy line."""


@dataclass
class _ReadJob:
    name: str
    offset: int
    end: int


class SerialDevice:
    """Serves ``backend`` on ``port``; see the module docstring."""

    def __init__(
        self,
        backend: DeviceBackend,
        port: Port,
        *,
        baudrate: int | None = 115200,
        byte_error_rate: float = 0.0,
        rng: random.Random | None = None,
        config: LinkConfig | None = None,
        chunk_size: int = 1024,
        adaptive_chunks: bool = True,
        poll_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.backend = backend
        self.raw_port = port
        self._rng = rng or random.Random()
        line: Port = port
        self.noise: NoisyPort | None = None
        if byte_error_rate > 0:
            self.noise = NoisyPort(line, byte_error_rate, random.Random(self._rng.getrandbits(64)))
            line = self.noise
        if baudrate is not None:
            line = ThrottledPort(line, baudrate=baudrate, clock=clock, sleep=sleep)
        self.port = line
        self.baudrate = baudrate
        self.chunk_size = chunk_size
        self._loss = LossEstimator() if adaptive_chunks else None
        self.poll_interval = poll_interval
        self._clock = clock
        self._boot_id = backend.boot_id
        self.connection = Connection(
            Role.DEVICE,
            now=clock(),
            session_ids=lambda: self._rng.getrandbits(32),
            config=config,
            boot_id=self._boot_id,
            terminal_id=backend.terminal_id,
        )
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._jobs: deque[_ReadJob] = deque()
        self._events: deque[Event] = deque()
        self._event_epoch = self._rng.getrandbits(32) << 32
        self._event_counter = 0
        self._announced: dict[str, int] = {}
        self._last_status: dict[str, object] | None = None
        self._last_units: list[dict[str, object]] | None = None
        self._next_poll = 0.0
        self.error: BaseException | None = None

    # -- construction helpers -------------------------------------------------------------------

    @classmethod
    def on_pty(cls, backend: DeviceBackend, **options: Any) -> SerialDevice:
        """Serve on a new pseudo-terminal; the agent opens :attr:`device_path`."""
        return cls(backend, PtyPort(), **options)

    @classmethod
    def on_tcp(
        cls, backend: DeviceBackend, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> SerialDevice:
        """Serve on a loopback TCP listener; the agent opens :attr:`url`."""
        return cls(backend, TcpServerPort(host, port), **options)

    @classmethod
    def on_url(
        cls, backend: DeviceBackend, url: str, *, baudrate: int | None = 115200, **options: Any
    ) -> SerialDevice:
        """Serve on a pyserial URL or device path that this side opens."""
        port = SerialUrlPort(url, baudrate=baudrate or 115200)
        return cls(backend, port, baudrate=baudrate, **options)

    @property
    def device_path(self) -> str | None:
        """The serial device path the agent opens (pseudo-terminal only)."""
        return self.raw_port.device_path if isinstance(self.raw_port, PtyPort) else None

    @property
    def url(self) -> str:
        """What the agent passes to pyserial to reach this device."""
        if isinstance(self.raw_port, TcpServerPort):
            return self.raw_port.url
        if isinstance(self.raw_port, PtyPort):
            return self.raw_port.device_path
        if isinstance(self.raw_port, SerialUrlPort):
            return self.raw_port.url
        raise AttributeError("this port has no address an agent could open")

    @property
    def stats(self) -> LinkStats:
        """A copy of the link's counters (frames, retransmissions, line errors)."""
        with self._lock:
            return replace(self.connection.stats, reader=self.connection.reader_stats)

    @property
    def up(self) -> bool:
        with self._lock:
            return self.connection.up

    # -- running --------------------------------------------------------------------------------

    def start(self) -> None:
        """Serve in two background threads (reader and writer) until :meth:`stop`."""
        if self._threads:
            raise RuntimeError("already started")
        self._threads = [
            threading.Thread(target=self._guard, args=(self._read_loop,), name="device-reader"),
            threading.Thread(target=self._guard, args=(self._write_loop,), name="device-writer"),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the port."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self.port.close()

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

    def _guard(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except Exception as exc:
            logger.exception("serial device stopped on an error")
            self.error = exc
            self._stop.set()
            with self._wake:
                self._wake.notify_all()

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            data = self.port.read(4096, 0.02)
            with self._wake:
                now = self._clock()
                if data:
                    self.connection.receive(data, now)
                self._handle_items()
                if now >= self._next_poll:
                    self._next_poll = now + self.poll_interval
                    try:
                        self._poll_backend(now)
                    except Exception:
                        logger.exception("polling the device failed")
                self._flush_events()
                self._wake.notify_all()

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                now = self._clock()
                self._fill_journal_data()
                frame = self.connection.next_frame(now)
                if frame is None:
                    deadline = self.connection.next_deadline(now)
                    wait = 0.05 if deadline is None else min(max(deadline - now, 0.0), 0.05)
                    self._wake.wait(wait)
                    continue
            self.port.write(frame)

    # -- requests from the agent ----------------------------------------------------------------

    def _handle_items(self) -> None:
        while (item := self.connection.next_item()) is not None:
            self._handle(item)
            self.connection.pop_item()

    def _handle(self, item: Item) -> None:
        if isinstance(item, SessionStarted):
            logger.info("link up", extra={"terminal_id": self.backend.terminal_id})
            self._jobs.clear()
        elif isinstance(item, SessionEnded):
            logger.info("link down: %s", item.reason)
            self._jobs.clear()
            unsent = [m for m in item.unacknowledged if isinstance(m, Event)]
            self._events.extendleft(reversed(unsent))
        elif isinstance(item, Received):
            try:
                self._on_request(item.message)
            except Exception:
                # The device could not answer (its backend failed); the agent asks again
                # in its next session, and a journal read is refused below.
                logger.exception("answering %s failed", type(item.message).__name__)
        elif isinstance(item, Undecodable):
            logger.warning("ignored an unreadable message 0x%02x: %s", item.type_code, item.error)

    def _on_request(self, message: Message) -> None:
        if isinstance(message, Query):
            if message.journals:
                journals = self.backend.journals()
                self._announced = dict(journals)
                for start in range(0, max(len(journals), 1), MAX_JOURNAL_ENTRIES):
                    self._send(JournalInfo(tuple(journals[start : start + MAX_JOURNAL_ENTRIES])))
            if message.status:
                self._send_status(self.backend.device_status())
            if message.cash_units:
                self._send_units("query", self.backend.cash_units())
        elif isinstance(message, JournalRead):
            self._on_read(message)
        elif isinstance(message, Command):
            self._on_command(message)
        else:
            logger.warning("ignored a %s from the agent", type(message).__name__)

    def _on_read(self, read: JournalRead) -> None:
        try:
            sizes = dict(self.backend.journals())
        except Exception as exc:
            logger.exception("listing the journals failed")
            self._send(JournalError(read.name, read.offset, JournalErrorCode.READ_FAILED, str(exc)))
            return
        size = sizes.get(read.name)
        if size is None:
            self._send(
                JournalError(
                    read.name, read.offset, JournalErrorCode.UNKNOWN_JOURNAL, "no such journal"
                )
            )
        elif read.offset > size:
            self._send(
                JournalError(
                    read.name,
                    read.offset,
                    JournalErrorCode.OFFSET_BEYOND_END,
                    f"the journal has {size} bytes",
                )
            )
        else:
            end = size if read.length == 0 else read.offset + read.length
            self._jobs.append(_ReadJob(read.name, read.offset, end))

    def _on_command(self, command: Command) -> None:
        result: dict[str, object]
        if command.command not in COMMANDS:
            result = {"ok": False, "error": f"unknown command {command.command!r}"}
        else:
            try:
                result = dict(self.backend.execute(command.command))
            except Exception as exc:
                logger.exception("command %s failed", command.command)
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        if command.command == "send_counters" and result.get("ok") is True:
            # Same priority as the result, queued before it: the agent stores the
            # counters before it sees the command answered.
            self._send_units("command", self.backend.cash_units(), Priority.HIGH)
        for answer in _shrinking(result):
            try:
                self.connection.send(CommandResult(command.request_id, answer), Priority.HIGH)
                return
            except EncodeError as exc:
                logger.warning("command result of %s: %s", command.command, exc)

    # -- what the device pushes -----------------------------------------------------------------

    def _poll_backend(self, now: float) -> None:
        boot_id = self.backend.boot_id
        if boot_id != self._boot_id:
            logger.info("device restarted (boot id %s -> %s)", self._boot_id, boot_id)
            self._boot_id = boot_id
            self.connection.boot_id = boot_id
            self.connection.restart(now, "the device restarted")
            self._jobs.clear()
        for event in self.backend.poll_events():
            self._event_counter += 1
            self._events.append(Event(self._event_epoch | self._event_counter, event))
        if not self.connection.up:
            return
        changed = [(n, s) for n, s in self.backend.journals() if self._announced.get(n) != s]
        if changed:
            self._announced.update(changed)
            for start in range(0, len(changed), MAX_JOURNAL_ENTRIES):
                self._send(JournalInfo(tuple(changed[start : start + MAX_JOURNAL_ENTRIES])))
        status = self.backend.device_status()
        if self._last_status is not None and _without_time(status) != _without_time(
            self._last_status
        ):
            self._send_status(status)
        self._last_status = status
        units = self.backend.cash_units()
        if self._last_units is not None and units != self._last_units:
            self._send_units("changed", units)
        self._last_units = units

    def _flush_events(self) -> None:
        while self._events and self.connection.up:
            event = self._events.popleft()
            try:
                self.connection.send(event, Priority.HIGH)
            except EncodeError as exc:
                logger.error("dropped an event the protocol cannot carry: %s", exc)

    def _send_status(self, status: dict[str, object]) -> None:
        self._last_status = status
        self._send(Status(status))

    def _send_units(
        self, reason: str, units: list[dict[str, object]], priority: Priority = Priority.NORMAL
    ) -> None:
        self._last_units = units
        self._send(CashUnits(reason, units), priority)

    def _send(self, message: Message, priority: Priority = Priority.NORMAL) -> None:
        try:
            self.connection.send(message, priority)
        except EncodeError as exc:
            logger.error("could not send %s: %s", type(message).__name__, exc)

    def _fill_journal_data(self) -> None:
        """Queue the next journal chunks while the window has room for them."""
        room = self.connection.peer_max_payload - DATA_HEADER_MAX
        chunk = min(self.chunk_size, room)
        if self._loss is not None:
            stats = self.connection.stats
            resent = stats.fast_retransmits + stats.timeouts
            rate = self._loss.update(stats.frames_sent, resent, stats.bytes_sent)
            chunk = best_chunk_size(rate, low=min(MIN_CHUNK, chunk), high=chunk)
        while self._jobs and self.connection.wants_bulk():
            job = self._jobs[0]
            size = min(chunk, job.end - job.offset)
            try:
                data = self.backend.read_journal(job.name, job.offset, size) if size > 0 else b""
            except Exception as exc:
                logger.exception("reading journal %s failed", job.name)
                self._jobs.popleft()
                self._send(
                    JournalError(job.name, job.offset, JournalErrorCode.READ_FAILED, str(exc))
                )
                continue
            data = data[:size]
            last = not data or job.offset + len(data) >= job.end
            self.connection.send(JournalData(job.name, job.offset, data, last), Priority.LOW)
            job.offset += len(data)
            if last:
                self._jobs.popleft()


def _shrinking(result: dict[str, object]) -> Iterator[dict[str, object]]:
    """The result, then smaller versions of it for when it does not fit in a frame.

    ``send_counters`` results may repeat the cash units, which the device sends in a
    CASH_UNITS message anyway; the outcome itself must always get through.
    """
    yield result
    ok = result.get("ok") is True
    scalars = {k: v for k, v in result.items() if isinstance(v, str | int | float | bool)}
    yield {**scalars, "ok": ok, "truncated": True}
    error = result.get("error")
    yield {"ok": ok, "truncated": True} | ({"error": str(error)[:200]} if error else {})


def _without_time(status: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in status.items() if key != "time"}


def main(
    argv: list[str] | None = None, *, prog: str = "python -m simulators.serial_device"
) -> None:
    """``atm-sim serial-device`` (or ``python -m simulators.serial_device``): serve a directory
    of journals as a device."""
    import argparse
    import signal
    from pathlib import Path

    from simulators.file_backend import FileDeviceBackend

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve <TID>_<YYYYMMDD>.txt journals (and a counters file) as a device "
        "on the serial link, on a new pseudo-terminal, a loopback TCP port or a pyserial URL.",
    )
    parser.add_argument("--journals", type=Path, required=True, help="directory of EJ files")
    parser.add_argument("--terminal-id", required=True, help="terminal id, e.g. T1000001")
    parser.add_argument("--counters", type=Path, help="counters JSON for the cash units")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--tcp", type=int, metavar="PORT", help="listen on 127.0.0.1:PORT")
    where.add_argument("--url", help="open this pyserial URL or device path")
    parser.add_argument("--baud", type=int, default=115200, help="line speed (default 115200)")
    parser.add_argument("--noise", type=float, default=0.0, help="byte error probability")
    parser.add_argument("--seed", type=int, help="seed of the line noise and session ids")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        backend = FileDeviceBackend(args.journals, args.terminal_id, counters=args.counters)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    options: dict[str, Any] = {
        "baudrate": args.baud,
        "byte_error_rate": args.noise,
        "rng": random.Random(args.seed),
    }
    if args.tcp is not None:
        device = SerialDevice.on_tcp(backend, port=args.tcp, **options)
    elif args.url:
        device = SerialDevice.on_url(backend, args.url, **options)
    else:
        device = SerialDevice.on_pty(backend, **options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with device:
        print(f"serving {backend.terminal_id} on {device.url}", flush=True)
        try:
            while not stop.wait(0.5) and device.error is None:
                pass
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
