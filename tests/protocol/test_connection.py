"""One end of the link against another on a simulated line: sessions, resync, recovery."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from device_agent.protocol import (
    Connection,
    EncodeError,
    Event,
    InvalidArgument,
    JournalData,
    LinkConfig,
    NotConnected,
    Priority,
    Received,
    Role,
    SessionEnded,
    SessionStarted,
    Status,
)
from tests.protocol.support import SimulatedLine, StreamApps, id_source

JOURNAL = bytes(random.Random(1).randrange(32, 127) for _ in range(30_000))
EVENT = {"kind": "safe_door", "time": "2026-11-16T08:00:00", "state": "open"}


def stream_line(
    *, seed: int = 0, chunk: int = 1024, **config: float
) -> tuple[SimulatedLine, StreamApps]:
    apps = StreamApps(JOURNAL, chunk=chunk)
    line = SimulatedLine(
        seed=seed,
        config=LinkConfig(**config),  # type: ignore[arg-type]
        host_app=apps.host,
        device_app=apps.device,
    )
    return line, apps


def done(apps: StreamApps) -> bool:
    return bytes(apps.got) == JOURNAL


def test_handshake_introduces_the_device() -> None:
    events: list[object] = []

    def host(connection: Connection) -> None:
        while (item := connection.next_item()) is not None:
            events.append(item)
            connection.pop_item()

    line = SimulatedLine(host_app=host)
    assert line.run(lambda: line.host.up and line.device.up, timeout=1.0)
    assert line.now < 0.02
    (started,) = events
    assert isinstance(started, SessionStarted)
    assert started.peer.device
    assert started.peer.terminal_id == "T1000001"
    assert started.peer.boot_id == 1
    assert started.peer.session == line.device.session
    assert line.host.peer == started.peer


def test_clean_transfer_is_exact_and_uses_the_line_well() -> None:
    line, apps = stream_line()
    assert line.run(lambda: done(apps), timeout=10.0)
    assert len(JOURNAL) / line.now / line.rate > 0.93
    assert line.device.stats.retransmissions == 0


@settings(max_examples=25, deadline=None)
# A late frame of the session before the host's restart was taken in the new one
# (the device's sequence numbers start where they did): data delivered twice.
@example(seed=203, error_rate=3e-3, loss=0.0, duplicate=0.05, reorder=0.05, chunk=1024)
# Long frames nearly all damaged: the host heard nothing for a link timeout and kept
# restarting, then the last frame was repeated only every backed-off RTO.
@example(seed=1999508, error_rate=3e-3, loss=0.02, duplicate=0.0, reorder=0.0, chunk=1024)
@given(
    seed=st.integers(0, 2**32),
    error_rate=st.sampled_from([0.0, 1e-4, 1e-3, 3e-3]),
    loss=st.sampled_from([0.0, 0.02, 0.1]),
    duplicate=st.sampled_from([0.0, 0.05]),
    reorder=st.sampled_from([0.0, 0.05]),
    chunk=st.sampled_from([64, 500, 1024]),
)
def test_transfer_over_a_bad_line_is_exact(
    seed: int, error_rate: float, loss: float, duplicate: float, reorder: float, chunk: int
) -> None:
    line, apps = stream_line(seed=seed, chunk=chunk)
    line.noisy(error_rate)
    for direction in (line.to_host, line.to_device):
        direction.loss, direction.duplicate, direction.reorder = loss, duplicate, reorder
    assert line.run(lambda: done(apps), timeout=600.0), (len(apps.got), line.now)
    assert apps.sessions == 1 + line.host.stats.resets + line.device.stats.resets


@pytest.mark.parametrize(
    ("seed", "loss", "duplicate", "reorder"),
    [(203, 0.0, 0.05, 0.05), (1999508, 0.02, 0.0, 0.0)],
)
def test_draws_that_once_failed_transfer_exactly_and_promptly(
    seed: int, loss: float, duplicate: float, reorder: float
) -> None:
    line, apps = stream_line(seed=seed)
    line.noisy(3e-3)  # a 1,056-byte frame arrives intact one time in 24
    for direction in (line.to_host, line.to_device):
        direction.loss, direction.duplicate, direction.reorder = loss, duplicate, reorder
    assert line.run(lambda: done(apps), timeout=600.0), (len(apps.got), line.now)
    # Near what the line allows (some 65 s), and without giving up the session.
    assert line.now < 200.0
    assert line.host.stats.resets == line.device.stats.resets == 0
    assert apps.sessions == 1


def test_a_frame_of_the_session_before_a_restart_is_not_taken_in_the_next() -> None:
    line, apps = stream_line()
    assert line.run(lambda: len(apps.got) > 5_000, timeout=10.0)
    old = [wire for who, wire in line.transcript if who == "device"]
    line.host.restart(line.now, "power cycle")
    assert line.run(lambda: apps.sessions == 2 and len(apps.got) > 10_000, timeout=10.0)
    # The device kept its session id, so its frames of the first session carry the
    # sequence numbers its frames of the second one do; the line delivers them late.
    checksum_errors = line.host.reader_stats["checksum_errors"]
    hellos = sum(1 for wire in old if wire[2] == 0x01)  # HELLO: header byte 1, after COBS
    for wire in old:
        line.host.receive(wire, line.now)
    assert line.host.reader_stats["checksum_errors"] - checksum_errors == len(old) - hellos
    assert line.run(lambda: done(apps), timeout=10.0)  # StreamApps checks every offset
    assert apps.sessions == 2


def test_a_late_hello_of_a_replaced_peer_session_is_ignored() -> None:
    line, apps = stream_line()
    assert line.run(lambda: len(apps.got) > 5_000, timeout=10.0)
    old_hellos = [wire for who, wire in line.transcript if who == "host" and wire[2] == 0x01]
    line.host.restart(line.now, "power cycle")
    assert line.run(lambda: apps.sessions == 2 and len(apps.got) > 10_000, timeout=10.0)
    ignored = line.device.stats.ignored
    for wire in old_hellos:
        line.device.receive(wire, line.now)
    assert line.device.stats.ignored - ignored == len(old_hellos)
    assert line.device.up
    assert line.run(lambda: done(apps), timeout=10.0)
    assert apps.sessions == 2
    assert line.device.stats.sessions == 2


def test_a_busy_end_still_sends_an_ack_every_keepalive_interval() -> None:
    line, apps = stream_line()
    assert line.run(lambda: line.device.up, timeout=1.0)
    start, acks = line.now, line.device.stats.acks_sent
    assert line.run(lambda: done(apps), timeout=10.0)
    # The device sent data frames all along; the host gave it nothing to acknowledge.
    assert line.device.stats.acks_sent - acks >= int(line.now - start)


@pytest.mark.parametrize("who", ["device", "host"])
def test_a_restart_mid_transfer_resumes_from_the_stored_offset(who: str) -> None:
    line, apps = stream_line()
    assert line.run(lambda: len(apps.got) > 10_000, timeout=10.0)
    getattr(line, who).restart(line.now, "power cycle")
    assert line.run(lambda: done(apps), timeout=10.0)
    assert apps.sessions == 2


def test_a_new_device_instance_is_recognised() -> None:
    line, apps = stream_line()
    assert line.run(lambda: len(apps.got) > 10_000, timeout=10.0)
    line.device = Connection(
        Role.DEVICE, now=line.now, session_ids=id_source(99), boot_id=2, terminal_id="T1000001"
    )
    apps.served_from = None
    assert line.run(lambda: done(apps), timeout=10.0)
    assert apps.sessions == 2


def test_a_dead_line_ends_the_session_and_it_comes_back() -> None:
    line, apps = stream_line()
    assert line.run(lambda: len(apps.got) > 5_000, timeout=10.0)
    line.to_host.dead_until = line.to_device.dead_until = line.now + 10.0
    line.run_for(8.0)
    assert not line.host.up
    assert not line.device.up
    assert line.host.stats.resets == 1
    assert line.run(lambda: done(apps), timeout=20.0)
    assert apps.sessions == 2


def test_an_idle_link_keeps_itself_alive() -> None:
    line = SimulatedLine()
    assert line.run(lambda: line.host.up and line.device.up, timeout=1.0)
    before = line.host.stats.acks_sent
    line.run_for(30.0)
    assert line.host.up
    assert line.device.up
    assert line.host.stats.resets == line.device.stats.resets == 0
    assert line.host.stats.acks_sent - before >= 25


def test_a_message_is_acknowledged_only_once_the_application_pops_it() -> None:
    held: list[object] = []

    def host(connection: Connection) -> None:
        item = connection.next_item()
        if isinstance(item, SessionStarted):
            connection.pop_item()
        elif item is not None:
            held.append(item)

    line = SimulatedLine(host_app=host)
    assert line.run(lambda: line.device.up, timeout=1.0)
    line.device.send(Event(7, EVENT), Priority.HIGH)
    line.run_for(0.5)
    assert held
    assert line.device.in_flight == 1
    line.host.pop_item()
    line.host_app = None
    line.run_for(0.5)
    assert line.device.in_flight == 0


def test_a_session_that_ends_hands_back_what_was_not_acknowledged() -> None:
    ended: list[SessionEnded] = []

    def device(connection: Connection) -> None:
        while (item := connection.next_item()) is not None:
            if isinstance(item, SessionEnded):
                ended.append(item)
            connection.pop_item()

    line = SimulatedLine(device_app=device)
    assert line.run(lambda: line.device.up, timeout=1.0)
    line.to_host.dead_until = line.now + 100.0
    line.device.send(Event(1, EVENT), Priority.HIGH)
    line.device.send(
        Status(
            {"time": "2026-11-16T08:00:00", "in_service": True, "safe_door": "open", "devices": {}}
        )
    )
    line.run_for(0.2)
    line.device.restart(line.now, "reboot")
    line.run_for(0.01)
    (end,) = ended
    assert end.reason == "reboot"
    assert [type(m).__name__ for m in end.unacknowledged] == ["Event", "Status"]


def test_high_priority_overtakes_queued_bulk() -> None:
    received: list[str] = []

    def host(connection: Connection) -> None:
        while (item := connection.next_item()) is not None:
            if isinstance(item, Received):
                received.append(type(item.message).__name__)
            connection.pop_item()

    line = SimulatedLine(host_app=host)
    assert line.run(lambda: line.device.up, timeout=1.0)
    for n in range(3):
        line.device.send(JournalData("20261116", n, b"x", False), Priority.LOW)
    line.device.send(Event(1, EVENT), Priority.HIGH)
    line.run_for(0.5)
    assert received == ["Event", "JournalData", "JournalData", "JournalData"]


def test_an_end_ignores_its_own_echo() -> None:
    connection = Connection(Role.HOST, now=0.0, session_ids=id_source(1))
    hello = connection.next_frame(0.0)
    assert hello is not None
    for _ in range(3):
        connection.receive(hello, 0.1)
    assert not connection.up
    assert connection.stats.ignored == 3
    assert connection.next_item() is None


def test_sending_needs_a_session_and_a_payload_the_peer_accepts() -> None:
    line = SimulatedLine(config=LinkConfig(max_payload=256))
    with pytest.raises(NotConnected):
        line.device.send(Event(1, EVENT))
    assert line.run(lambda: line.device.up, timeout=1.0)
    with pytest.raises(EncodeError, match="at most 256"):
        line.device.send(JournalData("20261116", 0, bytes(300), False))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("window", 0),
        ("max_payload", 100),
        ("max_payload", 5000),
        ("hello_interval", 0.0),
        ("rto_initial", 10.0),
        ("link_timeout", 0.5),
    ],
)
def test_config_is_validated(option: str, value: float) -> None:
    with pytest.raises(InvalidArgument, match=option.split("_")[0]):
        LinkConfig(**{option: value})  # type: ignore[arg-type]
