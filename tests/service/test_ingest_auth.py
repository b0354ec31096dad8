"""Device request authentication: the documented vector, and every refusal the scheme promises."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from atm_service.context import AppContext
from atm_service.models.devices import DeviceKeyCreate, DeviceNonce
from atm_service.models.users import Role
from atm_service.security.device_signatures import (
    SignatureError,
    canonical_string,
    parse_headers,
    verify,
)
from atm_service.services.device_keys import enrol_key, revoke_key
from device_agent.signing import DeviceKey
from tests.ingest_support import Signed, make_fleet, vector
from tests.support import FakeClock, add_user, login

VECTOR_HEADERS = {
    "ATM-Key-Id": vector()["key_id"],
    "ATM-Nonce": vector()["requests"][0]["nonce"],
    "ATM-Timestamp": str(vector()["requests"][0]["timestamp"]),
}


def _headers(case: dict[str, Any]) -> dict[str, str]:
    return {**VECTOR_HEADERS, "ATM-Signature": case["signature"]}


@pytest.mark.parametrize("case", vector()["requests"], ids=lambda case: case["method"])
def test_service_verifies_the_documented_vector(case: dict[str, Any]) -> None:
    signed = parse_headers(_headers(case))
    assert (
        canonical_string(
            method=case["method"],
            target=case["target"],
            body_sha256=case["body_sha256"],
            timestamp=signed.timestamp,
            nonce=signed.nonce,
            key_id=signed.key_id,
        )
        == case["canonical"].encode()
    )
    public_key = bytes.fromhex(vector()["public_key_hex"])
    verify(
        public_key=public_key,
        signed=signed,
        method=case["method"],
        target=case["target"],
        body=case["body"].encode(),
    )
    tampered = [
        {"method": "POST"},
        {"target": case["target"] + "x"},
        {"body": case["body"].encode() + b"\n"},
    ]
    for change in tampered:
        request = {
            "method": case["method"],
            "target": case["target"],
            "body": case["body"].encode(),
        }
        request.update(change)
        with pytest.raises(SignatureError, match="Bad signature"):
            verify(public_key=public_key, signed=signed, **request)  # type: ignore[arg-type]
    later = parse_headers({**_headers(case), "ATM-Timestamp": str(signed.timestamp + 1)})
    with pytest.raises(SignatureError):
        verify(
            public_key=public_key,
            signed=later,
            method=case["method"],
            target=case["target"],
            body=case["body"].encode(),
        )


def test_the_vector_request_is_accepted_once_over_http(
    client: TestClient, context: AppContext, clock: FakeClock
) -> None:
    fleet = make_fleet(context, "T1000001", keys=False)
    with context.database.session() as session:
        enrol_key(
            session,
            atm_id=fleet.atm_ids["T1000001"],
            data=DeviceKeyCreate(public_key=vector()["public_key"]),
            now=clock(),
        )
    case = vector()["requests"][0]
    assert int(clock().timestamp()) == case["timestamp"]
    response = client.put(case["target"], content=case["body"].encode(), headers=_headers(case))
    assert response.status_code == 200, response.text
    size = len(case["body"].encode())
    assert response.json() == {"name": "20261116", "size": size, "appended": size, "lines": 2}
    again = client.put(case["target"], content=case["body"].encode(), headers=_headers(case))
    assert again.status_code == 401
    assert "Replayed" in again.json()["detail"]
    me = vector()["requests"][1]
    fresh = {**_headers(me), "ATM-Nonce": "fresh-nonce-0000000000"}
    unsigned_again = client.get(me["target"], headers=fresh)
    assert unsigned_again.status_code == 401  # the signature covers the nonce
    who = client.get(me["target"], headers=_headers(me))
    assert who.status_code == 401  # same nonce as the PUT, same key: a replay
    other_key = DeviceKey.generate()
    with context.database.session() as session:
        enrol_key(
            session,
            atm_id=fleet.atm_ids["T1000001"],
            data=DeviceKeyCreate(public_key=other_key.public_key_b64),
            now=clock(),
        )
    # The same nonce under another key is that key's first use of it.
    headers = other_key.signature_headers(
        method="GET", target=me["target"], body=b"", timestamp=me["timestamp"], nonce=me["nonce"]
    )
    assert client.get(me["target"], headers=headers).json() == {
        "terminal_id": "T1000001",
        "key_id": other_key.key_id,
    }


@pytest.fixture
def pair(client: TestClient, context: AppContext) -> tuple[Signed, Signed]:
    fleet = make_fleet(context, "T1000001", "T1000002")
    return (
        Signed(client, context, fleet.keys["T1000001"]),
        Signed(client, context, fleet.keys["T1000002"]),
    )


PATH = "/api/v1/devices/T1000001/journals/20261116"


def _problem(response: Any, status: int, slug: str, says: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert says in body["detail"]


def test_signed_request_is_accepted(pair: tuple[Signed, Signed]) -> None:
    own, _ = pair
    assert own.put_journal("T1000001", "20261116", 0, b"x\n").status_code == 200


def test_unsigned_request_is_401(pair: tuple[Signed, Signed], client: TestClient) -> None:
    response = client.put(PATH, params={"offset": 0}, content=b"x")
    _problem(response, 401, "not-authenticated", "Unsigned request")


def test_incomplete_signature_is_401(pair: tuple[Signed, Signed], client: TestClient) -> None:
    own, _ = pair
    headers = own.headers("PUT", PATH + "?offset=0", b"x")
    del headers["ATM-Nonce"]
    response = client.put(PATH + "?offset=0", content=b"x", headers=headers)
    _problem(response, 401, "not-authenticated", "missing ATM-Nonce")


@pytest.mark.parametrize(
    ("header", "value", "says"),
    [
        ("ATM-Key-Id", "XYZ", "32 lower-case hex"),
        ("ATM-Timestamp", "-5", "Unix seconds"),
        ("ATM-Nonce", "bad nonce!", "base64url"),
        ("ATM-Signature", "abc", "64 bytes"),
    ],
)
def test_malformed_headers_are_401(
    pair: tuple[Signed, Signed], client: TestClient, header: str, value: str, says: str
) -> None:
    own, _ = pair
    headers = {**own.headers("PUT", PATH + "?offset=0", b"x"), header: value}
    response = client.put(PATH + "?offset=0", content=b"x", headers=headers)
    _problem(response, 401, "not-authenticated", says)


def test_bad_signature_is_401(pair: tuple[Signed, Signed], client: TestClient) -> None:
    own, _ = pair
    headers = own.headers("PUT", PATH + "?offset=0", b"other body")
    response = client.put(PATH + "?offset=0", content=b"x", headers=headers)
    _problem(response, 401, "not-authenticated", "Bad signature")
    moved = own.headers("PUT", PATH + "?offset=0", b"x")
    response = client.put(PATH + "?offset=1", content=b"x", headers=moved)
    _problem(response, 401, "not-authenticated", "Bad signature")


@pytest.mark.parametrize("drift", [-301, 301, -3600])
def test_stale_request_is_401(pair: tuple[Signed, Signed], clock: FakeClock, drift: int) -> None:
    own, _ = pair
    response = own.request("GET", "/api/v1/devices/me", timestamp=int(clock().timestamp()) + drift)
    _problem(response, 401, "not-authenticated", "Stale request")
    assert response.json()["server_time"].startswith("2026-11-16T08:00:00")


@pytest.mark.parametrize("drift", [-300, 300])
def test_skew_within_the_limit_is_accepted(
    pair: tuple[Signed, Signed], clock: FakeClock, drift: int
) -> None:
    own, _ = pair
    response = own.request("GET", "/api/v1/devices/me", timestamp=int(clock().timestamp()) + drift)
    assert response.status_code == 200, response.text


def test_replayed_request_is_401_even_after_a_refused_body(
    pair: tuple[Signed, Signed], client: TestClient
) -> None:
    own, _ = pair
    target = PATH + "?offset=10"
    headers = own.headers("PUT", target, b"gap")
    first = client.put(target, content=b"gap", headers=headers)
    _problem(first, 409, "offset-mismatch", "Send from offset 0")
    replay = client.put(target, content=b"gap", headers=headers)
    _problem(replay, 401, "not-authenticated", "Replayed request")


def test_unknown_key_is_403(
    pair: tuple[Signed, Signed], client: TestClient, context: AppContext
) -> None:
    stranger = Signed(client, context, DeviceKey.generate())
    response = stranger.put_journal("T1000001", "20261116", 0, b"x")
    _problem(response, 403, "forbidden", "is not enrolled")


def test_foreign_key_is_403(pair: tuple[Signed, Signed]) -> None:
    _, other = pair
    response = other.put_journal("T1000001", "20261116", 0, b"x")
    _problem(response, 403, "forbidden", "not enrolled for terminal T1000001")
    unknown_atm = other.put_journal("T9999999", "20261116", 0, b"x")
    _problem(unknown_atm, 403, "forbidden", "not enrolled for terminal T9999999")


def test_revoked_key_is_403(
    pair: tuple[Signed, Signed], context: AppContext, clock: FakeClock
) -> None:
    own, _ = pair
    assert own.request("GET", "/api/v1/devices/me").status_code == 200
    with context.database.session() as session:
        revoke_key(session, key_id=own.key.key_id, now=clock())
    response = own.request("GET", "/api/v1/devices/me")
    _problem(response, 403, "forbidden", "was revoked")


def test_nonces_expire_and_are_swept(
    pair: tuple[Signed, Signed], context: AppContext, clock: FakeClock
) -> None:
    own, _ = pair
    for _ in range(3):
        assert own.request("GET", "/api/v1/devices/me").status_code == 200

    def held() -> int:
        with context.database.session() as session:
            return session.exec(
                select(func.count())
                .select_from(DeviceNonce)
                .where(col(DeviceNonce.nonce).is_not(None))
            ).one()

    assert held() == 3
    clock.advance(seconds=context.settings.device_clock_skew_s + 61)
    assert own.request("GET", "/api/v1/devices/me").status_code == 200
    assert held() == 1


def test_enrolment_api(client: TestClient, context: AppContext) -> None:
    fleet = make_fleet(context, "T1000001", "T1000002", keys=False)
    admin = login(client, add_user(context, Role.ADMIN))
    atm_id = fleet.atm_ids["T1000001"]
    key = DeviceKey.generate()
    created = admin.post(
        f"/api/v1/atms/{atm_id}/device-keys",
        json={"public_key": key.public_key_b64, "label": "cabinet PC"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key_id"] == key.key_id
    assert body["terminal_id"] == "T1000001"
    assert body["revoked_at"] is None
    again = admin.post(
        f"/api/v1/atms/{fleet.atm_ids['T1000002']}/device-keys",
        json={"public_key": key.public_key_b64},
    )
    _problem(again, 409, "conflict", "already enrolled for another ATM")
    bad = admin.post(f"/api/v1/atms/{atm_id}/device-keys", json={"public_key": "A" * 40})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "public_key"
    assert "32 bytes" in bad.json()["detail"]
    missing = admin.post("/api/v1/atms/9999/device-keys", json={"public_key": key.public_key_b64})
    assert missing.status_code == 404
    listed = admin.get(f"/api/v1/atms/{atm_id}/device-keys").json()
    assert [k["key_id"] for k in listed] == [key.key_id]
    revoked = admin.post(f"/api/v1/device-keys/{key.key_id}/revoke")
    assert revoked.status_code == 200
    first_time = revoked.json()["revoked_at"]
    assert first_time is not None
    assert admin.post(f"/api/v1/device-keys/{key.key_id}/revoke").json()["revoked_at"] == first_time
    assert admin.post("/api/v1/device-keys/" + "0" * 32 + "/revoke").status_code == 404
