"""The whole agent: a link thread feeding the spool, the uploader and heartbeats, against the
real service in-process; a link that fails is restarted, and nothing is lost on the way."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from atm_service.context import AppContext
from atm_service.services.fleet_state import get_state
from atm_service.services.journals import get_journal
from device_agent.agent import Agent, AgentConfig, LinkState, device_link_factory
from device_agent.errors import LinkUnavailable
from device_agent.link import DeviceLink, LinkSink
from device_agent.ports import LinkRunner
from device_agent.signing import write_key_file
from device_agent.uploader import UploadPolicy
from tests.ingest_support import (
    Fleet,
    SerialTransport,
    make_fleet,
    run_async,
    sample_journal,
)
from tests.protocol.support import MemorySink
from tests.support import FakeClock

TERMINAL = "T1000001"
DAYS = ("20261116", "20261117")


class ScriptedLink:
    """Plays a device over a link: journals in frames, a status, an event; then idles."""

    up = True

    def __init__(self, sink: LinkSink, *, fail_first: bool) -> None:
        self.sink = sink
        self.fail_first = fail_first
        self.commands: list[str] = []

    def send_command(self, command: str, *, timeout: float = 10.0) -> dict[str, object]:
        self.commands.append(command)
        return {"ok": True, "command": command}

    def run(self, stop: threading.Event) -> None:
        for day in DAYS:
            data = sample_journal(TERMINAL, day)
            start = self.sink.journal_offset(day)
            while start < len(data):
                self.sink.store_journal(day, start, data[start : start + 300])
                start = self.sink.journal_offset(day)
                if self.fail_first and start > 3000:
                    self.fail_first = False
                    raise OSError("serial port vanished")
        self.sink.store_status(
            {
                "time": "2026-11-16T08:00:00",
                "in_service": True,
                "safe_door": "closed",
                "devices": {"dispenser": "ok"},
            }
        )
        self.sink.store_event({"kind": "safe_door", "time": "2026-11-16T08:00:03", "state": "open"})
        stop.wait()


@pytest.fixture
def fleet(context: AppContext) -> Fleet:
    return make_fleet(context, TERMINAL)


def _config(tmp_path: Path, fleet: Fleet) -> AgentConfig:
    key_path = tmp_path / "device.key"
    write_key_file(key_path, fleet.keys[TERMINAL])
    return AgentConfig(
        port="loop://",
        service_url="http://atm-service",
        key_path=key_path,
        spool_path=tmp_path / "spool.db",
        policy=UploadPolicy(poll_interval_s=0.01, heartbeat_interval_s=0.05),
        link_retry_s=0.01,
    )


async def _quick_sleep(seconds: float) -> None:
    await asyncio.sleep(min(seconds, 0.01))


def _run_until(
    agent: Agent, line: SerialTransport, done: Callable[[], bool], timeout: float = 20.0
) -> None:
    async def main() -> None:
        async def watch() -> None:
            while True:
                async with line.lock:  # the test database is one connection: take turns
                    if done():
                        break
                await asyncio.sleep(0.02)
            agent.stop()

        watcher = asyncio.create_task(watch())
        await asyncio.wait_for(agent.run(), timeout)
        await watcher

    run_async(main())


def test_agent_reads_spools_and_uploads_through_a_link_failure(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, tmp_path: Path
) -> None:
    links: list[ScriptedLink] = []

    def factory(port: str, sink: LinkSink) -> LinkRunner:
        assert port == "loop://"
        link = ScriptedLink(sink, fail_first=not links)
        links.append(link)
        return link

    line = SerialTransport(httpx.ASGITransport(app=app))
    agent = Agent(
        _config(tmp_path, fleet),
        link_factory=factory,
        transport=line,
        clock=clock,
        sleep=_quick_sleep,
    )
    atm_id = fleet.atm_ids[TERMINAL]

    def delivered() -> bool:
        with context.database.session() as session:
            state = get_state(session, atm_id=atm_id, now=clock(), offline_after=timedelta(1))
            try:
                held = [get_journal(session, atm_id, day) for day in DAYS]
            except Exception:
                return False
        return (
            held == [sample_journal(TERMINAL, day) for day in DAYS]
            and state.last_event_kind == "safe_door"
            and state.last_heartbeat_at is not None
            and state.backlog_bytes == 0
        )

    _run_until(agent, line, delivered)
    assert len(links) == 2  # the failed link was started again
    assert agent.link_state() == "stopped"
    with context.database.session() as session:
        state = get_state(session, atm_id=atm_id, now=clock(), offline_after=timedelta(1))
    assert state.in_service is True
    assert state.safe_door == "open"
    assert state.link_state in {"up", "stopped"}


def test_agent_without_a_serial_link_still_uploads_and_says_why(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, tmp_path: Path
) -> None:
    def factory(port: str, sink: LinkSink) -> LinkRunner:
        raise LinkUnavailable("no such port")

    config = _config(tmp_path, fleet)
    line = SerialTransport(httpx.ASGITransport(app=app))
    agent = Agent(config, link_factory=factory, transport=line, clock=clock, sleep=_quick_sleep)
    atm_id = fleet.atm_ids[TERMINAL]

    def reported() -> bool:
        with context.database.session() as session:
            state = get_state(session, atm_id=atm_id, now=clock(), offline_after=timedelta(1))
        return (state.link_state or "").startswith("unavailable")

    _run_until(agent, line, reported)
    with context.database.session() as session:
        state = get_state(session, atm_id=atm_id, now=clock(), offline_after=timedelta(1))
    assert state.link_state == "unavailable: no such port"


def test_the_default_link_is_the_serial_device_link(tmp_path: Path) -> None:
    sink = MemorySink()
    link = device_link_factory("loop://", sink, baudrate=921600)
    assert isinstance(link, DeviceLink)
    assert (link.url, link.baudrate, link.sink) == ("loop://", 921600, sink)
    assert link.up is False


def test_the_heartbeat_says_how_the_link_stands() -> None:
    state = LinkState()
    assert state() == "starting"
    link = ScriptedLink(MemorySink(), fail_first=False)
    state.set("running", link)
    assert state() == "up"
    link.up = False
    assert state() == "waiting for the device"
    link.refused = "the device on /dev/ttyS0 is terminal T1000002, not T1000001"  # type: ignore[attr-defined]
    assert state() == "refused: the device on /dev/ttyS0 is terminal T1000002, not T1000001"
    state.set("stopped")
    assert state() == "stopped"
    assert state.link is None
