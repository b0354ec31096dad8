"""Ports: the pseudo-terminal, TCP and pyserial ports, and the line that runs at a baud rate."""

from __future__ import annotations

import time

import pytest
import serial

from simulators.ports import PtyPort, SerialUrlPort, TcpServerPort, ThrottledPort


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class ScriptedPort:
    """Hands out ``script`` bytes at given times; waiting advances the fake time."""

    def __init__(self, fake: FakeTime, script: list[tuple[float, bytes]]) -> None:
        self.fake = fake
        self.script = script
        self.written: list[tuple[float, bytes]] = []

    def read(self, size: int, timeout: float) -> bytes:
        if self.script and self.script[0][0] <= self.fake.now:
            return self.script.pop(0)[1]
        wake = self.fake.now + timeout
        if self.script:
            wake = min(wake, self.script[0][0])
        self.fake.now = max(self.fake.now, wake)
        if self.script and self.script[0][0] <= self.fake.now:
            return self.script.pop(0)[1]
        return b""

    def write(self, data: bytes) -> None:
        self.written.append((self.fake.now, data))

    def close(self) -> None:
        pass


def test_writes_take_the_time_of_the_line() -> None:
    fake = FakeTime()
    inner = ScriptedPort(fake, [])
    line = ThrottledPort(inner, baudrate=9600, clock=fake.clock, sleep=fake.sleep)
    line.write(bytes(960))
    line.write(bytes(96))
    # 1,056 bytes at 960 B/s: the last slice starts once the first 1,056 - slice have gone.
    assert b"".join(d for _, d in inner.written) == bytes(1056)
    assert fake.now == pytest.approx(100.0 + (1056 - len(inner.written[-1][1])) / 960)
    starts = [t for t, _ in inner.written]
    assert starts == sorted(starts)
    sent_before = 0
    for start, data in inner.written:
        assert start == pytest.approx(100.0 + sent_before / 960)
        sent_before += len(data)


def test_received_bytes_arrive_at_the_line_rate() -> None:
    fake = FakeTime()
    inner = ScriptedPort(fake, [(100.0, bytes(1152)), (100.5, b"x")])
    line = ThrottledPort(inner, baudrate=11520, clock=fake.clock, sleep=fake.sleep)
    got = b""
    times = []
    while len(got) < 1153:
        chunk = line.read(4096, 1.0)
        got += chunk
        times.append((fake.now, len(got)))
    assert got == bytes(1152) + b"x"
    # 1,152 bytes at 1,152 B/s: the last arrives one second after the first started.
    assert fake.now == pytest.approx(101.0 + 1 / 1152, abs=2e-3)
    for now, count in times:
        assert count <= (now - 100.0) * 1152 + 1.001


def test_read_gives_up_after_its_timeout() -> None:
    fake = FakeTime()
    line = ThrottledPort(ScriptedPort(fake, []), baudrate=9600, clock=fake.clock, sleep=fake.sleep)
    assert line.read(10, 0.25) == b""
    assert fake.now == pytest.approx(100.25)


def test_throttled_pty_really_runs_at_the_baud_rate() -> None:
    pty = PtyPort()
    line = ThrottledPort(pty, baudrate=19200)
    agent = serial.serial_for_url(pty.device_path, baudrate=19200, timeout=0.05)
    try:
        started = time.monotonic()
        line.write(bytes(range(256)) * 4)
        received = b""
        while len(received) < 1024 and time.monotonic() - started < 5:
            received += agent.read(1024 - len(received))
        elapsed = time.monotonic() - started
        assert received == bytes(range(256)) * 4
        assert 1024 / 1920 * 0.95 < elapsed < 1024 / 1920 + 0.4
    finally:
        agent.close()
        pty.close()


def test_pty_carries_bytes_both_ways_and_survives_the_agent_reopening() -> None:
    pty = PtyPort()
    try:
        for _ in range(2):
            agent = serial.serial_for_url(pty.device_path, baudrate=115200, timeout=0.5)
            pty.write(b"\x00\x11\xff\n\r")
            assert agent.read(5) == b"\x00\x11\xff\n\r"
            agent.write(b"\x13\x11\x03\x00")
            got = b""
            while len(got) < 4:
                got += pty.read(10, 0.5)
            assert got == b"\x13\x11\x03\x00"
            agent.close()
        assert pty.read(10, 0.05) == b""
    finally:
        pty.close()


def test_pty_drops_what_nobody_reads_instead_of_blocking() -> None:
    pty = PtyPort(drop_after=0.05)
    try:
        started = time.monotonic()
        for _ in range(100):
            pty.write(bytes(4096))
            if pty.dropped:
                break
        assert pty.dropped > 0
        assert time.monotonic() - started < 5
    finally:
        pty.close()
    with pytest.raises(OSError, match="closed"):
        pty.read(1, 0.0)


def test_tcp_port_serves_a_socket_url_and_takes_a_new_client() -> None:
    port = TcpServerPort()
    try:
        assert port.url.startswith("socket://127.0.0.1:")
        for message in (b"first", b"second"):
            agent = serial.serial_for_url(port.url, timeout=0.5)
            agent.write(message)
            got = b""
            deadline = time.monotonic() + 2
            while len(got) < len(message) and time.monotonic() < deadline:
                got += port.read(100, 0.1)
            assert got == message
            port.write(b"\x00reply")
            assert agent.read(6) == b"\x00reply"
            agent.close()
        port.write(b"lost")  # nobody connected: gone, as on an open line
    finally:
        port.close()


def test_serial_url_port_on_loop() -> None:
    port = SerialUrlPort("loop://", baudrate=9600)
    try:
        port.write(b"echo\x00")
        assert port.read(100, 0.5) == b"echo\x00"
        assert port.read(100, 0.05) == b""
    finally:
        port.close()


def test_baudrate_is_checked() -> None:
    with pytest.raises(ValueError, match="baudrate"):
        ThrottledPort(SerialUrlPort("loop://"), baudrate=0)
