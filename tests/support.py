"""Helpers shared by the tests: a controllable clock, users, logged-in API clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.models.users import Role, UserCreate
from atm_service.services.users import create_user

PASSWORD = "correct horse battery"


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "secret_key": "test-secret-key-" + "x" * 32,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "dispatch_sweep_seconds": 0,
        "recon_poll_seconds": 0,
        # Tests log in and ask for codes far faster than people; the limits' own tests
        # set small ones.
        "login_attempts_per_user": 100_000,
        "login_attempts_per_address": 100_000,
        "code_requests_per_user": 100_000,
        "code_requests_per_address": 100_000,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 16, 8, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def add_user(
    context: AppContext, role: Role, username: str | None = None, password: str = PASSWORD
) -> str:
    username = username or f"{role.value}-user"
    with context.database.session() as session:
        create_user(
            session,
            data=UserCreate(
                username=username, full_name=f"Test {role.value}", role=role, password=password
            ),
            passwords=context.passwords,
            now=context.clock(),
        )
    return username


class Api:
    """A logged-in API client that sends the CSRF header on every write."""

    def __init__(self, client: TestClient, csrf_token: str) -> None:
        self.client = client
        self.csrf_token = csrf_token

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}) or {})
        if method.upper() not in {"GET", "HEAD", "OPTIONS"}:
            headers.setdefault("X-CSRF-Token", self.csrf_token)
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.request("DELETE", url, **kwargs)


def login(client: TestClient, username: str, password: str = PASSWORD) -> Api:
    response = client.post("/api/v1/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return Api(client, response.json()["csrf_token"])


SITE = {
    "code": "NORTH-1",
    "name": "North Station",
    "address_line": "1 Station Square",
    "city": "Springfield",
    "postal_code": "10001",
    "country": "US",
    "region": "North",
    "latitude": 40.75,
    "longitude": -73.99,
    "timezone": "America/New_York",
}

CONTRACT = {
    "code": "GOLD",
    "customer": "First Bank",
    "name": "Gold 24x7",
    "response_minutes": 120,
    "restore_minutes": 240,
}


def atm_payload(site_id: int, terminal_id: str = "T1000001", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "terminal_id": terminal_id,
        "site_id": site_id,
        "vendor": "NCR",
        "model": "SelfServ 84",
        "ej_dialect": "ndc",
        "currency": "USD",
        "cassettes": [
            {"number": n, "denomination": d, "currency": "USD", "capacity": 3000, "minimum": 200}
            for n, d in enumerate((20, 50, 100, 100), start=1)
        ],
    }
    payload.update(overrides)
    return payload
