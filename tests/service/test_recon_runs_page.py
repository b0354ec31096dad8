"""The runs page's form for days already ingested preselects the newest *closed* business day.

Today's journals are still growing; a reconciler reconciles a day that has ended.
A day has ended at an ATM once it is a later day in the time zone of the ATM's
site, so the default follows each site's clock, which the test sets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from atm_service.context import AppContext
from atm_service.models.devices import DeviceKeyCreate
from atm_service.models.fleet import AtmCreate, SiteCreate
from atm_service.models.users import Role
from atm_service.services.device_keys import enrol_key
from atm_service.services.fleet import create_atm, create_site
from device_agent.signing import DeviceKey
from tests.ingest_support import Signed
from tests.support import SITE, FakeClock, add_user, atm_payload, login

NEW_YORK = "America/New_York"  # UTC-5 in November
TOKYO = "Asia/Tokyo"  # UTC+9


def _agent_at(client: TestClient, context: AppContext, terminal_id: str, timezone: str) -> Signed:
    """An ATM with an enrolled key at a site of its own in ``timezone``; its agent."""
    now = context.clock()
    key = DeviceKey.generate()
    with context.database.session() as session:
        site = create_site(
            session,
            data=SiteCreate.model_validate(
                {**SITE, "code": f"SITE-{terminal_id}", "timezone": timezone}
            ),
            now=now,
        )
        assert site.id is not None
        atm = create_atm(
            session, data=AtmCreate.model_validate(atm_payload(site.id, terminal_id)), now=now
        )
        enrol_key(
            session, atm_id=atm.id, data=DeviceKeyCreate(public_key=key.public_key_b64), now=now
        )
    return Signed(client, context, key)


def _upload(agent: Signed, terminal_id: str, *days: str) -> None:
    for day in days:
        response = agent.put_journal(terminal_id, day, 0, f"{day} 08:00:00 POWER UP\n".encode())
        assert response.status_code == 200, response.text


def _preselected(client: TestClient) -> tuple[str, str]:
    page = client.get("/reconciliation")
    assert page.status_code == 200
    first = re.search(
        r'<input id="day-from" type="date" name="date_from" value="([^"]*)"', page.text
    )
    last = re.search(r'<input id="day-to" type="date" name="date_to" value="([^"]*)"', page.text)
    assert first is not None, "the form for ingested days is missing"
    assert last is not None
    return first.group(1), last.group(1)


@pytest.fixture
def reconciler(
    client: TestClient, context: AppContext, clock: FakeClock
) -> Callable[[datetime], TestClient]:
    """Set the clock to a moment and log in as a reconciler then (sessions go idle)."""
    username = add_user(context, Role.RECONCILER, "rita")

    def at(moment: datetime) -> TestClient:
        clock.now = moment
        login(client, username)
        return client

    return at


def test_yesterday_at_the_site_is_preselected_not_today(
    reconciler: Callable[[datetime], TestClient], context: AppContext
) -> None:
    # 02:00 UTC on the 17th is still the 16th, 21:00, in New York.
    client = reconciler(datetime(2026, 11, 17, 2, 0, tzinfo=UTC))
    agent = _agent_at(client, context, "T1000001", NEW_YORK)
    _upload(agent, "T1000001", "20261114", "20261115", "20261116")
    assert _preselected(client) == ("2026-11-15", "2026-11-15")
    # The newest day ingested is still on the page, in the list of days.
    assert "2026-11-16" in client.get("/reconciliation").text

    reconciler(datetime(2026, 11, 17, 5, 30, tzinfo=UTC))  # 00:30 on the 17th in New York
    assert _preselected(client) == ("2026-11-16", "2026-11-16")


def test_the_newest_day_before_today_when_yesterday_is_missing(
    reconciler: Callable[[datetime], TestClient], context: AppContext
) -> None:
    client = reconciler(datetime(2026, 11, 20, 15, 0, tzinfo=UTC))  # the 20th in New York
    agent = _agent_at(client, context, "T1000001", NEW_YORK)
    _upload(agent, "T1000001", "20261116", "20261117", "20261120")
    assert _preselected(client) == ("2026-11-17", "2026-11-17")


def test_each_atm_closes_its_day_on_its_own_site_clock(
    reconciler: Callable[[datetime], TestClient], context: AppContext
) -> None:
    # 16:00 UTC on the 17th: 11:00 on the 17th in New York, 01:00 on the 18th in Tokyo.
    client = reconciler(datetime(2026, 11, 17, 16, 0, tzinfo=UTC))
    new_york = _agent_at(client, context, "T1000001", NEW_YORK)
    tokyo = _agent_at(client, context, "T2000001", TOKYO)
    _upload(new_york, "T1000001", "20261116", "20261117")
    _upload(tokyo, "T2000001", "20261116")
    assert _preselected(client) == ("2026-11-16", "2026-11-16")
    _upload(tokyo, "T2000001", "20261117")  # closed in Tokyo, still open in New York
    assert _preselected(client) == ("2026-11-17", "2026-11-17")


def test_nothing_is_preselected_when_only_open_days_are_ingested(
    reconciler: Callable[[datetime], TestClient], context: AppContext
) -> None:
    client = reconciler(datetime(2026, 11, 17, 16, 0, tzinfo=UTC))
    assert _preselected(client) == ("", "")  # nothing ingested at all
    agent = _agent_at(client, context, "T1000001", NEW_YORK)
    _upload(agent, "T1000001", "20261117")
    assert _preselected(client) == ("", "")
    page = client.get("/reconciliation").text
    assert "2026-11-17" in page  # listed among the days ingested, to choose by hand


def test_a_refused_form_keeps_what_the_reconciler_chose(
    reconciler: Callable[[datetime], TestClient], context: AppContext
) -> None:
    client = reconciler(datetime(2026, 11, 17, 16, 0, tzinfo=UTC))
    agent = _agent_at(client, context, "T1000001", NEW_YORK)
    _upload(agent, "T1000001", "20261115", "20261116")
    page = client.get("/reconciliation").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    refused = client.post(
        "/reconciliation/runs",
        data={
            "csrf_token": csrf.group(1),
            "source": "ingested",
            "date_from": "2026-11-16",
            "date_to": "2026-11-15",
        },
    )
    assert refused.status_code == 422
    assert "The last business day comes before the first." in refused.text
    assert 'name="date_from" value="2026-11-16"' in refused.text
    assert 'name="date_to" value="2026-11-15"' in refused.text
