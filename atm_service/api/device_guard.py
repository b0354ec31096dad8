"""The guard of device routes: requests signed by an ATM's enrolled Ed25519 key.

Device routes are not user routes: no session cookie, no role, no CSRF token
(nothing a browser sends automatically can authenticate them). Every device
route depends on :class:`DeviceGuard`, which the role × route test recognises
as device-authenticated, as it recognises :class:`~atm_service.api.deps.RoleGuard`
on user routes. The guard reads the body (the signature covers its digest),
verifies the request (:mod:`atm_service.services.device_auth`) and hands the
route the device's identity and the body bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from atm_service.api.deps import ContextDep, NowDep, SessionDep
from atm_service.services import device_auth
from atm_service.services.device_auth import DeviceIdentity, SignedRequest


@dataclass(frozen=True)
class DeviceCall:
    """A verified device request: who sent it, and its body."""

    identity: DeviceIdentity
    body: bytes


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

    async def __call__(
        self, request: Request, context: ContextDep, session: SessionDep, now: NowDep
    ) -> DeviceCall:
        body = await request.body()
        signed = SignedRequest(
            method=request.method,
            target=request_target(request),
            body=body,
            headers=request.headers,
        )
        identity = await run_in_threadpool(
            device_auth.authenticate,
            session,
            settings=context.settings,
            request=signed,
            terminal_id=request.path_params.get("terminal_id"),
            now=now,
        )
        request.state.device = identity
        return DeviceCall(identity=identity, body=body)


DeviceDep = Annotated[DeviceCall, Depends(DeviceGuard())]
