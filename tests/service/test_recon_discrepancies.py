"""Discrepancies of a run over the reference sample: filters and paging, the audited
resolution, exports and the pages."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atm_service.context import AppContext
from atm_service.models.users import Role
from tests.samples import sample_dir
from tests.service.recon_support import DISCREPANCIES, RUNS, files, run_queued
from tests.support import Api, FakeClock, add_user, login

EXPORT = f"{DISCREPANCIES}/export"


@pytest.fixture
def recon(client: TestClient, context: AppContext) -> Api:
    return login(client, add_user(context, Role.RECONCILER, "rita"))


@pytest.fixture
def run_id(recon: Api, context: AppContext) -> int:
    sample = sample_dir()
    response = recon.post(RUNS, files=files(sample))
    assert response.status_code == 202, response.text
    assert run_queued(context) == response.json()["id"]
    return int(response.json()["id"])


def _all(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = api.get(DISCREPANCIES, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return list(body["items"])


def test_filters_narrow_the_list(recon: Api, run_id: int) -> None:
    everything = _all(recon, run_id=run_id)
    assert len(everything) == 111

    def expect(
        params: dict[str, Any], predicate: Any, *, at_least: int = 1
    ) -> list[dict[str, Any]]:
        found = _all(recon, run_id=run_id, **params)
        wanted = [item for item in everything if predicate(item)]
        assert [item["id"] for item in found] == [item["id"] for item in wanted], params
        assert len(found) >= at_least, params
        return found

    expect(
        {"kind": "partial_dispense_no_reversal"},
        lambda i: i["kind"] == "partial_dispense_no_reversal",
    )
    expect({"terminal_id": "T1000003"}, lambda i: i["terminal_id"] == "T1000003")
    expect({"terminal_id": "T10000"}, lambda i: True, at_least=111)
    expect({"date_from": "2026-11-17"}, lambda i: i["business_date"] == "2026-11-17")
    expect(
        {"date_from": "2026-11-16", "date_to": "2026-11-16"},
        lambda i: i["business_date"] == "2026-11-16",
    )
    for owed in ("customer", "bank", "none"):
        expect({"owed_to": owed}, lambda i, owed=owed: i["owed_to"] == owed)
    expect({"amount_min": 20000}, lambda i: i["amount_minor"] >= 20000)
    expect(
        {"amount_min": 5000, "amount_max": 10000},
        lambda i: 5000 <= i["amount_minor"] <= 10000,
    )
    expect(
        {"owed_to": "customer", "terminal_id": "T1000005", "date_from": "2026-11-17"},
        lambda i: (
            i["owed_to"] == "customer"
            and i["terminal_id"] == "T1000005"
            and i["business_date"] == "2026-11-17"
        ),
    )
    expect({"status": "open"}, lambda i: True, at_least=111)
    assert _all(recon, status="resolved", run_id=run_id) == []
    assert _all(recon, run_id=run_id + 1) == []

    # The position order is the run's: terminal, day, time.
    order = [(i["terminal_id"], i["business_date"]) for i in everything]
    assert order == sorted(order)
    amounts = [i["amount_minor"] for i in _all(recon, run_id=run_id, sort="amount")]
    assert amounts == sorted(amounts, reverse=True)
    deadlines = [i["dispute_deadline"] for i in _all(recon, run_id=run_id, sort="deadline")]
    dated = [d for d in deadlines if d is not None]
    assert dated == sorted(dated)
    assert deadlines[: len(dated)] == dated  # no deadline comes last

    # Paging.
    page = recon.get(DISCREPANCIES, params={"run_id": run_id, "limit": 50, "offset": 100}).json()
    assert (page["total"], len(page["items"])) == (111, 11)
    assert [i["id"] for i in page["items"]] == [i["id"] for i in everything[100:]]

    # Bad filters name themselves.
    for params, field in (
        ({"kind": "lost_card"}, "kind"),
        ({"owed_to": "atm"}, "owed_to"),
        ({"amount_min": 10, "amount_max": 5}, "amount_max"),
        ({"date_from": "2026-11-17", "date_to": "2026-11-16"}, "date_to"),
        ({"terminal_id": "T1%"}, "terminal_id"),
        ({"sort": "random"}, "sort"),
    ):
        response = recon.get(DISCREPANCIES, params=params)
        assert response.status_code == 422, params
        assert field in {error["field"] for error in response.json()["errors"]}, params


def test_resolution_is_audited_idempotent_and_guarded(
    client: TestClient, recon: Api, context: AppContext, clock: FakeClock, run_id: int
) -> None:
    item = _all(recon, run_id=run_id, kind="host_duplicate")[0]
    url = f"{DISCREPANCIES}/{item['id']}"
    assert item["status"] == "open"

    response = recon.post(f"{url}/resolve", json={"note": "hi"})
    assert response.status_code == 422  # a note of 3 characters at least

    resolved = recon.post(
        f"{url}/resolve",
        json={"note": "Duplicate posting reversed, ticket SW-118", "version": item["version"]},
        headers={"Idempotency-Key": "k-1"},
    )
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert (body["status"], body["status_by"], body["version"]) == ("resolved", "rita", 2)
    assert [(h["action"], h["from_status"], h["to_status"]) for h in body["history"]] == [
        ("resolve", "open", "resolved")
    ]

    # The same request again (a retry) changes nothing.
    again = recon.post(
        f"{url}/resolve",
        json={"note": "Duplicate posting reversed, ticket SW-118", "version": item["version"]},
        headers={"Idempotency-Key": "k-1"},
    )
    assert again.status_code == 200
    assert len(again.json()["history"]) == 1
    # A new request to resolve what is resolved, or from a stale page, is refused.
    twice = recon.post(f"{url}/resolve", json={"note": "once more"})
    assert twice.status_code == 409
    assert twice.json()["type"] == "/problems/illegal-transition"
    assert "already resolved (by rita)" in twice.json()["detail"]
    stale = recon.post(f"{url}/reopen", json={"note": "from an old page", "version": 1})
    assert stale.status_code == 409
    assert "changed since you loaded it" in stale.json()["detail"]
    reused = recon.post(f"{url}/reopen", json={"note": "reuse"}, headers={"Idempotency-Key": "k-1"})
    assert reused.status_code == 409
    assert "already used for a different request" in reused.json()["detail"]

    # An auditor reads the trail but may not change it.
    auditor = login(client, add_user(context, Role.AUDITOR, "audrey"))
    refused = auditor.post(f"{url}/reopen", json={"note": "auditors may not"})
    assert refused.status_code == 403
    client.cookies.clear()
    recon = login(client, "rita")
    clock.advance(minutes=5)
    reopened = recon.post(f"{url}/reopen", json={"note": "Switch says the reversal bounced"})
    assert reopened.status_code == 200
    trail = reopened.json()["history"]
    assert [(h["action"], h["actor"], h["note"]) for h in trail] == [
        ("resolve", "rita", "Duplicate posting reversed, ticket SW-118"),
        ("reopen", "rita", "Switch says the reversal bounced"),
    ]
    assert trail[0]["at"] < trail[1]["at"]
    client.cookies.clear()
    auditor = login(client, "audrey")
    assert auditor.get(url).json()["history"] == trail
    assert [i["id"] for i in _all(auditor, run_id=run_id, status="open")].count(item["id"]) == 1

    # The trail is append-only in the database itself.
    with context.database.connect() as connection:
        for statement in (
            "UPDATE recon_resolution SET note = 'changed'",
            "DELETE FROM recon_resolution",
        ):
            savepoint = connection.begin_nested()
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                connection.execute(sa.text(statement))
            savepoint.rollback()
        count = connection.execute(sa.text("SELECT count(*) FROM recon_resolution")).scalar()
    assert count == 2


def test_exports_of_a_run_and_of_a_filtered_list(recon: Api, run_id: int) -> None:
    response = recon.get(EXPORT, params={"run_id": run_id, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="discrepancies-run-{run_id}.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 111
    assert Counter(row["kind"] for row in rows)["paper_gap"] == 16
    assert all(row["status"] == "open" for row in rows)
    assert all(row["ej_location"] or row["kind"] == "ej_gap" for row in rows)

    customer = recon.get(
        EXPORT, params={"run_id": run_id, "owed_to": "customer", "format": "jsonl"}
    )
    lines = [json.loads(line) for line in customer.text.splitlines()]
    expected = _all(recon, run_id=run_id, owed_to="customer")
    assert [line["id"] for line in lines] == [item["id"] for item in expected]
    assert all(line["owed_to"] == "customer" for line in lines)
    assert all(
        line["evidence"]["host_messages"]
        for line in lines
        if not line["kind"].startswith("cassette_")
    )
    assert all(isinstance(line["amount_minor"], int) for line in lines)

    workbook = recon.get(EXPORT, params={"run_id": run_id, "kind": "ej_gap", "format": "xlsx"})
    assert workbook.status_code == 200
    with zipfile.ZipFile(io.BytesIO(workbook.content)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert len(re.findall(r"<row ", sheet)) == 1 + 5  # the header and the five EJ gaps

    report = recon.get(f"{RUNS}/{run_id}/files/report.html")
    assert report.status_code == 200
    assert "script-src" not in report.headers["content-security-policy"]
    assert "default-src 'none'" in report.headers["content-security-policy"]
    assert "<svg" in report.text
    summary = recon.get(f"{RUNS}/{run_id}/files/summary.json", params={"download": True})
    assert summary.json()["discrepancies"] == 111
    assert "attachment" in summary.headers["content-disposition"]
    settlement = recon.get(f"{RUNS}/{run_id}/files/settlement.csv")
    assert settlement.text.startswith("terminal_id,")
    assert recon.get(f"{RUNS}/{run_id}/files/secrets.txt").status_code == 422
    assert recon.get(f"{RUNS}/{run_id + 1}/files/report.html").status_code == 404
    bad = recon.get(EXPORT, params={"format": "pdf"})
    assert bad.status_code == 422


def test_the_pages_list_filter_show_evidence_and_resolve(
    client: TestClient, recon: Api, context: AppContext, run_id: int
) -> None:
    runs = client.get("/reconciliation")
    assert runs.status_code == 200
    assert f'href="/reconciliation/runs/{run_id}"' in runs.text
    run = client.get(f"/reconciliation/runs/{run_id}")
    assert 'http-equiv="refresh"' not in run.text  # done: no more refreshing
    assert "Owed to customers" in run.text
    assert "3,560.00 USD" in run.text

    listing = client.get(
        "/reconciliation/discrepancies",
        params={"run_id": run_id, "owed_to": "customer", "amount_from": "100", "sort": "amount"},
    )
    assert listing.status_code == 200
    expected = _all(recon, run_id=run_id, owed_to="customer", amount_min=10000, sort="amount")
    ids = [int(i) for i in re.findall(r'href="/reconciliation/discrepancies/(\d+)\?', listing.text)]
    assert list(dict.fromkeys(ids)) == [item["id"] for item in expected]
    assert f"1–{len(expected)} of {len(expected)}" in listing.text
    assert "format=xlsx" in listing.text
    assert "amount_min=10000" in listing.text

    bad = client.get("/reconciliation/discrepancies", params={"amount_from": "ten"})
    assert bad.status_code == 422
    assert "&#39;ten&#39; is not an amount like 120 or 120.50." in bad.text

    paged = client.get("/reconciliation/discrepancies", params={"run_id": run_id, "offset": 100})
    assert "101–111 of 111" in paged.text
    assert 'rel="prev"' in paged.text
    assert 'rel="next"' not in paged.text

    item = expected[0]
    detail = client.get(f"/reconciliation/discrepancies/{item['id']}")
    assert detail.status_code == 200
    marks = re.findall(r"<mark>(.*?)</mark>", detail.text, re.S)
    assert any(item["stan"] in mark for mark in marks)
    assert "Host messages" in detail.text
    assert "Counters" in detail.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', detail.text)
    assert key is not None
    form = {
        "csrf_token": recon.csrf_token,
        "note": "Refunded, reference RF-7",
        "idempotency_key": key.group(1),
        "version": "1",
        "back": "/reconciliation/discrepancies?owed_to=customer",
    }
    done = client.post(
        f"/reconciliation/discrepancies/{item['id']}/resolve", data=form, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/reconciliation/discrepancies/{item['id']}?back=")
    replay = client.post(
        f"/reconciliation/discrepancies/{item['id']}/resolve", data=form, follow_redirects=False
    )
    assert replay.status_code == 303  # a double submit does it once
    shown = client.get(done.headers["location"])
    assert "Refunded, reference RF-7" in shown.text
    assert shown.text.count("open → resolved") == 1
    assert 'href="/reconciliation/discrepancies?owed_to=customer"' in shown.text
    no_csrf = client.post(
        f"/reconciliation/discrepancies/{item['id']}/reopen",
        data={**form, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert no_csrf.status_code == 403
    offsite = client.get(
        f"/reconciliation/discrepancies/{item['id']}", params={"back": "https://evil.example/"}
    )
    assert "evil.example" not in offsite.text

    for html in (runs.text, run.text, listing.text, detail.text):
        assert "<script" not in html
        for url in re.findall(r'(?:src|href|action)="([^"]+)"', html):
            assert url.startswith("/"), url

    # An auditor sees the same pages without a form.
    client.cookies.clear()
    login(client, add_user(context, Role.AUDITOR, "audrey"))
    seen = client.get(f"/reconciliation/discrepancies/{item['id']}")
    assert seen.status_code == 200
    assert "Refunded, reference RF-7" in seen.text
    assert "<textarea" not in seen.text
    assert "Start a run" not in client.get("/reconciliation").text


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.DISPATCHER])
def test_engineers_and_dispatchers_are_refused(
    client: TestClient, context: AppContext, role: Role
) -> None:
    api = login(client, add_user(context, role))
    for path in ("/reconciliation", "/reconciliation/discrepancies"):
        assert client.get(path).status_code == 403, path
    for path in (RUNS, DISCREPANCIES, f"{DISCREPANCIES}/export", f"{DISCREPANCIES}/1"):
        response = api.get(path)
        assert response.status_code == 403, path
        assert role.value in response.json()["detail"]
    assert api.post(RUNS, files=[("ej", ("T1000001_20261116.txt", b"x"))]).status_code == 403
    assert api.post(f"{DISCREPANCIES}/1/resolve", json={"note": "not mine"}).status_code == 403
