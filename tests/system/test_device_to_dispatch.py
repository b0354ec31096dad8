"""End to end: a live simulated ATM on a pseudo-terminal, the agent's serial link, spool and
uploader, the service over HTTP, the dispatch rules, and the engineer's live page.

LiveAtm → SerialDevice (pty) → DeviceLink → Spool → Uploader → service → task on the
engineer's stream; the fleet API and page show the ATM's latest state; a dispatcher's remote
command reaches the device and its answer comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from atm_service.app import create_app
from atm_service.db import Database, create_engine
from atm_service.services.journals import get_journal
from device_agent.agent import Agent, AgentConfig
from device_agent.signing import DeviceKey, write_key_file
from device_agent.uploader import UploadPolicy
from simulators.demand import AMOUNT_WEIGHTS
from simulators.live import AcceleratedClock, LiveAtm
from simulators.live_device import GuardedAtm, LinkOptions, LiveDevice
from tests.service.live_servers import EventReader, log_in, running
from tests.support import make_settings
from tests.system.support import (
    BACKENDS,
    CommittedDatabase,
    Place,
    build_place,
    committed_database,
    enrol,
    journal_at_service,
    journal_files,
    wait_for,
)

pytestmark = pytest.mark.slow

BAUD = 460800
NEW_YORK = ZoneInfo("America/New_York")


class RoundTheClock:
    """Customers at an even rate around the clock, one a simulated minute on average.

    The ATM's clock starts at New York's present hour; the seasonal profile has almost
    nobody in the small hours, so a run after midnight there saw no journal line within
    the wait. With this the first lines come within seconds whatever the hour.
    """

    def expected_customers(self, terminal_id: str, day: date) -> float:
        return 1440.0

    def hourly_weights(self, terminal_id: str, day: date) -> Sequence[float]:
        return (1.0,) * 24

    def balance_share(self, terminal_id: str, day: date) -> float:
        return 0.2

    def amount_weights(self, terminal_id: str, day: date) -> Sequence[float]:
        return AMOUNT_WEIGHTS


class AgentThread:
    """The whole agent (link thread, uploader, heartbeats, commands) on a loop of its own."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="agent", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._ready.set()
            await self.agent.run()

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10)

    def stop(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.agent.stop)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the agent did not stop"
        assert self.error is None, self.error


class PageStream(EventReader):
    """An engineer's open page: its stream ends when the service stops, as a browser's would."""

    def _read(self) -> None:
        with contextlib.suppress(httpx.TransportError):
            super()._read()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CommittedDatabase]:
    with committed_database(request.param, tmp_path) as committed:
        yield committed


def _fleet_item(client: httpx.Client, terminal_id: str) -> dict[str, Any]:
    page = client.get("/api/v1/fleet/state").json()
    (item,) = [item for item in page["items"] if item["terminal_id"] == terminal_id]
    return item  # type: ignore[no-any-return]


def test_a_fault_on_a_live_atm_reaches_the_engineer_and_the_fleet_view(
    database: CommittedDatabase, tmp_path: Path
) -> None:
    place: Place = build_place(database.database, datetime.now(ZoneInfo("UTC")))
    key = DeviceKey.generate()
    write_key_file(tmp_path / "device.key", key)
    enrol(database.database, place.atm_id, key.public_key_b64, datetime.now(ZoneInfo("UTC")))

    local_now = datetime.now(NEW_YORK).replace(tzinfo=None, microsecond=0)
    clock = AcceleratedClock(local_now, 30.0)
    atm = GuardedAtm(
        LiveAtm(
            tmp_path / "atm", clock, terminal_id=place.terminal_id, seed=5, demand=RoundTheClock()
        ),
        event_log=tmp_path / "atm" / "events" / f"{place.terminal_id}.jsonl",
    )
    device = LiveDevice(atm, LinkOptions(baudrate=BAUD), rng=random.Random(5))
    engine = create_engine(database.url)
    app = create_app(make_settings(), database=Database(engine))

    with running(app) as url, device:
        agent = AgentThread(
            Agent(
                AgentConfig(
                    port=device.address,
                    service_url=url,
                    key_path=tmp_path / "device.key",
                    spool_path=tmp_path / "spool.db",
                    policy=UploadPolicy(poll_interval_s=0.05, heartbeat_interval_s=0.3),
                    link_retry_s=0.2,
                    baudrate=BAUD,
                )
            )
        )
        agent.start()
        eli = PageStream(log_in(url, place.engineer), url, "/my/stream")
        dispatcher = log_in(url, place.dispatcher).client(url)
        try:
            today = local_now.strftime("%Y%m%d")

            def journal_arrived() -> bool:
                with database.database.session() as session:
                    try:
                        return len(get_journal(session, place.atm_id, today)) > 0
                    except Exception:
                        return False

            wait_for(journal_arrived, 20, "the first journal bytes at the service")

            # A fault on the ATM becomes a task on the engineer's live page.
            atm.inject("card_reader_fault")
            shown = eli.wait_for(
                lambda e: (
                    e.event == "task"
                    and e.data["terminal_id"] == place.terminal_id
                    and "Card reader" in e.data["title"]
                ),
                timeout=20,
            )
            assert shown.data["kind"] == "flm"
            assert shown.data["priority"] == 1
            assert shown.data["state"] == "assigned"
            assert shown.data["engineer_name"] == "Eli"

            # The fleet view has the ATM's latest state: out of service, the card reader in
            # fault, the cassettes as the ATM counts them, heard from just now.
            def counted() -> dict[int, int]:
                return {
                    int(unit["usNumber"]): int(unit["ulCount"])  # type: ignore[call-overload]
                    for unit in atm.cash_units()
                    if unit["usType"] == 3
                }

            def fleet_shows_it() -> bool:
                item = _fleet_item(dispatcher, place.terminal_id)
                return (
                    item["in_service"] is False
                    and (item["devices"] or {}).get("card_reader") == "fault"
                    and {c["number"]: c["count"] for c in item["cassettes"]} == counted()
                )

            wait_for(fleet_shows_it, 15, "the fault and the counters in /api/v1/fleet/state")
            item = _fleet_item(dispatcher, place.terminal_id)
            assert item["online"] is True
            assert item["link_state"] == "up"
            seen = datetime.fromisoformat(item["last_seen_at"])
            assert datetime.now(ZoneInfo("UTC")) - seen < timedelta(seconds=10)
            page = dispatcher.get("/fleet").text
            assert place.terminal_id in page
            assert "Reports out of service" in page
            assert "card reader fault" in page
            first, count = sorted(counted().items())[0]
            assert f"{first}: {count} × " in page

            # A dispatcher's remote command runs on the device and its answer comes back.
            asked = dispatcher.post(
                f"/api/v1/atms/{place.atm_id}/commands", json={"command": "send_counters"}
            ).json()

            def answered() -> bool:
                state = dispatcher.get(f"/api/v1/atms/{place.atm_id}/commands/{asked['id']}")
                return bool(state.json()["state"] == "succeeded")

            wait_for(answered, 15, "the answer to send_counters")
            done = dispatcher.get(f"/api/v1/atms/{place.atm_id}/commands/{asked['id']}").json()
            assert done["result"]["ok"] is True
            assert done["deliveries"] >= 1

            # The engineer clears the card reader before anyone went: the task resolves itself.
            atm.clear("card_reader")
            eli.wait_for(
                lambda e: (
                    e.event == "task"
                    and e.data["id"] == shown.data["id"]
                    and e.data["state"] == "resolved"
                ),
                timeout=20,
            )

            # Every byte the ATM wrote is at the service, exactly: its files once it has
            # caught up with the paused clock (journal_files). The clock runs 30 times real
            # time, so a run can cross midnight in New York and pause before the new day's
            # first line: that file is empty, and the service has no journal of that name.
            clock.pause()
            files = journal_files(atm)

            def all_bytes() -> bool:
                with database.database.session() as session:
                    try:
                        return all(
                            journal_at_service(session, place.atm_id, name) == data
                            for name, data in files.items()
                        )
                    except Exception:
                        return False

            wait_for(all_bytes, 30, "the whole journal at the service")
        finally:
            dispatcher.close()
            agent.stop()
    engine.dispose()
