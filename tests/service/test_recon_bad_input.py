"""Bad uploads and bad choices get a 4xx that names what is wrong; nothing is queued."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from atm_service.app import create_app
from atm_service.context import AppContext
from atm_service.db import Database
from atm_service.models.users import Role
from tests.ingest_support import Signed, make_fleet, sample_journal
from tests.service.recon_support import RUNS
from tests.support import Api, FakeClock, add_user, login, make_settings

EJ = "T1000001_20261116.txt"


@pytest.fixture
def recon(client: TestClient, context: AppContext) -> Api:
    return login(client, add_user(context, Role.RECONCILER, "rita"))


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


CASES: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("nothing", {"data": {"time_window_seconds": "120"}}, 422, "files", "No usable file"),
    (
        "a badly named file",
        {"files": [("ej", ("monday.txt", b"x"))]},
        422,
        "ej",
        "'monday.txt' is not named <TID>_<YYYYMMDD>.txt",
    ),
    ("an empty file", {"files": [("ej", (EJ, b""))]}, 422, "ej", "is empty"),
    (
        "the same file twice",
        {"files": [("paper", (EJ, b"a")), ("paper", (EJ, b"b"))]},
        422,
        "paper",
        "there twice",
    ),
    (
        "counters alone",
        {"files": [("counters", ("T1000001_20261116.json", b"{}"))]},
        422,
        "files",
        "Nothing to reconcile",
    ),
    (
        "a damaged archive",
        {"files": [("archive", ("run.zip", b"PK\x03\x04broken"))]},
        422,
        "archive",
        "damaged or not a zip or tar",
    ),
    (
        "an archive with nothing usable",
        {"files": [("archive", ("run.zip", _zip({"notes/readme.txt": b"hi"})))]},
        422,
        "files",
        "notes/readme.txt: not in an ej/, paper/, host/ or counters/ folder",
    ),
    (
        "a time window out of range",
        {"files": [("ej", (EJ, b"x"))], "data": {"time_window_seconds": "9999"}},
        422,
        "time_window_seconds",
        "less than or equal to 3600",
    ),
    (
        "terminals without days",
        {"data": {"terminals": "T1000001"}},
        422,
        "date_from",
        "Choose the first business day",
    ),
    (
        "a terminal id that is not one",
        {"data": {"date_from": "2026-11-16", "terminals": "T1, T1000002"}},
        422,
        "terminals",
        "'T1' is not a terminal id",
    ),
    (
        "days the wrong way round",
        {"data": {"date_from": "2026-11-17", "date_to": "2026-11-16"}},
        422,
        "date_to",
        "comes before",
    ),
    (
        "too many days",
        {"data": {"date_from": "2026-01-01", "date_to": "2026-12-31"}},
        422,
        "date_to",
        "one run covers 92 at most",
    ),
    (
        "an unknown terminal",
        {"data": {"date_from": "2026-11-16", "terminals": "T9999999"}},
        422,
        "terminals",
        "No ATM with terminal id T9999999",
    ),
    (
        "days nothing was ingested for",
        {"data": {"date_from": "2025-01-01"}},
        422,
        "date_from",
        "No journal is stored for any terminal from 2025-01-01 to 2025-01-01",
    ),
    (
        "an uploaded EJ for a stored day",
        {"data": {"date_from": "2026-11-16"}, "files": [("ej", (EJ, b"x"))]},
        422,
        "ej",
        "already holds this terminal's journal for 2026-11-16",
    ),
]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "field", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_runs_are_refused_with_the_reason(
    client: TestClient,
    context: AppContext,
    recon: Api,
    request_kwargs: dict[str, Any],
    status: int,
    field: str,
    words: str,
) -> None:
    fleet = make_fleet(context, "T1000001")
    Signed(client, context, fleet.keys["T1000001"]).put_journal(
        "T1000001", "20261116", 0, sample_journal()
    )
    kwargs = dict(request_kwargs)
    if "files" not in kwargs:
        # A form without files is still multipart (a part the route does not read).
        kwargs["files"] = [("comment", ("comment.txt", b""))]
    response = recon.post(RUNS, **kwargs)
    assert response.status_code == status, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert words in problem["detail"], problem
    assert (
        field in {error["field"] for error in problem.get("errors", [])}
        or field in (problem["detail"])
    ), problem
    assert "Traceback" not in response.text
    assert recon.get(RUNS).json()["total"] == 0


@pytest.fixture
def small(database: Database, clock: FakeClock) -> Iterator[tuple[TestClient, Api]]:
    app = create_app(make_settings(recon_upload_max_bytes=4096), database=database, clock=clock)
    with TestClient(app) as client:
        api = login(client, add_user(app.state.context, Role.RECONCILER, "rita"))
        yield client, api


def test_an_upload_over_the_cap_is_refused_before_it_is_read(small: tuple[TestClient, Api]) -> None:
    client, api = small
    response = api.post(RUNS, files=[("ej", (EJ, b"x" * 400_000))])
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "exceeds 4096 bytes" in response.json()["detail"]
    # Streamed without a length, it is cut off once it passes the cap.
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="ej"; filename="{EJ}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(100):
            yield b"y" * 8192

    response = client.post(
        RUNS,
        content=body(),
        headers={
            "X-CSRF-Token": api.csrf_token,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert response.status_code == 413
    assert "exceeds 4096 bytes" in response.json()["detail"]
    # Just under the cap in the form but over it once counted: the service's own limit.
    response = api.post(RUNS, files=[("ej", (EJ, b"x" * 5000))])
    assert response.status_code == 413
    assert "one run may read 4096 at most" in response.json()["detail"]
    # The web form gets a page, not JSON.
    page = client.post(
        "/reconciliation/runs",
        data={"csrf_token": api.csrf_token, "source": "files"},
        files=[("ej", (EJ, b"x" * 400_000))],
    )
    assert page.status_code == 413
    assert page.headers["content-type"].startswith("text/html")
    assert "exceeds 4096 bytes" in page.text
    assert api.get(RUNS).json()["total"] == 0


def test_the_web_form_shows_the_reason_and_keeps_what_was_typed(
    client: TestClient, recon: Api
) -> None:
    page = client.post(
        "/reconciliation/runs",
        data={
            "csrf_token": recon.csrf_token,
            "source": "ingested",
            "date_from": "2026-11-16",
            "terminal_ids": "T1000009",
        },
        files=[("comment", ("comment.txt", b""))],
    )
    assert page.status_code == 422
    assert "No ATM with terminal id T1000009" in page.text
    assert 'value="T1000009"' in page.text
    assert 'value="2026-11-16"' in page.text
