"""Remote commands on the agent's side: run once over the link, reported until the service has
the answer; and ``atm-agent command`` against a device on a pseudo-terminal."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from atm_service.context import AppContext
from atm_service.models.users import Role
from device_agent.agent import Agent, CommandRunner
from device_agent.errors import ServiceUnreachable
from device_agent.link import LinkSink
from device_agent.ports import LinkRunner
from device_agent.protocol import NotConnected
from device_agent.spool import Spool
from device_agent.uploader import RemoteCommand
from simulators.file_backend import FileDeviceBackend
from simulators.serial_device import SerialDevice
from tests.device_agent.test_agent import TERMINAL, ScriptedLink, _config, _quick_sleep, _run_until
from tests.ingest_support import Fleet, SerialTransport, make_fleet, run_async, sample_journal
from tests.samples import sample_dir
from tests.support import FakeClock, add_user, login

ATM_AGENT = str(Path(sys.executable).with_name("atm-agent"))


class Device:
    """A link whose device answers, or fails, as told."""

    up = True

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.ran: list[str] = []

    def run(self, stop: object) -> None:
        raise AssertionError("not used here")

    def send_command(self, command: str, *, timeout: float = 10.0) -> dict[str, object]:
        self.ran.append(command)
        if self.failure is not None:
            raise self.failure
        return {"ok": True, "in_service": command != "go_out_of_service"}


class Service:
    """Takes reports; can be away."""

    def __init__(self) -> None:
        self.away = False
        self.reports: list[tuple[int, dict[str, object]]] = []

    async def report(self, command_id: int, answer: dict[str, object]) -> None:
        if self.away:
            raise ServiceUnreachable("no answer from the service")
        self.reports.append((command_id, answer))


def _handle(runner: CommandRunner, *commands: RemoteCommand) -> None:
    async def main() -> None:
        await runner.handle(commands)
        await runner.wait()

    run_async(main())


def test_a_command_runs_once_and_is_reported_until_the_service_has_it() -> None:
    device, service = Device(), Service()
    runner = CommandRunner(link=lambda: device, report=service.report, timeout_s=1)
    command = RemoteCommand(id=7, command="go_out_of_service")
    service.away = True
    _handle(runner, command)
    assert device.ran == ["go_out_of_service"]
    assert service.reports == []
    service.away = False
    _handle(runner, command)  # listed again: reported, not run again
    assert device.ran == ["go_out_of_service"]
    assert service.reports == [(7, {"ok": True, "in_service": False})]
    _handle(runner, command)  # a listing that crossed the report: nothing happens
    assert device.ran == ["go_out_of_service"]
    assert len(service.reports) == 1


def test_a_command_the_device_cannot_take_is_reported_as_failed() -> None:
    service = Service()
    runner = CommandRunner(link=lambda: None, report=service.report, timeout_s=1)
    _handle(runner, RemoteCommand(id=1, command="send_counters"))
    assert service.reports == [(1, {"ok": False, "error": "the serial link is not running"})]
    device = Device(NotConnected("no session with the device"))
    runner = CommandRunner(link=lambda: device, report=service.report, timeout_s=1)
    _handle(runner, RemoteCommand(id=2, command="send_counters"))
    assert service.reports[-1] == (
        2,
        {"ok": False, "error": "NotConnected: no session with the device"},
    )


def test_the_agent_runs_what_a_dispatcher_asked_for(
    app: FastAPI, client: TestClient, context: AppContext, clock: FakeClock, tmp_path: Path
) -> None:
    fleet: Fleet = make_fleet(context, TERMINAL)
    dispatcher = login(client, add_user(context, Role.DISPATCHER))
    atm_id = fleet.atm_ids[TERMINAL]
    asked = dispatcher.post(f"/api/v1/atms/{atm_id}/commands", json={"command": "send_counters"})
    assert asked.status_code == 201, asked.text
    links: list[ScriptedLink] = []

    def factory(port: str, sink: LinkSink) -> LinkRunner:
        links.append(ScriptedLink(sink, fail_first=False))
        return links[-1]

    line = SerialTransport(httpx.ASGITransport(app=app))
    agent = Agent(
        _config(tmp_path, fleet),
        link_factory=factory,
        transport=line,
        clock=clock,
        sleep=_quick_sleep,
    )

    def answered() -> bool:
        state = dispatcher.get(f"/api/v1/atms/{atm_id}/commands/{asked.json()['id']}").json()
        return bool(state["state"] == "succeeded")

    _run_until(agent, line, answered)
    assert links[0].commands == ["send_counters"]
    done = dispatcher.get(f"/api/v1/atms/{atm_id}/commands/{asked.json()['id']}").json()
    assert done["result"] == {"ok": True, "command": "send_counters"}


@pytest.fixture
def device(tmp_path: Path) -> Iterator[SerialDevice]:
    journals = tmp_path / "ej"
    journals.mkdir()
    (journals / f"{TERMINAL}_20261116.txt").write_bytes(sample_journal(TERMINAL, "20261116"))
    counters = sample_dir("counters") / f"{TERMINAL}_20261116.json"
    backend = FileDeviceBackend(journals, TERMINAL, counters=counters)
    with SerialDevice.on_pty(backend, baudrate=2_000_000, rng=random.Random(3)) as serving:
        yield serving


def test_atm_agent_command_runs_a_command_on_the_device_here(
    device: SerialDevice, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.db"
    done = subprocess.run(
        [
            ATM_AGENT,
            "command",
            "send_counters",
            "--port",
            device.url,
            "--spool",
            str(spool),
            "--baud",
            "2000000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["ok"] is True
    with Spool(spool) as opened:
        kinds = [record.kind for record in opened.pending_records(100)]
    assert "cash_units" in kinds  # what the device sent meanwhile is kept for upload


def test_atm_agent_command_says_what_is_wrong(tmp_path: Path) -> None:
    spool = str(tmp_path / "spool.db")
    refused = subprocess.run(
        [ATM_AGENT, "command", "reboot", "--port", "loop://", "--spool", spool],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert (
        "COMMAND must be one of go_in_service, go_out_of_service, send_counters" in refused.stderr
    )
    silent = subprocess.run(
        [
            ATM_AGENT,
            "command",
            "send_counters",
            "--port",
            "loop://",
            "--spool",
            spool,
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert silent.returncode == 1
    assert "no answer from a device on loop:// within 1 s" in silent.stderr
    assert "Traceback" not in silent.stderr
