"""The application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import jinja2
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atm_service import probes, problems
from atm_service.api import api_router
from atm_service.api import openapi as api_openapi
from atm_service.api.body_limit import BodyLimit
from atm_service.api.routes.devices import DEVICE_MAX_BODY_BYTES, DEVICE_PREFIX
from atm_service.api.upload_limit import UploadLimit
from atm_service.clock import Clock, system_clock
from atm_service.config import Settings, get_settings
from atm_service.context import AppContext
from atm_service.db import Database
from atm_service.live import LiveUpdates
from atm_service.logs import configure_logging
from atm_service.metrics import Metrics
from atm_service.migrate import ensure_migrated, head_revision
from atm_service.recon_worker import ReconWorker
from atm_service.request_log import RequestLog, RouteTemplates
from atm_service.security.passwords import Passwords
from atm_service.services.lock_secrets import LockSecrets
from atm_service.sweeper import Sweeper
from atm_service.web import formatting
from atm_service.web import router as web_router

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(self)",
}


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` (and ``no-store`` outside ``/static/``) to every response
    that does not set them itself. Plain ASGI: it runs on every request, device ingest
    included, so it avoids the per-request task group of an ``@app.middleware`` function."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("atm_service", "web/templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    formatting.install(environment)
    return Jinja2Templates(env=environment)


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    clock: Clock = system_clock,
    check_migrations: bool = True,
) -> FastAPI:
    """Build the service. ``database`` and ``clock`` default to the settings' and the system's.

    Raises :class:`atm_service.errors.DatabaseNotMigrated` when the schema is
    not the one this code needs.
    """
    owns_database = database is None
    database = database or Database.from_settings(settings)
    if check_migrations:
        ensure_migrated(database)

    live = LiveUpdates(database, poll_interval=settings.dispatch_poll_interval_ms / 1000)
    locks = LockSecrets(settings)
    sweeper = Sweeper(
        database,
        clock=clock,
        interval=settings.dispatch_sweep_seconds,
        speed_kmh=settings.dispatch_road_speed_kmh,
        locks=locks,
        cash_lead_days=settings.cash_task_lead_days,
    )

    recon = ReconWorker(
        database,
        clock=clock,
        interval=settings.recon_poll_seconds,
        stale_after=timedelta(seconds=settings.recon_stale_after_s),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What start-up made (routes, schemas, validators, table metadata) lives as long
        # as the process: out of the collector's way, a full collection no longer walks
        # it, and those pauses of every request in flight get shorter.
        gc.collect()
        gc.freeze()
        sweeper.start()
        recon.start()
        yield
        recon.stop()
        sweeper.stop()
        live.stop()
        if owns_database:
            database.dispose()

    app = FastAPI(
        title="ATM Field Service",
        version="0.1.0",
        description=(
            "Central service of the ATM managed-service field system: fleet, device ingest, "
            "dispatch, reconciliation and lock control. Errors are RFC 9457 problem details. "
            "Authenticate with POST /api/v1/session and send the returned csrf_token as "
            "X-CSRF-Token on every write."
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    metrics = Metrics(database, clock)
    app.state.context = AppContext(
        settings=settings,
        database=database,
        clock=clock,
        passwords=Passwords.from_settings(settings),
        templates=_templates(),
        live=live,
        locks=locks,
        recon=recon,
        metrics=metrics,
        schema_head=head_revision(database),
    )

    app.add_middleware(BodyLimit, prefix=DEVICE_PREFIX, max_bytes=DEVICE_MAX_BODY_BYTES)
    app.add_middleware(
        UploadLimit,
        prefixes=("/api/v1/reconciliation/runs", "/reconciliation/runs"),
        max_bytes=settings.recon_upload_max_bytes,
    )
    app.add_middleware(SecurityHeaders)  # every answer gets the headers
    # Outermost: the request id, the log line and the metrics cover everything inside.
    route_templates = RouteTemplates()  # filled in below, once every route is included
    app.add_middleware(
        RequestLog, metrics=metrics, enabled=settings.log_requests, templates=route_templates
    )
    app.include_router(api_router)  # device routes first: they carry most requests
    app.include_router(web_router)
    app.include_router(probes.router)
    app.mount(
        "/static",
        StaticFiles(packages=[("atm_service", "web/static")]),
        name="static",
    )
    problems.install(app)
    api_openapi.install(app)
    route_templates.build(app.routes)
    return app


def create_app_from_environment() -> FastAPI:
    """The app with the environment's settings, for an ASGI server that imports a factory.

    ``uvicorn --factory atm_service.app:create_app_from_environment --workers N`` runs
    several worker processes over one database (PostgreSQL), as in production.
    """
    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)
