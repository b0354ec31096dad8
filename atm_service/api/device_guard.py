"""The guard of device routes: requests signed by an ATM's enrolled Ed25519 key.

Device routes are not user routes: no session cookie, no role, no CSRF token
(nothing a browser sends automatically can authenticate them). Every device
route depends on :class:`DeviceGuard`, which the role × route test recognises
as device-authenticated, as it recognises :class:`~atm_service.api.deps.RoleGuard`
on user routes.

The guard reads the body (the signature covers its digest) and refuses at once
what needs no database: missing or malformed signature headers, a stale
timestamp. It hands the route a :class:`DeviceCall`, whose :meth:`~DeviceCall.run`
is the only way to the device's identity: it verifies the rest (nonce, key,
signature, revocation, binding to the route's ATM;
:mod:`atm_service.services.device_auth`) and then runs the route's use case,
in one trip to the thread pool with one session. Device routes carry the
fleet's whole ingest, and every hand-over between the event loop and a worker
thread costs a wake-up, which on a busy host is where latency goes.

At most :data:`DEVICE_THREADS` device requests are in worker threads at once
(per event loop, so per server process); the rest wait their turn on the loop.
Threads beyond that would only contend for the interpreter lock, and on a
loaded host that contention, not the work, makes the slow tail: measured with
200 agents, bounding it cut the heartbeats' 99th percentile several-fold.
Work that follows an answered request (the dispatch rules after an upload)
waits in a queue of its own with half as many threads: after an outage, a
fleet's catch-up leaves hundreds of rule runs behind it, and queued in front
of the requests they held heartbeats for seconds.

On SQLite, which has one writer at a time, that trip also queues on a lock of
the process: a thread that finds the database locked would otherwise sleep in
SQLite's busy handler (1, 2, 5, 10... ms at a time) instead of being woken as
soon as the writer is done. PostgreSQL needs no such lock (row locks suffice).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlmodel import Session

from atm_service.context import AppContext
from atm_service.db import is_unavailable
from atm_service.request_log import note_device
from atm_service.services import device_auth
from atm_service.services.device_auth import DeviceIdentity, SignedRequest

T = TypeVar("T")
logger = logging.getLogger("atm_service.ingest")
Work = Callable[[Session, DeviceIdentity], T]

DEVICE_THREADS = 4

_SQLITE_WRITER = threading.Lock()
_LIMITERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int], anyio.CapacityLimiter]
] = weakref.WeakKeyDictionary()


def _device_threads(
    count: int = DEVICE_THREADS, *, queue: str = "requests"
) -> anyio.CapacityLimiter:
    """The running event loop's limiter of one queue of device work in worker threads,
    ``count`` at once: ``requests`` (what an agent waits for) or ``follow-ups``."""
    loop = asyncio.get_running_loop()
    limiters = _LIMITERS.setdefault(loop, {})
    limiter = limiters.get((queue, count))
    if limiter is None:
        limiter = limiters[(queue, count)] = anyio.CapacityLimiter(count)
    return limiter


def _exclusive(context: AppContext) -> AbstractContextManager[object]:
    """SQLite's single writer, taken in order; nothing on PostgreSQL."""
    return _SQLITE_WRITER if context.database.dialect == "sqlite" else nullcontext()


@dataclass(frozen=True)
class DeviceCall:
    """A device request whose signature is yet to be verified against the database."""

    signed: SignedRequest
    terminal_id: str | None
    context: AppContext
    now: datetime

    @property
    def body(self) -> bytes:
        return self.signed.body

    async def run(self, work: Work[T]) -> T:
        """Verify the request, then ``work(session, identity)``: one worker thread, one
        session, one transaction (see :func:`~atm_service.services.device_auth.run_verified`)."""

        def verified_work() -> T:
            with _exclusive(self.context), self.context.database.session() as session:
                return device_auth.run_verified(
                    session,
                    settings=self.context.settings,
                    request=self.signed,
                    terminal_id=self.terminal_id,
                    now=self.now,
                    work=work,
                )

        limiter = _device_threads(self.context.settings.device_threads)
        return await anyio.to_thread.run_sync(verified_work, limiter=limiter)

    async def then(self, work: Callable[[Session], object]) -> None:
        """Work that follows an answered request (a background task): one worker-thread
        trip in the follow-ups' queue (half the requests' threads, at least one), a
        session of its own, no verification (the request was verified). A database that
        is away is logged, not raised: what was left undone is picked up by the stream's
        next request."""

        def follow_up() -> None:
            with _exclusive(self.context), self.context.database.session() as session:
                work(session)

        try:
            count = max(1, self.context.settings.device_threads // 2)
            limiter = _device_threads(count, queue="follow-ups")
            await anyio.to_thread.run_sync(follow_up, limiter=limiter)
        except Exception as exc:
            if not is_unavailable(exc):
                logger.exception("work after a device request failed")
                return
            logger.warning(
                "work after a device request deferred: the database is unavailable (%s)",
                type(getattr(exc, "orig", None) or exc).__name__,
            )


def request_target(request: Request) -> str:
    """The path and query exactly as the client sent them (what the signature covers)."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(request.scope["path"])
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


class DeviceGuard:
    """A dependency admitting only requests signed by a key enrolled for the route's ATM."""

    def __repr__(self) -> str:
        return "DeviceGuard()"

    async def __call__(self, request: Request) -> DeviceCall:
        context: AppContext = request.app.state.context
        now = context.clock()
        terminal_id = request.path_params.get("terminal_id")
        note_device(terminal_id or request.headers.get("ATM-Key-Id"))
        signed = SignedRequest(
            method=request.method,
            target=request_target(request),
            body=await request.body(),
            headers=request.headers,
        )
        device_auth.check_freshness(signed, settings=context.settings, now=now)
        return DeviceCall(
            signed=signed,
            terminal_id=terminal_id,
            context=context,
            now=now,
        )


DeviceDep = Annotated[DeviceCall, Depends(DeviceGuard())]
