"""Journal ingest: exactly the ATM's bytes, whatever is retried, overlapped or sent too early."""

from __future__ import annotations

import base64
import hashlib
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atm_service.context import AppContext
from atm_service.errors import NotFound
from atm_service.models.users import Role
from atm_service.services.journals import get_journal
from tests.ingest_support import Fleet, Signed, make_fleet, sample_journal
from tests.support import add_user, login

DAY = "20261116"


@pytest.fixture
def fleet(context: AppContext) -> Fleet:
    return make_fleet(context, "T1000001", "T1000002")


@pytest.fixture
def device(client: TestClient, context: AppContext, fleet: Fleet) -> Signed:
    return Signed(client, context, fleet.keys["T1000001"])


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _stored(context: AppContext, fleet: Fleet, terminal_id: str = "T1000001") -> bytes:
    with context.database.session() as session:
        return get_journal(session, fleet.atm_ids[terminal_id], DAY)


def test_a_whole_day_arrives_byte_for_byte_through_retries_and_overlaps(
    device: Signed, context: AppContext, fleet: Fleet
) -> None:
    journal = sample_journal()
    rng = random.Random(20261116)
    held = 0
    requests = 0
    while held < len(journal):
        # Start anywhere in what the service holds (a retransmit), end anywhere after it.
        start = rng.randint(max(0, held - 3000), held)
        end = min(len(journal), held + rng.randint(0, 4000))
        answer = _ok(device.put_journal("T1000001", DAY, start, journal[start:end]))
        assert answer["size"] == max(held, end)
        assert answer["appended"] == max(0, end - held)
        assert answer["lines"] == journal[held : max(held, end)].count(b"\n")
        held = answer["size"]
        requests += 1
    assert requests > 5
    stored = _stored(context, fleet)
    assert stored == journal
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(journal).hexdigest()
    # The whole file again, as after a lost answer: nothing changes.
    again = _ok(device.put_journal("T1000001", DAY, 0, journal))
    assert again == {"name": DAY, "size": len(journal), "appended": 0, "lines": 0}
    assert _stored(context, fleet) == journal


def test_a_gap_is_refused_with_the_offset_to_send_from(
    device: Signed, context: AppContext, fleet: Fleet
) -> None:
    journal = sample_journal()
    _ok(device.put_journal("T1000001", DAY, 0, journal[:1000]))
    response = device.put_journal("T1000001", DAY, 1500, journal[1500:2000])
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "/problems/offset-mismatch"
    assert problem["expected_offset"] == 1000
    assert problem["name"] == DAY
    assert "Send from offset 1000" in problem["detail"]
    assert _stored(context, fleet) == journal[:1000]
    _ok(device.put_journal("T1000001", DAY, problem["expected_offset"], journal[1000:2000]))
    assert _stored(context, fleet) == journal[:2000]


def test_conflicting_bytes_are_refused_and_nothing_changes(
    device: Signed, context: AppContext, fleet: Fleet
) -> None:
    journal = sample_journal()
    _ok(device.put_journal("T1000001", DAY, 0, journal[:1000]))
    forged = bytearray(journal[500:1500])
    forged[200] ^= 0x20
    response = device.put_journal("T1000001", DAY, 500, bytes(forged))
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "/problems/journal-conflict"
    assert problem["conflict_offset"] == 700
    assert problem["expected_offset"] == 1000
    assert _stored(context, fleet) == journal[:1000]


def test_empty_upload_at_the_end_only_confirms(device: Signed) -> None:
    assert _ok(device.put_journal("T1000001", DAY, 0, b"")) == {
        "name": DAY,
        "size": 0,
        "appended": 0,
        "lines": 0,
    }


def test_journals_of_two_atms_and_two_days_stay_apart(
    client: TestClient, context: AppContext, fleet: Fleet, device: Signed
) -> None:
    other = Signed(client, context, fleet.keys["T1000002"])
    mine = sample_journal("T1000001", DAY)
    theirs = sample_journal("T1000002", DAY)
    tomorrow = sample_journal("T1000001", "20261117")
    _ok(device.put_journal("T1000001", DAY, 0, mine))
    _ok(other.put_journal("T1000002", DAY, 0, theirs))
    _ok(device.put_journal("T1000001", "20261117", 0, tomorrow))
    assert _stored(context, fleet, "T1000001") == mine
    assert _stored(context, fleet, "T1000002") == theirs
    with context.database.session() as session:
        assert get_journal(session, fleet.atm_ids["T1000001"], "20261117") == tomorrow
        with pytest.raises(NotFound, match="has no journal 20261118"):
            get_journal(session, fleet.atm_ids["T1000002"], "20261118")


@pytest.mark.parametrize(
    ("name", "says"),
    [("2026111", "name"), ("20261341", "not a real date"), ("abcdefgh", "name")],
)
def test_bad_journal_names_are_422(device: Signed, name: str, says: str) -> None:
    response = device.put_journal("T1000001", name, 0, b"x")
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]


def test_a_body_over_the_limit_is_413(device: Signed, client: TestClient) -> None:
    response = device.put_journal("T1000001", DAY, 0, b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "exceeds 1048576 bytes" in response.json()["detail"]
    assert response.headers["x-content-type-options"] == "nosniff"

    def chunks() -> Any:
        for _ in range(20):
            yield b"y" * 65536

    streamed = client.put(
        "/api/v1/devices/T1000001/journals/20261116?offset=0",
        content=chunks(),
        headers=device.headers("PUT", "/api/v1/devices/T1000001/journals/20261116?offset=0", b""),
    )
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"
    assert _ok(device.put_journal("T1000001", DAY, 0, b""))["size"] == 0


def test_reading_journals_back_through_the_api(
    client: TestClient, context: AppContext, fleet: Fleet, device: Signed
) -> None:
    journal = sample_journal()
    _ok(device.put_journal("T1000001", DAY, 0, journal))
    recon = login(client, add_user(context, Role.RECONCILER))
    atm_id = fleet.atm_ids["T1000001"]
    listed = recon.get(f"/api/v1/atms/{atm_id}/journals").json()
    assert [(j["name"], j["size"], j["line_count"]) for j in listed] == [
        (DAY, len(journal), journal.count(b"\n"))
    ]
    response = recon.get(f"/api/v1/atms/{atm_id}/journals/{DAY}")
    assert response.status_code == 200
    assert response.content == journal
    digest = base64.b64encode(hashlib.sha256(journal).digest()).decode()
    assert response.headers["repr-digest"] == f"sha-256=:{digest}:"
    assert 'filename="T1000001_20261116.txt"' in response.headers["content-disposition"]
    missing = recon.get(f"/api/v1/atms/{atm_id}/journals/20261118")
    assert missing.status_code == 404
    assert recon.get(f"/api/v1/atms/{atm_id}/journals/2026").status_code == 422
