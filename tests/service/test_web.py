"""The server-rendered pages: per-role home, fleet, errors, headers, no external assets."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from atm_service.context import AppContext
from atm_service.demo import seed_fleet
from atm_service.models.users import Role
from atm_service.web.capabilities import CAPABILITIES, ROLE_TITLES
from tests.support import add_user, login


@pytest.mark.parametrize("role", list(Role))
def test_home_page_says_what_the_role_can_do(
    client: TestClient, context: AppContext, role: Role
) -> None:
    login(client, add_user(context, role))
    page = client.get("/")
    assert page.status_code == 200
    assert f"<h1>{ROLE_TITLES[role]}</h1>" in page.text
    for capability in CAPABILITIES[role]:
        assert capability.title in page.text
    for link in re.findall(r'href="([^"]+)"', page.text):
        if link.startswith("/") and not link.startswith("/static/"):
            assert client.get(link).status_code == 200, link


def test_fleet_page_lists_atms_and_filters_by_region(
    client: TestClient, context: AppContext
) -> None:
    with context.database.session() as session:
        seed_fleet(session, now=context.clock())
    login(client, add_user(context, Role.DISPATCHER))
    page = client.get("/fleet")
    assert page.status_code == 200
    assert page.text.count("<h2>T10000") == 6
    south = client.get("/fleet", params={"region": "South"})
    assert south.text.count("<h2>T10000") == 2
    assert "T1000005" in south.text
    assert "T1000001" not in south.text


def test_pages_load_nothing_from_elsewhere(client: TestClient, context: AppContext) -> None:
    pages = [client.get("/login").text]
    login(client, add_user(context, Role.ADMIN))
    pages += [client.get("/").text, client.get("/fleet").text]
    for html in pages:
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert url.startswith("/"), url
        assert "<script" not in html
        assert 'name="viewport"' in html


def test_security_headers(client: TestClient) -> None:
    response = client.get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_web_errors_are_pages_not_tracebacks(client: TestClient, context: AppContext) -> None:
    login(client, add_user(context, Role.ENGINEER))
    response = client.get("/fleet")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "engineer role may not do this" in response.text
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert "There is nothing at /no/such/page" in missing.text


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
