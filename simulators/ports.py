"""Byte ports for the device side of the link, and a line that runs at a baud rate.

A :class:`Port` moves bytes and never blocks longer than asked. The device end
(:mod:`simulators.serial_device`) can serve:

- :class:`PtyPort`: the master side of a new pseudo-terminal; the agent opens the
  slave path (``device_path``) as an ordinary serial device with pyserial;
- :class:`SerialUrlPort`: any pyserial URL (a real port, ``socket://``, ``loop://``);
- :class:`TcpServerPort`: a loopback TCP listener, for an agent that opens
  ``socket://127.0.0.1:<port>``.

:class:`ThrottledPort` makes any port behave like a serial line at a baud rate:
8N1 framing is 10 bit times per byte, so the line carries ``baud / 10`` bytes per
second in each direction, written bytes take their time to go out and received
bytes arrive one after the other at that rate.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import serial

READ_SIZE = 4096


class Port(Protocol):
    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes, waiting at most ``timeout`` seconds for the first; b"" if none."""
        ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class PortClosed(OSError):
    """The port was closed or its other end went away for good."""


class PtyPort:
    """The master side of a new pseudo-terminal in raw mode.

    The slave stays open on this side too, so the agent can open, close and reopen
    ``device_path`` at will. Bytes written while nobody reads the slave fill the
    terminal's buffer and are then dropped, as on a real line with no one listening.
    """

    def __init__(self, *, drop_after: float = 0.5) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.device_path = os.ttyname(self._slave)
        self._drop_after = drop_after
        self._closed = False
        self.dropped = 0

    def read(self, size: int, timeout: float) -> bytes:
        if self._closed:
            raise PortClosed("pty closed")
        ready, _, _ = select.select([self._master], [], [], max(timeout, 0.0))
        if not ready:
            return b""
        try:
            return os.read(self._master, size)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""  # no slave side open at the moment
            raise

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + self._drop_after
        while view and not self._closed:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                written = 0
            view = view[written:]
            if view:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.dropped += len(view)
                    return
                select.select([], [self._master], [], left)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)


class SerialUrlPort:
    """Any pyserial URL or device path, opened 8N1 without flow control."""

    def __init__(self, url: str, *, baudrate: int = 115200, poll: float = 0.01) -> None:
        self.url = url
        self._serial: Any = serial.serial_for_url(url, baudrate=baudrate, timeout=poll)

    def read(self, size: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            waiting = self._serial.in_waiting
            data: bytes = self._serial.read(min(waiting, size) if waiting > 1 else 1)
            if data or time.monotonic() >= deadline:
                return data

    def write(self, data: bytes) -> None:
        self._serial.write(data)

    def close(self) -> None:
        self._serial.close()


class TcpServerPort:
    """A loopback TCP listener that acts as the device's end of a cable.

    One client at a time: a new connection replaces the old one; bytes written
    while no client is connected are lost, as on a line with no one listening.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._listener = socket.create_server((host, port))
        self._listener.setblocking(False)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._client: socket.socket | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def url(self) -> str:
        return f"socket://{self.address[0]}:{self.address[1]}"

    def read(self, size: int, timeout: float) -> bytes:
        if self._closed:
            raise PortClosed("listener closed")
        watch = [self._listener] + ([self._client] if self._client else [])
        ready, _, _ = select.select(watch, [], [], max(timeout, 0.0))
        if self._listener in ready:
            with contextlib.suppress(BlockingIOError):
                client, _ = self._listener.accept()
                client.setblocking(True)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with self._lock:
                    old, self._client = self._client, client
                if old is not None:
                    old.close()
        current = self._client
        if current is None or current not in ready:
            return b""
        try:
            data = current.recv(size)
        except OSError:
            data = b""
        if not data:
            self._drop_client(current)
        return data

    def write(self, data: bytes) -> None:
        client = self._client
        if client is None:
            return
        try:
            client.sendall(data)
        except OSError:
            self._drop_client(client)

    def _drop_client(self, client: socket.socket) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
        client.close()

    def close(self) -> None:
        self._closed = True
        if self._client is not None:
            self._client.close()
        self._listener.close()


class ThrottledPort:
    """A port that carries bytes at the rate of a serial line, in both directions.

    Writes go out in slices of a few milliseconds, each when the line is free;
    received bytes are handed on no sooner than the line could have delivered them
    one after the other. ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        inner: Port,
        *,
        baudrate: int,
        bits_per_byte: int = 10,
        slice_seconds: float = 0.004,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if baudrate <= 0:
            raise ValueError(f"baudrate must be positive, got {baudrate}")
        self.inner = inner
        self.bytes_per_second = baudrate / bits_per_byte
        self._slice = max(1, int(self.bytes_per_second * slice_seconds))
        self._clock = clock
        self._sleep = sleep
        self._tx_free = clock()
        self._rx_free = 0.0
        self._rx: deque[list[Any]] = deque()  # [start time, bytes, bytes already handed on]

    def write(self, data: bytes) -> None:
        for start in range(0, len(data), self._slice):
            part = data[start : start + self._slice]
            now = self._clock()
            if self._tx_free > now:
                self._sleep(self._tx_free - now)
            else:
                self._tx_free = now
            self.inner.write(part)
            self._tx_free += len(part) / self.bytes_per_second

    def read(self, size: int, timeout: float) -> bytes:
        deadline = self._clock() + timeout
        while True:
            now = self._clock()
            out = self._release(now, size)
            if out:
                return out
            if self._rx:
                segment = self._rx[0]
                wait = segment[0] + (segment[2] + 1) / self.bytes_per_second - now
            else:
                wait = deadline - now
            wait = min(wait, deadline - now)
            data = self.inner.read(READ_SIZE, max(wait, 0.0))
            if data:
                self._arrive(data, self._clock())
            elif self._clock() >= deadline and not self._release_ready(self._clock()):
                return b""

    def _arrive(self, data: bytes, now: float) -> None:
        start = max(now, self._rx_free)
        self._rx_free = start + len(data) / self.bytes_per_second
        self._rx.append([start, data, 0])

    def _release_ready(self, now: float) -> bool:
        if not self._rx:
            return False
        start, _, taken = self._rx[0]
        return bool(now >= start + (taken + 1) / self.bytes_per_second)

    def _release(self, now: float, size: int) -> bytes:
        out = bytearray()
        while self._rx and len(out) < size:
            segment = self._rx[0]
            start, data, taken = segment
            arrived = min(len(data), int((now - start) * self.bytes_per_second + 1e-9))
            count = min(arrived - taken, size - len(out))
            if count <= 0:
                break
            out += data[taken : taken + count]
            segment[2] = taken + count
            if segment[2] == len(data):
                self._rx.popleft()
            else:
                break
        return bytes(out)

    def close(self) -> None:
        self.inner.close()
