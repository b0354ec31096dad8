"""The agent against a live service on a loopback port, over real HTTP, on a fresh database
of each backend: the link, uploads and heartbeats run at once, as in the field."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn

from atm_service.app import create_app
from atm_service.db import Database, create_engine
from atm_service.migrate import upgrade
from atm_service.services.journals import get_journal
from device_agent.agent import Agent, AgentConfig
from device_agent.link import LinkSink
from device_agent.ports import LinkRunner
from device_agent.signing import write_key_file
from device_agent.uploader import UploadPolicy
from tests.conftest import drop_postgres_schema, new_postgres_schema, postgres_url
from tests.device_agent.test_agent import DAYS, TERMINAL, ScriptedLink
from tests.ingest_support import make_fleet_in, run_async, sample_journal
from tests.support import make_settings


@dataclass
class Live:
    url: str
    database: Database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    schema = None
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'live.db'}")
    else:
        url = postgres_url()
        if url is None:
            pytest.skip("PostgreSQL tests need ATM_TEST_DATABASE_URL")
        engine, schema = new_postgres_schema(url)
    database = Database(engine)
    upgrade(database)
    app = create_app(make_settings(), database=database)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Live(url=f"http://127.0.0.1:{port}", database=database)
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()
        if schema is not None:
            url = postgres_url()
            assert url is not None
            drop_postgres_schema(url, schema)


def test_agent_against_a_live_service(live: Live, tmp_path: Path) -> None:
    fleet = make_fleet_in(live.database, datetime.now(UTC), TERMINAL)
    key_path = tmp_path / "device.key"
    write_key_file(key_path, fleet.keys[TERMINAL])
    config = AgentConfig(
        port="loop://",
        service_url=live.url,
        key_path=key_path,
        spool_path=tmp_path / "spool.db",
        policy=UploadPolicy(poll_interval_s=0.02, heartbeat_interval_s=0.05, max_batch_bytes=4096),
        link_retry_s=0.02,
    )

    def factory(port: str, sink: LinkSink) -> LinkRunner:
        return ScriptedLink(sink, fail_first=False)

    agent = Agent(config, link_factory=factory)
    expected = [sample_journal(TERMINAL, day) for day in DAYS]

    def arrived() -> bool:
        with live.database.session() as session:
            try:
                return [
                    get_journal(session, fleet.atm_ids[TERMINAL], day) for day in DAYS
                ] == expected
            except Exception:
                return False

    async def main() -> None:
        async def watch() -> None:
            while not await asyncio.to_thread(arrived):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # a few heartbeats alongside
            agent.stop()

        watcher = asyncio.create_task(watch())
        await asyncio.wait_for(agent.run(), 30)
        await watcher

    run_async(main())
    assert agent.uploader is not None
    assert agent.uploader.state.last_heartbeat_at is not None
    assert agent.uploader.state.heartbeat_failures == 0
