"""The uploader against the real service in-process: outages, lost answers, restarts,
a service that lost data, conflicts, heartbeats. Every test ends with the service
holding exactly the spooled bytes and each record once."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import func, select

from atm_service.context import AppContext
from atm_service.models.cash import CountersSnapshot
from atm_service.models.devices import DeviceEvent, DeviceStatus
from atm_service.services.device_keys import revoke_key
from atm_service.services.fleet_state import get_state
from atm_service.services.journals import get_journal
from device_agent.errors import KeyNotAccepted, ServiceUnreachable, SpoolError
from device_agent.signing import DeviceKey, RequestSigner
from device_agent.spool import Spool
from device_agent.uploader import Uploader, UploadPolicy
from tests.ingest_support import (
    FlakyTransport,
    Fleet,
    SerialTransport,
    Signed,
    make_fleet,
    run_async,
    sample_journal,
)
from tests.support import FakeClock

T = TypeVar("T")
DAY, NEXT = "20261116", "20261117"
TERMINAL = "T1000001"


@pytest.fixture
def fleet(context: AppContext) -> Fleet:
    return make_fleet(context, TERMINAL, "T1000002")


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "agent" / "spool.db"


def feed(
    spool: Spool, *, days: tuple[str, ...] = (DAY, NEXT), frame: int = 512
) -> dict[str, bytes]:
    """What a link would hand over: journals in frames, a status, counters, an event."""
    journals = {day: sample_journal(TERMINAL, day) for day in days}
    for day, data in journals.items():
        for start in range(0, len(data), frame):
            spool.store_journal(day, start, data[start : start + frame])
    spool.store_status(
        {
            "time": "2026-11-16T08:00:00",
            "in_service": True,
            "safe_door": "closed",
            "devices": {"dispenser": "ok"},
        }
    )
    spool.store_cash_units(
        [
            {
                "usNumber": 1,
                "usType": 3,
                "ulValues": 20,
                "ulCount": 1245,
                "usStatus": 0,
                "cCurrencyID": "USD",
            }
        ],
        "start_of_day",
    )
    spool.store_event({"kind": "safe_door", "time": "2026-11-16T08:00:05", "state": "open"})
    return journals


class Harness:
    """An uploader wired to the app through a transport the test controls."""

    def __init__(
        self,
        app: FastAPI,
        key: DeviceKey,
        clock: FakeClock,
        spool: Spool,
        *,
        policy: UploadPolicy | None = None,
        terminal_id: str | None = TERMINAL,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.line = FlakyTransport(SerialTransport(httpx.ASGITransport(app=app)))
        self.client = httpx.AsyncClient(
            base_url="http://atm-service", transport=self.line, auth=RequestSigner(key, clock=clock)
        )
        self.uploader = Uploader(
            spool=spool,
            client=self.client,
            policy=policy or UploadPolicy(),
            terminal_id=terminal_id,
            clock=clock,
            rng=random.Random(7),
            sleep=sleep or self._no_sleep,
        )

    @staticmethod
    async def _no_sleep(_seconds: float) -> None:
        await asyncio.sleep(0)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return run_async(coroutine)


def service_has_exactly(context: AppContext, fleet: Fleet, journals: dict[str, bytes]) -> None:
    with context.database.session() as session:
        for day, data in journals.items():
            held = get_journal(session, fleet.atm_ids[TERMINAL], day)
            assert len(held) == len(data)
            assert hashlib.sha256(held).hexdigest() == hashlib.sha256(data).hexdigest()


def record_counts(context: AppContext) -> tuple[int, int, int]:
    with context.database.session() as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(model)).one()
            for model in (DeviceStatus, CountersSnapshot, DeviceEvent)
        )


def test_a_spool_is_uploaded_exactly(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, spool_path: Path
) -> None:
    spool = Spool(spool_path, clock=clock)
    journals = feed(spool)
    harness = Harness(
        app,
        fleet.keys[TERMINAL],
        clock,
        spool,
        policy=UploadPolicy(max_batch_bytes=8192, max_batch_records=2),
    )
    report = run(harness.uploader.upload_pending())
    total = sum(len(data) for data in journals.values())
    assert report.journal_bytes == total
    assert report.journal_requests == sum(-(-len(d) // 8192) for d in journals.values())
    assert (report.records, report.record_requests) == (3, 2)
    service_has_exactly(context, fleet, journals)
    assert record_counts(context) == (1, 1, 1)
    backlog = spool.backlog()
    assert (backlog.journal_bytes, backlog.records) == (0, 0)
    assert spool.read_journal(DAY, len(journals[DAY]), 10) == b""
    again = run(harness.uploader.upload_pending())
    assert not again.sent
    spool.close()


def test_an_outage_of_hours_loses_and_duplicates_nothing(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, spool_path: Path
) -> None:
    spool = Spool(spool_path, clock=clock)
    journals = feed(spool, days=(DAY,))
    delays: list[float] = []
    stop = asyncio.Event()

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        clock.advance(seconds=seconds)
        if len(delays) == 12:
            harness.line.down = False  # the service is back after ~an hour of backoff
        if spool.backlog().journal_bytes == 0 and spool.backlog().records == 0:
            stop.set()
        await asyncio.sleep(0)

    harness = Harness(app, fleet.keys[TERMINAL], clock, spool, sleep=sleep)
    harness.line.down = True
    run(harness.uploader.upload_loop(stop))
    failures = delays[:12]
    for attempt, delay in enumerate(failures):
        assert 0 <= delay <= min(300.0, 2.0**attempt)
    assert max(failures) > 60  # it really backed off
    assert harness.line.refused == 12
    service_has_exactly(context, fleet, journals)
    assert record_counts(context) == (1, 1, 1)
    assert harness.uploader.state.last_error is None
    spool.close()


def test_lost_answers_are_resent_and_recognised(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, spool_path: Path
) -> None:
    spool = Spool(spool_path, clock=clock)
    journals = feed(spool)
    harness = Harness(
        app,
        fleet.keys[TERMINAL],
        clock,
        spool,
        policy=UploadPolicy(max_batch_bytes=4096, max_batch_records=1),
    )
    for lost in range(1, 8):
        harness.line.lose_answers = 1
        with pytest.raises(ServiceUnreachable, match="ReadTimeout"):
            run(harness.uploader.upload_pending())
        assert harness.line.delivered >= lost
    run(harness.uploader.upload_pending())
    service_has_exactly(context, fleet, journals)
    assert record_counts(context) == (1, 1, 1)
    spool.close()


def test_a_killed_agent_resumes_from_its_spool(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, spool_path: Path
) -> None:
    spool = Spool(spool_path, clock=clock)
    journals = feed(spool)
    first = Harness(
        app,
        fleet.keys[TERMINAL],
        clock,
        spool,
        policy=UploadPolicy(max_batch_bytes=4096, max_batch_records=1),
    )

    class Dies(httpx.AsyncBaseTransport):
        """Delivers a few requests, then the process is gone mid-answer."""

        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner, self.left = inner, 4

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            self.left -= 1
            if self.left < 0:
                raise httpx.RemoteProtocolError("killed", request=request)
            return response

    first.client._transport = Dies(first.line)
    with pytest.raises(ServiceUnreachable):
        run(first.uploader.upload_pending())
    spool.close()  # the process ends; only the file remains

    reopened = Spool(spool_path, clock=clock)
    assert 0 < reopened.backlog().journal_bytes < sum(len(d) for d in journals.values())
    second = Harness(app, fleet.keys[TERMINAL], clock, reopened)
    run(second.uploader.upload_pending())
    service_has_exactly(context, fleet, journals)
    assert record_counts(context) == (1, 1, 1)
    # Later records continue the same stream.
    reopened.store_event({"kind": "safe_door", "time": "2026-11-16T08:10:00", "state": "closed"})
    run(second.uploader.upload_pending())
    assert record_counts(context) == (1, 1, 2)
    reopened.close()


def test_a_service_that_lost_data_gets_it_again(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, spool_path: Path
) -> None:
    spool = Spool(spool_path, clock=clock)
    journals = feed(spool, days=(DAY,))
    # The spool believes the service has more than it does (say, restored from a backup).
    spool.ack_journal(DAY, 5000)
    spool.ack_records(2)
    harness = Harness(app, fleet.keys[TERMINAL], clock, spool)
    report = run(harness.uploader.upload_pending())
    assert report.resyncs == 2
    service_has_exactly(context, fleet, journals)
    assert record_counts(context) == (1, 1, 1)
    spool.close()


def test_a_conflicting_journal_is_set_aside_and_reported(
    app: FastAPI,
    client: Any,
    context: AppContext,
    fleet: Fleet,
    clock: FakeClock,
    spool_path: Path,
) -> None:
    other = Signed(client, context, fleet.keys[TERMINAL])
    assert other.put_journal(TERMINAL, DAY, 0, b"something else entirely\n").status_code == 200
    spool = Spool(spool_path, clock=clock)
    journals = feed(spool)
    harness = Harness(app, fleet.keys[TERMINAL], clock, spool)
    run(harness.uploader.upload_pending())
    assert DAY in harness.uploader.state.blocked_journals
    assert "differ" in harness.uploader.state.blocked_journals[DAY]
    service_has_exactly(context, fleet, {NEXT: journals[NEXT]})
    assert record_counts(context) == (1, 1, 1)
    run(harness.uploader.heartbeat())
    with context.database.session() as session:
        state = get_state(
            session, atm_id=fleet.atm_ids[TERMINAL], now=clock(), offline_after=timedelta(minutes=3)
        )
    assert state.agent_error is not None
    assert "journal 20261116" in state.agent_error
    assert state.backlog_bytes == len(journals[DAY])
    spool.close()


def test_heartbeat_reports_state_and_acknowledges_records_the_service_holds(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, spool_path: Path
) -> None:
    spool = Spool(spool_path, clock=clock)
    feed(spool, days=(DAY,))
    harness = Harness(
        app, fleet.keys[TERMINAL], clock, spool, policy=UploadPolicy(max_batch_records=3)
    )
    clock.advance(seconds=45)
    reply = run(harness.uploader.heartbeat())
    assert reply.acked_seq == 0
    assert harness.uploader.state.clock_offset_s == 0
    with context.database.session() as session:
        state = get_state(
            session, atm_id=fleet.atm_ids[TERMINAL], now=clock(), offline_after=timedelta(minutes=3)
        )
    assert state.online
    assert state.ingest_lag_s == 45
    assert state.backlog_records == 3
    assert state.agent_version == "0.1.0"
    # The records arrive but the answer is lost; the next heartbeat says where the service is.
    harness.line.lose_answers = 1
    for day in (DAY,):
        spool.ack_journal(day, spool.journal_offset(day))
    with pytest.raises(ServiceUnreachable):
        run(harness.uploader.upload_pending())
    assert spool.records_acked == 0
    assert run(harness.uploader.heartbeat()).acked_seq == 3
    assert spool.records_acked == 3
    spool.close()


def test_identity_comes_from_the_service_and_binds_the_spool(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, spool_path: Path
) -> None:
    spool = Spool(spool_path, clock=clock)
    feed(spool, days=(DAY,))
    harness = Harness(app, fleet.keys[TERMINAL], clock, spool, terminal_id=None)
    run(harness.uploader.upload_pending())
    assert spool.terminal_id() == TERMINAL
    moved = Harness(app, fleet.keys["T1000002"], clock, spool, terminal_id=None)
    with pytest.raises(SpoolError, match="holds data of terminal T1000001"):
        run(moved.uploader.upload_pending())
    spool.close()


def test_a_revoked_key_is_retried_with_backoff_until_a_new_one(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, spool_path: Path
) -> None:
    with context.database.session() as session:
        revoke_key(session, key_id=fleet.keys[TERMINAL].key_id, now=clock())
    spool = Spool(spool_path, clock=clock)
    feed(spool, days=(DAY,))
    harness = Harness(app, fleet.keys[TERMINAL], clock, spool)
    with pytest.raises(KeyNotAccepted, match="revoked"):
        run(harness.uploader.upload_pending())
    delays: list[float] = []
    stop = asyncio.Event()

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 3:
            stop.set()
        await asyncio.sleep(0)

    harness.uploader.sleep = sleep
    run(harness.uploader.upload_loop(stop))
    assert len(delays) == 3
    assert "revoked" in (harness.uploader.state.last_error or "")
    assert spool.backlog().journal_bytes == len(sample_journal(TERMINAL, DAY))
    spool.close()


def test_a_batch_the_service_finds_too_large_is_halved(
    app: FastAPI, context: AppContext, fleet: Fleet, clock: FakeClock, spool_path: Path
) -> None:
    spool = Spool(spool_path, clock=clock)
    day = sample_journal(TERMINAL, DAY) * 60
    for start in range(0, len(day), 16384):
        spool.store_journal(DAY, start, day[start : start + 16384])
    harness = Harness(
        app,
        fleet.keys[TERMINAL],
        clock,
        spool,
        policy=UploadPolicy(max_batch_bytes=2 * 1024 * 1024),
    )
    run(harness.uploader.upload_pending())
    assert harness.uploader.batch_bytes == 1024 * 1024
    service_has_exactly(context, fleet, {DAY: day})
    spool.close()
