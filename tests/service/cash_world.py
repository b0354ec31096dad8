"""Demand history and cash-unit reports for the dispatch world's ATMs (cash-planning tests)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlmodel import Session

from atm_service.models.cash_planning import DemandDayIn, DemandImport
from atm_service.services import cash_demand, dispatch_rules

WEEK = (1.0, 0.95, 0.97, 1.02, 1.25, 1.1, 0.7)
# notes a day on an ordinary Monday, by denomination
BASE = {20: 220.0, 50: 60.0, 100: 90.0}


def import_history(
    session: Session,
    atm_id: int,
    *,
    today: date,
    days: int,
    now: datetime,
    scale: float = 1.0,
    seed: int = 1,
) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(days, 0, -1):
        day = today - timedelta(days=k)
        for denomination, base in BASE.items():
            mean = scale * base * WEEK[day.weekday()] * (1.3 if day.day in (1, 15) else 1.0)
            rows.append(
                DemandDayIn(day=day, denomination=denomination, notes=int(rng.poisson(mean)))
            )
    cash_demand.import_days(session, atm_id=atm_id, data=DemandImport(days=rows), now=now)


def report_cash(
    session: Session, atm_id: int, counts: tuple[int, int, int, int], *, now: datetime
) -> None:
    """The ATM reports its four cassettes (20, 20, 50, 100) with these counts, all OK."""
    units: list[dict[str, Any]] = [
        {
            "usNumber": n,
            "usType": 3,
            "cUnitID": f"CST0{n}",
            "cCurrencyID": "USD",
            "ulValues": value,
            "ulInitialCount": 3000,
            "ulCount": count,
            "ulRejectCount": 0,
            "ulMinimum": 200,
            "ulMaximum": 0,
            "usStatus": 0,
            "ulDispensedCount": 3000 - count,
            "ulPresentedCount": 3000 - count,
            "ulRetractedCount": 0,
        }
        for n, (value, count) in enumerate(zip((20, 20, 50, 100), counts, strict=True), start=1)
    ]
    dispatch_rules.on_cash_units(session, atm_id=atm_id, units=units, now=now)
