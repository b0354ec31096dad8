"""The guard of device routes: requests signed by an ATM's enrolled Ed25519 key.

Device routes are not user routes: no session cookie, no role, no CSRF token
(nothing a browser sends automatically can authenticate them). Every device
route depends on :class:`DeviceGuard`, which the role × route test recognises
as device-authenticated, as it recognises :class:`~atm_service.api.deps.RoleGuard`
on user routes. The guard reads the body (the signature covers its digest),
verifies the request (:mod:`atm_service.services.device_auth`) and hands the
route a :class:`DeviceCall`: the device's identity, the body, and
:meth:`DeviceCall.run`, which runs the route's use case in a database session.

Device routes carry the fleet's whole ingest, so they are ``async`` and touch
the thread pool exactly twice (verification, then the work), each time with a
short session of its own, instead of once per synchronous dependency. On
SQLite, which has one writer at a time, the two steps also queue on a lock of
the process: a thread that finds the database locked would otherwise sleep in
SQLite's busy handler (1, 2, 5, 10... ms at a time) instead of being woken as
soon as the writer is done. PostgreSQL needs no such lock (row locks suffice).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from atm_service.context import AppContext
from atm_service.services import device_auth
from atm_service.services.device_auth import DeviceIdentity, SignedRequest

T = TypeVar("T")

_SQLITE_WRITER = threading.Lock()


def _exclusive(context: AppContext) -> AbstractContextManager[object]:
    """SQLite's single writer, taken in order; nothing on PostgreSQL."""
    return _SQLITE_WRITER if context.database.dialect == "sqlite" else nullcontext()


@dataclass(frozen=True)
class DeviceCall:
    """A verified device request: who sent it, its body, and where to do its work."""

    identity: DeviceIdentity
    body: bytes
    context: AppContext
    now: datetime

    async def run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in the thread pool, with a session of its own."""

        def in_session() -> T:
            with _exclusive(self.context), self.context.database.session() as session:
                return work(session)

        return await run_in_threadpool(in_session)


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
        body = await request.body()
        signed = SignedRequest(
            method=request.method,
            target=request_target(request),
            body=body,
            headers=request.headers,
        )
        terminal_id = request.path_params.get("terminal_id")

        def verify() -> DeviceIdentity:
            with _exclusive(context), context.database.session() as session:
                return device_auth.authenticate(
                    session,
                    settings=context.settings,
                    request=signed,
                    terminal_id=terminal_id,
                    now=now,
                )

        identity = await run_in_threadpool(verify)
        request.state.device = identity
        return DeviceCall(identity=identity, body=body, context=context, now=now)


DeviceDep = Annotated[DeviceCall, Depends(DeviceGuard())]
