"""Logging in and out, sessions, lockout and CSRF."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.models.users import Role
from tests.support import PASSWORD, SITE, FakeClock, add_user, login


def test_login_returns_user_and_sets_httponly_samesite_cookie(
    client: TestClient, context: AppContext
) -> None:
    add_user(context, Role.ADMIN, "ada")
    response = client.post("/api/v1/session", json={"username": "ada", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "ada"
    assert body["user"]["role"] == "admin"
    assert "password_hash" not in body["user"]
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("atm_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert client.get("/api/v1/session").json()["user"]["username"] == "ada"


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: TestClient, context: AppContext
) -> None:
    add_user(context, Role.ADMIN, "ada")
    wrong = client.post("/api/v1/session", json={"username": "ada", "password": "nope" * 4})
    unknown = client.post("/api/v1/session", json={"username": "bob", "password": "nope" * 4})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.headers["content-type"] == "application/problem+json"


def test_account_locks_after_repeated_failures_and_unlocks_later(
    client: TestClient, context: AppContext, clock: FakeClock, settings: Settings
) -> None:
    add_user(context, Role.ENGINEER, "eli")
    for _ in range(settings.login_max_failures - 1):
        response = client.post("/api/v1/session", json={"username": "eli", "password": "x" * 12})
        assert response.status_code == 401
    response = client.post("/api/v1/session", json={"username": "eli", "password": "x" * 12})
    assert response.status_code == 423
    assert "locked" in response.json()["detail"]
    # Even the right password is refused while the lock lasts.
    response = client.post("/api/v1/session", json={"username": "eli", "password": PASSWORD})
    assert response.status_code == 423
    clock.advance(minutes=settings.login_lockout_minutes + 1)
    response = client.post("/api/v1/session", json={"username": "eli", "password": PASSWORD})
    assert response.status_code == 200


def test_a_success_resets_the_failure_count(
    client: TestClient, context: AppContext, settings: Settings
) -> None:
    add_user(context, Role.ENGINEER, "eli")
    for _ in range(3):
        for _ in range(settings.login_max_failures - 1):
            client.post("/api/v1/session", json={"username": "eli", "password": "x" * 12})
        assert (
            client.post(
                "/api/v1/session", json={"username": "eli", "password": PASSWORD}
            ).status_code
            == 200
        )


def test_session_ends_after_idle_time_and_lifetime(
    client: TestClient, context: AppContext, clock: FakeClock, settings: Settings
) -> None:
    add_user(context, Role.ADMIN, "ada")
    login(client, "ada")
    clock.advance(minutes=settings.session_idle_minutes - 1)
    assert client.get("/api/v1/session").status_code == 200
    clock.advance(minutes=settings.session_idle_minutes + 1)
    assert client.get("/api/v1/session").status_code == 401

    login(client, "ada")
    for _ in range(settings.session_lifetime_minutes // 60 + 1):
        clock.advance(minutes=60)
        client.get("/api/v1/session")
    assert client.get("/api/v1/session").status_code == 401


def test_logout_ends_the_session(client: TestClient, context: AppContext) -> None:
    add_user(context, Role.ADMIN, "ada")
    api = login(client, "ada")
    cookie = client.cookies.get("atm_session")
    assert api.delete("/api/v1/session").status_code == 204
    client.cookies.clear()
    client.cookies.set("atm_session", cookie or "")
    assert client.get("/api/v1/session").status_code == 401


def test_tampered_cookie_is_refused(client: TestClient, context: AppContext) -> None:
    add_user(context, Role.ADMIN, "ada")
    login(client, "ada")
    cookie = client.cookies.get("atm_session") or ""
    client.cookies.clear()
    client.cookies.set("atm_session", cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"))
    assert client.get("/api/v1/session").status_code == 401


def test_writes_need_the_csrf_token(client: TestClient, context: AppContext) -> None:
    add_user(context, Role.ADMIN, "ada")
    api = login(client, "ada")
    missing = client.post("/api/v1/sites", json=SITE)
    assert missing.status_code == 403
    assert "CSRF" in missing.json()["detail"]
    wrong = client.post("/api/v1/sites", json=SITE, headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    assert api.post("/api/v1/sites", json=SITE).status_code == 201


def _form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the form"
    return match.group(1)


def test_web_login_logout_round_trip(client: TestClient, context: AppContext) -> None:
    add_user(context, Role.DISPATCHER, "dana")
    page = client.get("/login")
    assert page.status_code == 200
    token = _form_token(page.text)
    response = client.post(
        "/login",
        data={"username": "dana", "password": PASSWORD, "csrf_token": token, "next": "/fleet"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/fleet"
    home = client.get("/")
    assert "Dispatcher" in home.text
    response = client.post(
        "/logout", data={"csrf_token": _form_token(home.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_web_login_refuses_a_missing_or_forged_form_token(
    client: TestClient, context: AppContext
) -> None:
    add_user(context, Role.DISPATCHER, "dana")
    client.get("/login")
    response = client.post(
        "/login", data={"username": "dana", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert "expired" in response.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_web_login_shows_wrong_password(client: TestClient, context: AppContext) -> None:
    add_user(context, Role.DISPATCHER, "dana")
    token = _form_token(client.get("/login").text)
    response = client.post(
        "/login", data={"username": "dana", "password": "wrong password", "csrf_token": token}
    )
    assert response.status_code == 200
    assert "Wrong user name or password" in response.text
    assert 'value="dana"' in response.text


def test_login_never_redirects_off_site(client: TestClient, context: AppContext) -> None:
    add_user(context, Role.DISPATCHER, "dana")
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        token = _form_token(client.get("/login").text)
        response = client.post(
            "/login",
            data={"username": "dana", "password": PASSWORD, "csrf_token": token, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"
        client.cookies.clear()


def test_disabled_user_cannot_log_in(client: TestClient, context: AppContext) -> None:
    add_user(context, Role.ADMIN, "ada")
    add_user(context, Role.ENGINEER, "eli")
    admin = login(client, "ada")
    eli = admin.get("/api/v1/users", params={"role": "engineer"}).json()["items"][0]
    assert admin.patch(f"/api/v1/users/{eli['id']}", json={"is_active": False}).status_code == 200
    response = client.post("/api/v1/session", json={"username": "eli", "password": PASSWORD})
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]
