"""Uploads the spool to the central service, resumes exactly, and sends heartbeats.

What it sends (each request signed, see :mod:`device_agent.signing`):

- journal bytes: ``PUT /api/v1/devices/{terminal}/journals/{name}?offset=N``
  with up to ``max_batch_bytes`` raw bytes from the spool's acknowledged offset;
  the answer's ``size`` is what the service holds, and the spool's
  acknowledged offset moves there (never past what the spool holds);
- records: ``POST /api/v1/devices/{terminal}/records`` with the spool's
  ``stream`` id and the next records in sequence order; ``acked_seq`` comes back;
- heartbeats: ``POST /api/v1/devices/{terminal}/heartbeat`` every
  ``heartbeat_interval_s`` with the agent's state and backlog; the answer lists
  the remote commands waiting for the ATM, which go to ``on_commands``;
- command results: ``POST /api/v1/devices/{terminal}/commands/{id}/result``
  (:meth:`Uploader.report_command`).

Resuming: bytes and records are acknowledged in the spool only after the
service answered, so a crash at any point re-sends at most one batch, which the
service recognises (same bytes at the same offset, or sequence numbers it
holds). When the service holds less than the spool believes, it answers 409
with the offset or sequence it expects, and the uploader sends from there.

Failures: no answer, 5xx, 429, 401 and 403 are retried with exponential backoff
and jitter (:class:`~device_agent.backoff.Backoff`), for as long as it takes;
the spool keeps everything meanwhile. A journal whose bytes conflict with the
service's is set aside and reported in every heartbeat until someone looks.

The HTTP client is passed in, so tests run the uploader against the real
service in-process (``httpx.ASGITransport``) or a live server, and make its
transport fail at will; time, sleeping and randomness are parameters too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import httpx

from device_agent import __version__
from device_agent.backoff import Backoff
from device_agent.errors import (
    BatchTooLarge,
    KeyNotAccepted,
    OffsetMismatch,
    RequestNotAuthentic,
    ServiceUnavailable,
    ServiceUnreachable,
    SpoolError,
    SpoolPruned,
    UploadError,
    UploadRejected,
)
from device_agent.spool import Spool, SpoolRecord

logger = logging.getLogger("device_agent.uploader")

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
P = ParamSpec("P")
T = TypeVar("T")

MIN_BATCH_BYTES = 4 * 1024


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class UploadPolicy:
    """How much to send at once and how often."""

    max_batch_bytes: int = 64 * 1024
    max_batch_records: int = 500
    poll_interval_s: float = 1.0
    heartbeat_interval_s: float = 30.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    prune_interval_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_batch_bytes < MIN_BATCH_BYTES:
            raise ValueError(f"max_batch_bytes must be at least {MIN_BATCH_BYTES}")
        if self.max_batch_records < 1:
            raise ValueError("max_batch_records must be at least 1")
        if self.poll_interval_s <= 0 or self.heartbeat_interval_s <= 0:
            raise ValueError("intervals must be positive")


@dataclass
class UploadReport:
    """What one pass over the spool sent."""

    journal_bytes: int = 0
    journal_requests: int = 0
    records: int = 0
    record_requests: int = 0
    resyncs: int = 0

    @property
    def sent(self) -> bool:
        return bool(self.journal_requests or self.record_requests)


@dataclass(frozen=True)
class RemoteCommand:
    """A command the service wants run on the device (from a heartbeat answer)."""

    id: int
    command: str


@dataclass(frozen=True)
class HeartbeatReply:
    server_time: datetime
    acked_seq: int
    round_trip_s: float
    commands: tuple[RemoteCommand, ...] = ()


CommandHandler = Callable[[tuple[RemoteCommand, ...]], Awaitable[None]]


@dataclass
class UploaderState:
    """What the agent reports about itself."""

    started_at: datetime
    terminal_id: str | None = None
    last_error: str | None = None
    last_upload_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    heartbeat_failures: int = 0
    clock_offset_s: float | None = None
    blocked_journals: dict[str, str] = field(default_factory=dict)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


class Uploader:
    """Moves the spool's contents to the service; see the module docstring."""

    def __init__(
        self,
        *,
        spool: Spool,
        client: httpx.AsyncClient,
        policy: UploadPolicy | None = None,
        terminal_id: str | None = None,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        link_state: Callable[[], str] = lambda: "unknown",
        on_commands: CommandHandler | None = None,
    ) -> None:
        self.spool = spool
        self.client = client
        self.policy = policy or UploadPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.link_state = link_state
        self.on_commands = on_commands
        self.state = UploaderState(started_at=clock(), terminal_id=terminal_id)
        self.batch_bytes = self.policy.max_batch_bytes
        self.batch_records = self.policy.max_batch_records
        self._identify_lock = asyncio.Lock()
        self._bound = False
        self._last_prune: datetime | None = None

    # --- plumbing -------------------------------------------------------------

    async def _in_thread(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Spool calls run off the event loop: a synchronous commit may take a moment."""
        return await asyncio.to_thread(function, *args, **kwargs)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        payload: dict[str, Any] | None = None,
    ) -> httpx.Response:
        headers = {}
        if content is not None:
            headers["Content-Type"] = "application/octet-stream"
        try:
            response = await self.client.request(
                method, path, params=params, content=content, json=payload, headers=headers
            )
        except httpx.TransportError as exc:
            raise ServiceUnreachable(
                f"{method} {path}: no answer from the service ({type(exc).__name__}: {exc})"
            ) from exc
        if response.is_success:
            return response
        problem = _problem(response)
        detail = str(problem.get("detail") or response.reason_phrase or "no detail")
        where = f"{method} {path} answered {response.status_code}: {detail}"
        status = response.status_code
        if status == 401:
            raise RequestNotAuthentic(where)
        if status == 403:
            raise KeyNotAccepted(where)
        if status == 409:
            expected = problem.get("expected_offset", problem.get("expected_seq"))
            raise OffsetMismatch(
                where,
                expected=expected if isinstance(expected, int) else None,
                conflict=str(problem.get("type", "")).endswith("-conflict"),
            )
        if status == 413:
            raise BatchTooLarge(where)
        if status == 429 or status >= 500:
            raise ServiceUnavailable(where, retry_after=_retry_after(response))
        raise UploadRejected(where)

    async def _terminal(self) -> str:
        if self._bound and self.state.terminal_id is not None:
            return self.state.terminal_id
        async with self._identify_lock:
            terminal_id = self.state.terminal_id
            if self._bound and terminal_id is not None:
                return terminal_id
            if terminal_id is None:
                response = await self._request("GET", "/api/v1/devices/me")
                found = response.json().get("terminal_id")
                if not isinstance(found, str):
                    raise UploadRejected("GET /api/v1/devices/me did not name a terminal")
                terminal_id = found
            await self._in_thread(self.spool.bind_terminal, terminal_id)
            self.state.terminal_id = terminal_id
            self._bound = True
            return terminal_id

    # --- journals -------------------------------------------------------------

    async def _drain_journal(self, terminal_id: str, name: str, report: UploadReport) -> None:
        path = f"/api/v1/devices/{terminal_id}/journals/{name}"
        while True:
            state = await self._in_thread(self.spool.journal_state, name)
            if state is None or state.acked >= state.size:
                return
            offset = state.acked
            data = await self._in_thread(self.spool.read_journal, name, offset, self.batch_bytes)
            try:
                response = await self._request("PUT", path, params={"offset": offset}, content=data)
            except BatchTooLarge:
                if self.batch_bytes <= MIN_BATCH_BYTES:
                    raise
                self.batch_bytes = max(MIN_BATCH_BYTES, self.batch_bytes // 2)
                continue
            except OffsetMismatch as exc:
                report.resyncs += 1
                await self._resync_journal(name, offset, exc)
                continue
            held = response.json().get("size")
            if not isinstance(held, int):
                raise UploadRejected(f"PUT {path} did not say how many bytes the service holds")
            report.journal_requests += 1
            report.journal_bytes += len(data)
            await self._in_thread(self.spool.ack_journal, name, min(held, state.size))
            if held < offset + len(data):
                raise UploadRejected(
                    f"journal {name}: the service holds {held} bytes after accepting "
                    f"{offset}..{offset + len(data)}"
                )

    async def _resync_journal(self, name: str, offset: int, exc: OffsetMismatch) -> None:
        if exc.conflict or exc.expected is None:
            self._block(name, str(exc))
            raise _JournalSetAside from exc
        logger.warning(
            "journal %s: the service expects offset %d, not %d; resending from there",
            name,
            exc.expected,
            offset,
            extra={"terminal_id": self.state.terminal_id, "journal": name},
        )
        try:
            if exc.expected < offset:
                await self._in_thread(self.spool.rewind_journal, name, exc.expected)
            else:
                state = await self._in_thread(self.spool.journal_state, name)
                size = 0 if state is None else state.size
                await self._in_thread(self.spool.ack_journal, name, min(exc.expected, size))
        except SpoolPruned as pruned:
            self._block(name, str(pruned))
            raise _JournalSetAside from pruned

    def _block(self, name: str, reason: str) -> None:
        self.state.blocked_journals[name] = reason
        logger.error(
            "journal %s set aside: %s",
            name,
            reason,
            extra={"terminal_id": self.state.terminal_id, "journal": name},
        )

    # --- records --------------------------------------------------------------

    def _record_batch(self, records: list[SpoolRecord]) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        size = 0
        for record in records:
            item = {
                "seq": record.seq,
                "kind": record.kind,
                "stored_at": _iso(record.stored_at),
                "data": record.data,
            }
            item_size = len(json.dumps(item, separators=(",", ":")))
            if batch and size + item_size > self.batch_bytes:
                break
            batch.append(item)
            size += item_size
        return batch

    async def _drain_records(self, terminal_id: str, report: UploadReport) -> None:
        path = f"/api/v1/devices/{terminal_id}/records"
        while True:
            records = await self._in_thread(self.spool.pending_records, self.batch_records)
            if not records:
                return
            batch = self._record_batch(records)
            try:
                response = await self._request(
                    "POST", path, payload={"stream": self.spool.stream_id, "records": batch}
                )
            except BatchTooLarge:
                if self.batch_records <= 1 and self.batch_bytes <= MIN_BATCH_BYTES:
                    raise
                self.batch_records = max(1, self.batch_records // 2)
                self.batch_bytes = max(MIN_BATCH_BYTES, self.batch_bytes // 2)
                continue
            except OffsetMismatch as exc:
                if exc.expected is None:
                    raise
                report.resyncs += 1
                logger.warning(
                    "records: the service expects sequence %d; resending from there",
                    exc.expected,
                    extra={"terminal_id": terminal_id},
                )
                await self._in_thread(self.spool.rewind_records, exc.expected)
                continue
            acked = response.json().get("acked_seq")
            if not isinstance(acked, int):
                raise UploadRejected(f"POST {path} did not give acked_seq")
            last_sent = batch[-1]["seq"]
            report.record_requests += 1
            report.records += len(batch)
            await self._in_thread(self.spool.ack_records, min(acked, last_sent))
            if acked < last_sent:
                raise UploadRejected(
                    f"records: the service acknowledged {acked} after accepting up to {last_sent}"
                )

    # --- one pass, heartbeats, the loops ------------------------------------------

    async def upload_pending(self) -> UploadReport:
        """Send everything the spool holds that the service lacks. Raises ``UploadError``."""
        terminal_id = await self._terminal()
        report = UploadReport()
        for state in await self._in_thread(self.spool.pending_journals):
            if state.name in self.state.blocked_journals:
                continue
            try:
                await self._drain_journal(terminal_id, state.name, report)
            except _JournalSetAside:
                continue
        await self._drain_records(terminal_id, report)
        if report.sent:
            self.state.last_upload_at = self.clock()
        await self._maybe_prune()
        return report

    async def _maybe_prune(self) -> None:
        now = self.clock()
        if (
            self._last_prune is not None
            and (now - self._last_prune).total_seconds() < self.policy.prune_interval_s
        ):
            return
        self._last_prune = now
        result = await self._in_thread(self.spool.prune)
        if result.chunks or result.records:
            logger.info(
                "pruned %d acknowledged bytes and %d records",
                result.journal_bytes,
                result.records,
                extra={"terminal_id": self.state.terminal_id},
            )

    def _errors(self) -> str | None:
        problems = [f"journal {name}: {why}" for name, why in self.state.blocked_journals.items()]
        if self.state.last_error:
            problems.insert(0, self.state.last_error)
        return "; ".join(problems)[:500] if problems else None

    async def heartbeat(self) -> HeartbeatReply:
        """Tell the service the agent is alive, and how far behind it is."""
        terminal_id = await self._terminal()
        backlog = await self._in_thread(self.spool.backlog)
        sent_at = self.clock()
        payload = {
            "agent_version": __version__,
            "stream": self.spool.stream_id,
            "started_at": _iso(self.state.started_at),
            "sent_at": _iso(sent_at),
            "link": self.link_state()[:200],
            "backlog_bytes": backlog.journal_bytes,
            "backlog_records": backlog.records,
            "oldest_pending_at": _iso(backlog.oldest_pending_at),
            "last_stored_at": _iso(backlog.last_stored_at),
            "last_error": self._errors(),
        }
        response = await self._request(
            "POST", f"/api/v1/devices/{terminal_id}/heartbeat", payload=payload
        )
        received_at = self.clock()
        body = response.json()
        try:
            server_time = datetime.fromisoformat(str(body["server_time"]))
            acked_seq = int(body["acked_seq"])
            commands = tuple(
                RemoteCommand(id=int(item["id"]), command=str(item["command"]))
                for item in body.get("commands") or ()
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise UploadRejected(f"the heartbeat answer is malformed: {body!r}") from exc
        round_trip = (received_at - sent_at).total_seconds()
        offset = (server_time - (sent_at + (received_at - sent_at) / 2)).total_seconds()
        self.state.clock_offset_s = offset
        self.state.last_heartbeat_at = received_at
        if abs(offset) > 60:
            logger.warning(
                "the agent's clock is %.0f s off the service's; signed requests fail beyond "
                "the service's limit (300 s by default)",
                -offset,
                extra={"terminal_id": terminal_id},
            )
        last = await self._in_thread(self.spool.last_seq)
        if 0 < acked_seq <= last:
            await self._in_thread(self.spool.ack_records, acked_seq)
        if commands and self.on_commands is not None:
            await self.on_commands(commands)
        return HeartbeatReply(
            server_time=server_time,
            acked_seq=acked_seq,
            round_trip_s=round_trip,
            commands=commands,
        )

    async def report_command(self, command_id: int, result: dict[str, object]) -> None:
        """Tell the service what the device answered to command ``command_id``."""
        terminal_id = await self._terminal()
        await self._request(
            "POST",
            f"/api/v1/devices/{terminal_id}/commands/{command_id}/result",
            payload=dict(result),
        )

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)

    async def upload_loop(self, stop: asyncio.Event) -> None:
        """Upload until ``stop`` is set, backing off while the service is away."""
        backoff = Backoff(
            base_s=self.policy.backoff_base_s, cap_s=self.policy.backoff_cap_s, rng=self.rng
        )
        while not stop.is_set():
            try:
                report = await self.upload_pending()
            except (UploadError, SpoolError) as exc:
                self.state.last_error = str(exc)[:300]
                if isinstance(exc, UploadError) and exc.retryable:
                    retry_after = getattr(exc, "retry_after", None)
                    delay = backoff.next_delay(retry_after=retry_after)
                else:
                    delay = self.policy.backoff_cap_s
                logger.warning(
                    "upload failed (%s); next attempt in %.1f s",
                    exc,
                    delay,
                    extra={"terminal_id": self.state.terminal_id},
                )
                await self._pause(stop, delay)
                continue
            backoff.reset()
            self.state.last_error = None
            if not report.sent:
                await self._pause(stop, self.policy.poll_interval_s)

    async def heartbeat_loop(self, stop: asyncio.Event) -> None:
        """A heartbeat every ``heartbeat_interval_s`` (±10 %) until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.heartbeat()
            except (UploadError, SpoolError) as exc:
                self.state.heartbeat_failures += 1
                logger.warning(
                    "heartbeat failed: %s", exc, extra={"terminal_id": self.state.terminal_id}
                )
            interval = self.policy.heartbeat_interval_s * self.rng.uniform(0.9, 1.1)
            await self._pause(stop, interval)

    async def run(self, stop: asyncio.Event) -> None:
        """Upload and heartbeat until ``stop`` is set."""
        heartbeats = asyncio.create_task(self.heartbeat_loop(stop))
        try:
            await self.upload_loop(stop)
        finally:
            stop.set()
            await asyncio.gather(heartbeats, return_exceptions=True)


class _JournalSetAside(Exception):
    """Internal: the journal being drained was set aside; go on with the next."""
