"""Rate limits on logging in and on lock codes: sliding windows, 429 with Retry-After,
counted in the database so that every instance sees the same attempts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.errors import TooManyRequests
from atm_service.models.rate_limits import RateLimitHit
from atm_service.models.users import Role
from atm_service.services import rate_limits
from atm_service.services.rate_limits import Check, Limit
from tests.support import PASSWORD, FakeClock, add_user, login, make_settings


@pytest.fixture
def settings() -> Settings:
    return make_settings(
        login_attempts_per_user=3,
        login_attempts_per_address=5,
        login_attempts_window_s=60,
        code_requests_per_user=2,
        code_requests_per_address=100,
        code_requests_window_s=120,
    )


def _login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/session", json={"username": username, "password": password})


def test_logins_per_user_name_slide_over_their_window(
    client: TestClient, context: AppContext, clock: FakeClock
) -> None:
    username = add_user(context, Role.DISPATCHER)
    for _ in range(3):  # at 0, 10 and 20 s
        assert _login(client, username, "wrong password!").status_code == 401
        clock.advance(seconds=10)
    refused = _login(client, username)  # at 30 s; even the right password waits
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/too-many-requests"
    assert "try again in 30 s" in refused.json()["detail"]
    clock.advance(seconds=30)  # at 60 s the first attempt leaves the window
    assert _login(client, username).status_code == 200
    # Refused attempts were not counted; now 10, 20 and 60 s fill the window again.
    again = _login(client, username)
    assert again.status_code == 429
    assert again.headers["retry-after"] == "10"
    # The user name is matched as the login matches it.
    assert _login(client, f" {username.upper()} ").status_code == 429


def test_logins_per_client_address(app: FastAPI, context: AppContext) -> None:
    names = [add_user(context, Role.ENGINEER, f"engineer{n}") for n in range(6)]
    with TestClient(app, client=("203.0.113.7", 40000)) as spraying:
        statuses = [_login(spraying, name, "not the password").status_code for name in names]
    assert statuses == [401] * 5 + [429]
    with TestClient(app, client=("198.51.100.1", 40000)) as elsewhere:
        assert _login(elsewhere, names[5]).status_code == 200


def test_the_login_page_says_when_to_try_again(client: TestClient, context: AppContext) -> None:
    username = add_user(context, Role.AUDITOR)
    for attempt in range(4):
        page = client.get("/login")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post(
            "/login",
            data={"username": username, "password": "nope nope nope", "csrf_token": csrf},
            follow_redirects=False,
        )
        if attempt < 3:
            assert response.status_code == 200
            assert "Wrong user name or password" in response.text
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"
    assert "try again in 60 s" in response.text
    assert username in response.text  # the form keeps what was typed
    assert response.headers["content-type"].startswith("text/html")


def test_lock_code_requests_per_user(
    client: TestClient, context: AppContext, clock: FakeClock
) -> None:
    api = login(client, add_user(context, Role.ENGINEER))
    paths = ("/codes", "/codes/reveal", "/seal")
    statuses = []
    for path in paths:
        body = {"task_id": 1, "seal": "12345678"} if path == "/seal" else {"task_id": 1}
        statuses.append(api.post(f"/api/v1/atms/1/lock{path}", json=body).status_code)
    # Refused for what they ask (no such task here), but counted all the same.
    assert 429 not in statuses[:2]
    assert statuses[2] == 429
    clock.advance(seconds=120)
    assert api.post("/api/v1/atms/1/lock/codes", json={"task_id": 1}).status_code != 429
    # The engineer's page counts against the same limit.
    api.post("/api/v1/atms/1/lock/codes", json={"task_id": 1})
    page = api.post("/my/tasks/1/lock/code", data={"csrf_token": api.csrf_token})
    assert page.status_code == 429
    assert page.headers["retry-after"] == "120"
    assert "Too many lock code requests" in page.text


def test_other_roles_are_refused_before_they_are_counted(
    client: TestClient, context: AppContext
) -> None:
    api = login(client, add_user(context, Role.DISPATCHER))
    for _ in range(4):
        assert api.post("/api/v1/atms/1/lock/codes", json={"task_id": 1}).status_code == 403
    with context.database.session() as session:
        assert (
            session.exec(
                select(func.count()).where(col(RateLimitHit.limit_name).startswith("code"))
            ).one()
            == 0
        )


# --- the sliding window itself ------------------------------------------------------


def test_sliding_window_counts_refuses_and_prunes(context: AppContext, clock: FakeClock) -> None:
    limit = Limit("test-window", 3, timedelta(seconds=60), "tries")
    check = [Check(limit, "someone")]
    start = clock.now
    with context.database.session() as session:
        for offset in (0, 20, 40):
            rate_limits.admit(session, check, now=start + timedelta(seconds=offset))
        with pytest.raises(TooManyRequests) as refused:
            rate_limits.admit(session, check, now=start + timedelta(seconds=50))
        assert refused.value.retry_after_s == 10
        rate_limits.admit(session, check, now=start + timedelta(seconds=60))  # 0 left
        with pytest.raises(TooManyRequests):
            rate_limits.admit(session, check, now=start + timedelta(seconds=61))
        # Another subject has a window of its own; the digest, not the name, is stored.
        rate_limits.admit(session, [Check(limit, "someone else")], now=start)
        subjects = set(session.exec(select(RateLimitHit.subject)).all())
        assert "someone" not in subjects
        assert all(len(subject) == 64 for subject in subjects)
        # A day later, an admission removes what is older than any window.
        rate_limits.admit(session, check, now=start + rate_limits.RETENTION + timedelta(minutes=2))
        left = session.exec(
            select(func.count()).where(col(RateLimitHit.limit_name) == "test-window")
        ).one()
        assert left == 1
        everything = session.exec(select(func.count()).select_from(RateLimitHit)).one()
        assert everything == 1


def test_a_limit_of_zero_is_off(context: AppContext, clock: FakeClock) -> None:
    off = Limit("test-off", 0, timedelta(seconds=60), "tries")
    with context.database.session() as session:
        for _ in range(50):
            rate_limits.admit(session, [Check(off, "x")], now=clock.now)
        assert session.exec(select(func.count()).select_from(RateLimitHit)).one() == 0


@pytest.fixture
def shared_postgres(postgresql_engine: Engine) -> Iterator[Engine]:
    yield postgresql_engine
    with postgresql_engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM rate_limit_hit WHERE limit_name = 'test-race'"))


@pytest.mark.postgres
def test_instances_racing_on_postgresql_admit_exactly_the_limit(
    shared_postgres: Engine, clock: FakeClock
) -> None:
    """Twelve sessions (as if on several instances) try at once; five get through."""
    limit = Limit("test-race", 5, timedelta(seconds=60), "tries")
    admitted: list[bool] = []
    barrier = threading.Barrier(12)

    def attempt() -> None:
        with Session(shared_postgres) as session:
            barrier.wait()
            try:
                rate_limits.admit(session, [Check(limit, "victim")], now=clock.now)
            except TooManyRequests:
                admitted.append(False)
            else:
                admitted.append(True)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(admitted) == [False] * 7 + [True] * 5
