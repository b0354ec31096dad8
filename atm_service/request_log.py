"""Every request: an id, one log line and its metrics.

:class:`RequestLog` is the outermost middleware. For each HTTP request it

- takes the caller's ``X-Request-ID`` when it is a sensible token (a proxy's or
  an agent's), or makes one, and sends it back in the response's
  ``X-Request-ID``, with a ``Server-Timing: app;dur=<ms>`` header giving the
  service's time up to the answer's headers; every log record written while the
  request is served carries it (:data:`atm_service.logs.request_ids`), with the user's id once
  the session is read and the ATM's terminal id on device routes;
- writes one ``request`` record when the answer is sent: method, route
  template, path (never the query string, which may carry anything), status,
  duration in milliseconds and client address; probes and scrapes
  (``/healthz``, ``/readyz``, ``/metrics``) at DEBUG, server errors at WARNING,
  the rest at INFO;
- counts the request in :class:`~atm_service.metrics.Metrics` by method,
  route template and status.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atm_service.logs import RequestIds, request_ids
from atm_service.metrics import Metrics

logger = logging.getLogger("atm_service.requests")

HEADER = "X-Request-ID"
_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:@-]{8,128}$")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED = "(unmatched)"


def request_id_from(value: str | None) -> str:
    """The caller's request id if it is a sensible token, else a new one."""
    if value and _ACCEPTED_ID.match(value):
        return value
    return uuid.uuid4().hex


def note_user(user_id: int | None) -> None:
    """Record the logged-in user on the current request's ids."""
    ids = request_ids.get()
    if ids is not None:
        ids.user_id = user_id


def note_device(device: str | None) -> None:
    """Record the ATM (terminal id, or the key id a request claims) on the current request."""
    ids = request_ids.get()
    if ids is not None and device:
        ids.device = device[:64]


class RouteTemplates:
    """The full path template of each route object, as FastAPI includes it.

    The table is made by :meth:`build` when the application is assembled, or else
    at the first request. Making it has FastAPI resolve every route's dependencies
    (a quarter of a second for this service): on the first request of a busy
    server process that is a stall of the event loop that every request then in
    flight waits out."""

    def __init__(self) -> None:
        self._templates: dict[int, str] | None = None

    def build(self, routes: Sequence[BaseRoute]) -> dict[int, str]:
        self._templates = {
            id(context.original_route): context.path
            for context in iter_route_contexts(routes)
            if context.path is not None
        }
        return self._templates

    def of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        templates = self._templates
        if templates is None:
            templates = self.build(scope["app"].routes)
        found = templates.get(id(route))
        if found is not None:
            return found
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED


class RequestLog:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        enabled: bool = True,
        templates: RouteTemplates | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.enabled = enabled
        self.templates = templates or RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(Headers(scope=scope).get(HEADER))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        token = request_ids.set(RequestIds(request_id=rid))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[HEADER] = rid
                # The service's own share of the round trip, up to the answer's headers
                # (W3C Server-Timing): clients and proxies can tell it from the network's.
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers.append("Server-Timing", f"app;dur={elapsed_ms:.1f}")
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = self.templates.of(scope)
            self.metrics.observe(
                method=scope["method"], route=route, status=status, seconds=seconds
            )
            if self.enabled:
                self._log(scope, route=route, status=status, seconds=seconds)
            request_ids.reset(token)

    @staticmethod
    def _log(scope: Scope, *, route: str, status: int, seconds: float) -> None:
        path: str = scope["path"]
        if path in QUIET_PATHS:
            level = logging.DEBUG
        elif status >= 500:
            level = logging.WARNING
        else:
            level = logging.INFO
        if not logger.isEnabledFor(level):
            return
        client = scope.get("client")
        logger.log(
            level,
            "request",
            extra={
                "method": scope["method"],
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client": client[0] if client else None,
            },
        )
