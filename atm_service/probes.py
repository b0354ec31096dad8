"""Liveness, readiness and metrics: what a load balancer and Prometheus ask.

- ``GET /healthz``: the process answers (no database), 200.
- ``GET /readyz``: 200 when the database answers and its schema is at the
  revision this code needs; 503 with the reason otherwise (database
  unreachable, or migrated by a newer or older version of the service).
- ``GET /metrics``: the Prometheus text format (:mod:`atm_service.metrics`),
  only with ``Authorization: Bearer <ATM_METRICS_TOKEN>``; without that
  setting the endpoint is off (503), with a wrong token 401.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from atm_service.api.deps import ContextDep
from atm_service.errors import NotAuthenticated, NotConfigured
from atm_service.migrate import current_revision
from atm_service.security import tokens

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(context: ContextDep) -> Response:
    try:
        current = current_revision(context.database)
    except Exception as exc:  # any database failure means not ready
        body: dict[str, Any] = {
            "status": "unavailable",
            "database": "unreachable",
            "reason": f"The database does not answer ({type(exc).__name__}).",
        }
        return JSONResponse(body, status_code=503)
    if current != context.schema_head:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "ok",
                "schema": current,
                "expected_schema": context.schema_head,
                "reason": (
                    f"The database schema is at revision {current or 'none'}; this version of "
                    f"the service needs {context.schema_head}."
                ),
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready", "database": "ok", "schema": current})


@router.get("/metrics")
async def metrics(request: Request, context: ContextDep) -> Response:
    expected = context.settings.metrics_token
    if expected is None:
        raise NotConfigured(
            "Metrics are off: set ATM_METRICS_TOKEN and have Prometheus send it as a bearer "
            "token (see docs/operations.md)."
        )
    supplied = request.headers.get("authorization", "")
    if not tokens.same(supplied, f"Bearer {expected.get_secret_value()}"):
        raise NotAuthenticated("Send Authorization: Bearer with the metrics token.")
    body = await run_in_threadpool(context.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
