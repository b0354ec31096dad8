"""Inputs that once reached the database or a validator unchecked and answered 500: each is
now a 422 naming what is wrong (found by the OpenAPI fuzzing of test_openapi_fuzz.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from atm_service.context import AppContext
from atm_service.models.users import Role
from tests.support import SITE, Api, add_user, login

HUGE = 2**70


@pytest.fixture
def admin(client: TestClient, context: AppContext) -> Api:
    return login(client, add_user(context, Role.ADMIN))


def _invalid(response: Any, field: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == "/problems/validation-error"
    assert field in body["detail"], body
    return body


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/api/v1/tasks/{HUGE}", "task_id"),
        (f"/api/v1/atms/{HUGE}/state", "atm_id"),
        (f"/api/v1/contracts?offset={HUGE}", "offset"),
        (f"/api/v1/atms?site_id={HUGE}", "site_id"),
        (f"/api/v1/lock-log?atm_id={HUGE}", "atm_id"),
        (f"/api/v1/reconciliation/discrepancies?amount_min={HUGE}", "amount_min"),
        ("/api/v1/tasks/0", "task_id"),
    ],
)
def test_numbers_out_of_range(admin: Api, path: str, field: str) -> None:
    _invalid(admin.get(path), field)


def test_ids_in_bodies_out_of_range(admin: Api) -> None:
    _invalid(
        admin.post("/api/v1/tasks", json={"atm_id": HUGE, "kind": "flm", "title": "x" * 5}),
        "atm_id",
    )
    _invalid(admin.post("/api/v1/tasks/1/assign", json={"engineer_id": HUGE}), "engineer_id")
    _invalid(
        admin.post("/api/v1/tasks/1/cancel", json={"reason": "why not", "version": HUGE}), "version"
    )


def test_pages_refuse_a_negative_offset(admin: Api) -> None:
    page = admin.get("/locks/alarms?offset=-1")
    assert page.status_code == 422
    assert "offset" in page.text


@pytest.mark.parametrize("skills", [[{"x": 1}], 5, {"flm": True}, ["flm", 3]])
def test_skills_of_the_wrong_shape(admin: Api, skills: object) -> None:
    body = _invalid(admin.patch("/api/v1/engineers/1", json={"skills": skills}), "skills")
    assert "list of skill names" in body["detail"]


@pytest.mark.parametrize("field", ["full_name", "role", "is_active", "password"])
def test_a_user_field_cannot_be_set_to_null(admin: Api, context: AppContext, field: str) -> None:
    target = admin.get("/api/v1/users").json()["items"][0]
    _invalid(admin.patch(f"/api/v1/users/{target['id']}", json={field: None}), field)
    assert admin.patch(f"/api/v1/users/{target['id']}", json={"email": None}).status_code == 200


def test_a_body_that_cannot_be_read(app: FastAPI, client: TestClient) -> None:
    response = client.post(
        "/api/v1/session",
        content=b"\xff\xfe\x00 not json",
        headers={"Content-Type": "application/json"},
    )
    body = _invalid(response, "(body)")
    assert body["errors"][0]["location"] == "body"


@pytest.mark.postgres
def test_a_nul_character_postgresql_cannot_store(admin: Api, engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores NUL characters in text")
    body = _invalid(admin.post("/api/v1/sites", json={**SITE, "name": "North\u0000Station"}), "")
    assert "NUL character" in body["detail"]
    refused = admin.client.post(
        "/api/v1/session", json={"username": "ad\u0000min", "password": "whatever"}
    )
    assert refused.status_code == 422
