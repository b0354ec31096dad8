"""The fleet API: sites, contracts and ATMs, and the errors bad input gets."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from atm_service.context import AppContext
from atm_service.models.users import Role
from tests.support import CONTRACT, SITE, Api, add_user, atm_payload, login


@pytest.fixture
def admin(client: TestClient, context: AppContext) -> Api:
    add_user(context, Role.ADMIN, "ada")
    return login(client, "ada")


def _fields(response: Any) -> set[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return {error["field"] for error in response.json().get("errors", [])}


def test_site_crud(admin: Api) -> None:
    created = admin.post("/api/v1/sites", json=SITE)
    assert created.status_code == 201, created.text
    site = created.json()
    assert site["code"] == "NORTH-1"
    assert site["latitude"] == 40.75
    assert admin.get(f"/api/v1/sites/{site['id']}").json() == site

    changed = admin.patch(f"/api/v1/sites/{site['id']}", json={"region": "East"})
    assert changed.status_code == 200
    assert changed.json()["region"] == "East"
    assert admin.get("/api/v1/sites", params={"region": "East"}).json()["total"] == 1
    assert admin.get("/api/v1/sites", params={"region": "North"}).json()["total"] == 0

    assert admin.delete(f"/api/v1/sites/{site['id']}").status_code == 204
    gone = admin.get(f"/api/v1/sites/{site['id']}")
    assert gone.status_code == 404
    assert gone.json()["detail"] == f"No site with id {site['id']}."


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latitude": 91}, "latitude"),
        ({"longitude": -181}, "longitude"),
        ({"country": "USA"}, "country"),
        ({"code": "lower case"}, "code"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"name": ""}, "name"),
    ],
)
def test_site_validation_names_the_field(admin: Api, change: dict[str, Any], field: str) -> None:
    response = admin.post("/api/v1/sites", json={**SITE, **change})
    assert response.status_code == 422
    assert _fields(response) == {field}
    assert field in response.json()["detail"]


def test_missing_fields_are_named(admin: Api) -> None:
    response = admin.post("/api/v1/sites", json={"code": "X"})
    assert response.status_code == 422
    assert {"name", "address_line", "city", "country", "region", "latitude"} <= _fields(response)


def test_malformed_json_is_a_clear_422(admin: Api) -> None:
    response = admin.post(
        "/api/v1/sites", content=b'{"code": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"]


def test_wrong_type_in_path_or_query_is_named(admin: Api) -> None:
    response = admin.get("/api/v1/sites/abc")
    assert response.status_code == 422
    assert _fields(response) == {"site_id"}
    response = admin.get("/api/v1/sites", params={"limit": 0})
    assert response.status_code == 422
    assert _fields(response) == {"limit"}


def test_duplicate_site_code_conflicts(admin: Api) -> None:
    assert admin.post("/api/v1/sites", json=SITE).status_code == 201
    response = admin.post("/api/v1/sites", json=SITE)
    assert response.status_code == 409
    assert _fields(response) == {"code"}


def test_contract_crud_and_hours(admin: Api) -> None:
    created = admin.post("/api/v1/contracts", json=CONTRACT)
    assert created.status_code == 201, created.text
    contract = created.json()
    assert (contract["service_start"], contract["service_end"]) == ("00:00", "24:00")
    backwards = admin.patch(
        f"/api/v1/contracts/{contract['id']}",
        json={"service_start": "23:00", "service_end": "07:00"},
    )
    assert backwards.status_code == 422
    assert "service_start" in backwards.json()["detail"]
    bad_days = admin.post(
        "/api/v1/contracts", json={**CONTRACT, "code": "X", "service_days": "118"}
    )
    assert bad_days.status_code == 422
    assert _fields(bad_days) == {"service_days"}
    assert admin.delete(f"/api/v1/contracts/{contract['id']}").status_code == 204


def test_atm_crud_with_cassettes(admin: Api) -> None:
    site = admin.post("/api/v1/sites", json=SITE).json()
    contract = admin.post("/api/v1/contracts", json=CONTRACT).json()
    created = admin.post("/api/v1/atms", json=atm_payload(site["id"], contract_id=contract["id"]))
    assert created.status_code == 201, created.text
    atm = created.json()
    assert [c["denomination"] for c in atm["cassettes"]] == [20, 50, 100, 100]
    assert atm["status"] == "in_service"

    changed = admin.patch(
        f"/api/v1/atms/{atm['id']}",
        json={
            "status": "out_of_service",
            "cassettes": [{"number": 1, "denomination": 10, "currency": "USD"}],
        },
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "out_of_service"
    assert [(c["number"], c["denomination"]) for c in changed.json()["cassettes"]] == [(1, 10)]

    listed = admin.get("/api/v1/atms", params={"region": "North"}).json()
    assert [a["terminal_id"] for a in listed["items"]] == ["T1000001"]
    assert admin.get("/api/v1/atms", params={"status": "in_service"}).json()["total"] == 0

    # A site or contract in use cannot be deleted.
    assert admin.delete(f"/api/v1/sites/{site['id']}").status_code == 409
    assert admin.delete(f"/api/v1/contracts/{contract['id']}").status_code == 409
    assert admin.delete(f"/api/v1/atms/{atm['id']}").status_code == 204
    assert admin.delete(f"/api/v1/sites/{site['id']}").status_code == 204


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"terminal_id": "T1"}, "terminal_id"),
        ({"ej_dialect": "diebold"}, "ej_dialect"),
        ({"currency": "usd"}, "currency"),
        ({"cassettes": []}, "cassettes"),
        (
            {"cassettes": [{"number": 1, "denomination": 0, "currency": "USD"}]},
            "cassettes.0.denomination",
        ),
        (
            {"cassettes": [{"number": 9, "denomination": 20, "currency": "USD"}]},
            "cassettes.0.number",
        ),
    ],
)
def test_atm_validation_names_the_field(admin: Api, change: dict[str, Any], field: str) -> None:
    site = admin.post("/api/v1/sites", json=SITE).json()
    response = admin.post("/api/v1/atms", json=atm_payload(site["id"], **change))
    assert response.status_code == 422, response.text
    assert _fields(response) == {field}


def test_atm_rules_checked_by_the_service(admin: Api) -> None:
    site = admin.post("/api/v1/sites", json=SITE).json()
    repeated = atm_payload(
        site["id"],
        cassettes=[
            {"number": 1, "denomination": 20, "currency": "USD"},
            {"number": 1, "denomination": 50, "currency": "USD"},
        ],
    )
    response = admin.post("/api/v1/atms", json=repeated)
    assert response.status_code == 422
    assert "repeated" in response.json()["detail"]

    response = admin.post("/api/v1/atms", json=atm_payload(999_999))
    assert response.status_code == 422
    assert _fields(response) == {"site_id"}

    response = admin.post("/api/v1/atms", json=atm_payload(site["id"], contract_id=424242))
    assert response.status_code == 422
    assert _fields(response) == {"contract_id"}

    assert admin.post("/api/v1/atms", json=atm_payload(site["id"])).status_code == 201
    response = admin.post("/api/v1/atms", json=atm_payload(site["id"]))
    assert response.status_code == 409
    assert _fields(response) == {"terminal_id"}

    atm_id = admin.get("/api/v1/atms").json()["items"][0]["id"]
    response = admin.patch(f"/api/v1/atms/{atm_id}", json={"vendor": None})
    assert response.status_code == 422
    assert _fields(response) == {"vendor"}


def test_unknown_route_and_method_are_problems(admin: Api) -> None:
    response = admin.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    response = admin.request("PUT", "/api/v1/sites")
    assert response.status_code == 405
    assert "PUT" in response.json()["detail"]


def test_pagination(admin: Api) -> None:
    for n in range(5):
        assert admin.post("/api/v1/sites", json={**SITE, "code": f"S{n}"}).status_code == 201
    page = admin.get("/api/v1/sites", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 5
    assert [s["code"] for s in page["items"]] == ["S2", "S3"]
