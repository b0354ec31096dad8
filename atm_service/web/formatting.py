"""Template filters for times, deadlines and money, shared by the pages.

The same wording is produced by ``web/static/dispatch.js`` when it updates a
page live; keep the two in step.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import jinja2

SOON_MINUTES = 30


def local(moment: datetime | None, timezone: str, fmt: str = "%H:%M") -> str:
    """A UTC time as the clock on the wall shows it in ``timezone``."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(timezone)).strftime(fmt)


def when(moment: datetime | None, timezone: str) -> str:
    return local(moment, timezone, "%a %d %b %H:%M")


def countdown(due: datetime, now: datetime) -> str:
    """``in 1 h 05 min`` before the deadline, ``12 min overdue`` after."""
    seconds = (due - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    hours, rest = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {rest:02d} min"
    else:
        text = f"{rest} min"
    return f"in {text}" if seconds >= 0 else f"{text} overdue"


def urgency(due: datetime, now: datetime) -> str:
    seconds = (due - now).total_seconds()
    if seconds < 0:
        return "overdue"
    if seconds < SOON_MINUTES * 60:
        return "soon"
    return ""


def money(minor: int | None, currency: str = "USD") -> str:
    """``123456`` -> ``1,234.56 USD``, with integer arithmetic only."""
    if minor is None:
        return ""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency}"


def install(environment: jinja2.Environment) -> None:
    environment.filters["local"] = local
    environment.filters["when"] = when
    environment.filters["countdown"] = countdown
    environment.filters["urgency"] = urgency
    environment.filters["money"] = money
