"""``/api/v1/kpis``: availability, response and restore times, first-time fix, SLA compliance."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from atm_service.api.deps import KpiReader, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.errors import InvalidInput
from atm_service.models.kpis import Kpis
from atm_service.services import kpis

router = APIRouter(prefix="/kpis", tags=["dispatch"], responses=problems(401, 403))

DEFAULT_PERIOD = timedelta(days=30)


@router.get(
    "",
    response_model=Kpis,
    summary="Service figures for a period (default: the last 30 days)",
    responses=problems(422),
)
def get_kpis(
    session: SessionDep,
    now: NowDep,
    _user: KpiReader,
    start: Annotated[datetime | None, Query(description="ISO 8601 with an offset")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with an offset; now")] = None,
    region: str | None = None,
) -> Kpis:
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} needs a UTC offset, e.g. 2026-11-01T00:00:00Z.", field=name)
    end = end or now
    start = start or end - DEFAULT_PERIOD
    return kpis.compute(session, start=start, end=end, now=now, region=region)
