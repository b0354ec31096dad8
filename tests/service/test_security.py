"""Browser-facing security: the headers on every kind of answer, pages that need no
inline script (so the CSP can forbid it), the session cookie, and sessions that end."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atm_service.app import create_app
from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.db import Database
from atm_service.models.users import Role
from tests.support import PASSWORD, FakeClock, add_user, login, make_settings

TEMPLATES = Path(__file__).resolve().parents[2] / "atm_service" / "web" / "templates"
STATIC = TEMPLATES.parent / "static"


def _csp(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def _answers(client: TestClient, context: AppContext) -> dict[str, Any]:
    """One answer of each kind: page, redirect, API JSON, problem, 404, static, probe."""
    answers = {
        "login page": client.get("/login"),
        "redirect to login": client.get("/fleet", follow_redirects=False),
        "api problem": client.get("/api/v1/atms"),
        "missing page": client.get("/no/such/page"),
        "static file": client.get("/static/app.css"),
        "probe": client.get("/healthz"),
        "device refusal": client.get("/api/v1/devices/me"),
        "openapi": client.get("/openapi.json"),
    }
    login(client, add_user(context, Role.ADMIN))
    answers["home page"] = client.get("/")
    answers["api json"] = client.get("/api/v1/atms")
    return answers


def test_every_kind_of_answer_has_the_security_headers(
    client: TestClient, context: AppContext
) -> None:
    for kind, response in _answers(client, context).items():
        headers = response.headers
        csp = _csp(headers["content-security-policy"])
        assert csp["default-src"] == ["'self'"], kind
        assert csp["script-src"] == ["'self'"], kind  # no inline, no eval, no other origin
        assert csp["style-src"] == ["'self'"], kind
        assert csp["object-src"] == ["'none'"], kind
        assert csp["frame-ancestors"] == ["'none'"], kind
        assert csp["base-uri"] == ["'self'"], kind
        assert headers["x-frame-options"] == "DENY", kind
        assert headers["x-content-type-options"] == "nosniff", kind
        assert headers["referrer-policy"] == "same-origin", kind
        assert "x-request-id" in headers, kind
        if kind != "static file":
            assert headers["cache-control"] == "no-store", kind


def _template_files() -> list[Path]:
    files = sorted(TEMPLATES.rglob("*.html"))
    assert len(files) > 10, "templates not found"
    return files


@pytest.mark.parametrize("path", _template_files(), ids=lambda p: p.name)
def test_templates_carry_no_inline_script_or_style(path: Path) -> None:
    """What the CSP would block anyway, refused at the source: a page must work under it."""
    html = path.read_text()
    for tag in re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE):
        assert re.search(r'\bsrc="/static/[^"]+"', tag), f"{path.name}: inline script {tag}"
    body = re.search(r"<script\b[^>]*>\s*(?!</script>)\S", html, flags=re.IGNORECASE)
    assert not body, f"{path.name}: script with a body"
    handlers = re.findall(r"\son[a-z]+\s*=", html, flags=re.IGNORECASE)
    assert not handlers, f"{path.name}: event handler attributes {handlers}"
    assert "javascript:" not in html.lower(), f"{path.name}: javascript: URL"
    assert not re.search(r"\sstyle\s*=", html, flags=re.IGNORECASE), f"{path.name}: style="
    assert "<style" not in html.lower(), f"{path.name}: <style> block"


def test_scripts_build_no_code_from_strings() -> None:
    scripts = sorted(STATIC.glob("*.js"))
    assert scripts
    for script in scripts:
        source = script.read_text()
        for forbidden in ("eval(", "new Function", "innerHTML", "document.write", "setTimeout('"):
            assert forbidden not in source, f"{script.name}: {forbidden}"


def test_session_cookie_flags(client: TestClient, context: AppContext, settings: Settings) -> None:
    response = client.post(
        "/api/v1/session",
        json={"username": add_user(context, Role.AUDITOR), "password": PASSWORD},
    )
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{settings.session_cookie_name}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert f"Max-Age={settings.session_lifetime_minutes * 60}" in cookie
    assert "Secure" not in cookie  # plain HTTP in tests; ATM_COOKIE_SECURE=1 behind HTTPS


@pytest.fixture
def short_sessions() -> Settings:
    return make_settings(session_idle_minutes=30, session_lifetime_minutes=120, cookie_secure=True)


def test_secure_cookie_behind_https(
    short_sessions: Settings, database: Database, clock: FakeClock
) -> None:
    app = create_app(short_sessions, database=database, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        username = add_user(app.state.context, Role.AUDITOR)
        response = client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
        assert "Secure" in response.headers["set-cookie"]
        assert "Max-Age=7200" in response.headers["set-cookie"]


def test_sessions_end_when_idle_and_at_their_lifetime(
    short_sessions: Settings, database: Database, clock: FakeClock
) -> None:
    app = create_app(short_sessions, database=database, clock=clock)
    context: AppContext = app.state.context
    username = add_user(context, Role.DISPATCHER)
    with TestClient(app, base_url="https://testserver") as client:
        # Idle: 29 minutes of silence is fine, and each request restarts the count.
        login(client, username)
        for _ in range(3):
            clock.advance(minutes=29)
            assert client.get("/api/v1/session").status_code == 200
        clock.advance(minutes=30)
        assert client.get("/api/v1/session").status_code == 401
        page = client.get("/board", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/board"

        # Lifetime: busy all along, the session still ends 120 minutes after login.
        login(client, username)
        for _ in range(4):
            clock.advance(minutes=29)
            assert client.get("/api/v1/session").status_code == 200
        clock.advance(minutes=119 - 4 * 29)
        assert client.get("/api/v1/session").status_code == 200
        clock.advance(minutes=1)
        assert client.get("/api/v1/session").status_code == 401
        # Logging in again gives a new session.
        login(client, username)
        assert client.get("/api/v1/session").status_code == 200
