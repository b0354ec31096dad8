"""Runs through the API: from uploaded files, an archive or days already ingested, they find
exactly the reference sample's truth; progress, take-over and failures are stated plainly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atm_service.context import AppContext
from atm_service.models.reconciliation import RunState
from atm_service.models.users import Role
from atm_service.services import recon_execute, recon_runs
from atm_service.services.recon_runs import MAX_ATTEMPTS, RunLost
from simulators.truth import match_key
from tests.ingest_support import Signed, make_fleet
from tests.samples import sample_dir
from tests.service.recon_support import (
    DISCREPANCIES,
    RUNS,
    files,
    run_queued,
    tarball,
    truth,
)
from tests.support import SITE, Api, FakeClock, add_user, login

TERMINALS = tuple(f"T100000{n}" for n in range(1, 7))
DAYS = ("20261116", "20261117")


@pytest.fixture
def sample() -> Path:
    return sample_dir()


@pytest.fixture
def recon(client: TestClient, context: AppContext) -> Api:
    return login(client, add_user(context, Role.RECONCILER, "rita"))


def _found(api: Api, run_id: int) -> list[dict[str, Any]]:
    response = api.get(DISCREPANCIES, params={"run_id": run_id, "limit": 500})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return list(body["items"])


def _keys(items: list[dict[str, Any]], api: Api) -> list[tuple[object, ...]]:
    """Finding keys; cassette findings need their detail, which the list leaves out."""
    keys = []
    for item in items:
        if item["kind"].startswith("cassette_"):
            item = api.get(f"{DISCREPANCIES}/{item['id']}").json()
        keys.append(match_key(item))
    return keys


def _done(api: Api, context: AppContext, run_id: int) -> dict[str, Any]:
    assert run_queued(context) == run_id
    run = api.get(f"{RUNS}/{run_id}").json()
    assert run["state"] == "done", run["error"]
    return dict(run)


def test_a_run_over_the_sample_finds_exactly_the_truth(
    recon: Api, context: AppContext, sample: Path
) -> None:
    response = recon.post(RUNS, files=files(sample))
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["state"] == "queued"
    assert response.headers["location"] == f"{RUNS}/{started['id']}"
    assert started["description"] == (
        "Uploaded 12 EJ, 12 paper, 4 host, 12 counters file(s), 2026-11-16 to 2026-11-17"
    )

    run = _done(recon, context, started["id"])
    expected = [match_key(entry) for entry in truth(sample)]
    found = _keys(_found(recon, run["id"]), recon)
    assert len(found) == len(set(found)) == 111
    assert sorted(found, key=repr) == sorted(expected, key=repr)
    assert run["discrepancy_count"] == run["open_count"] == 111
    assert run["progress"]["percent"] == 100
    assert sum(run["summary"]["by_kind"].values()) == 111
    assert run["summary"]["units_skipped"] == 0
    assert run["files"] == ["report.html", "report.xlsx", "settlement.csv", "summary.json"]
    assert {source["origin"] for source in run["sources"]} == {"upload"}
    assert len(run["sources"]) == 40
    # Every finding keeps its evidence, named by the uploaded file (no server path).
    detail = recon.get(f"{DISCREPANCIES}/{_found(recon, run['id'])[0]['id']}").json()
    assert detail["evidence"]["ej_location"].startswith("ej/T1000001_2026111")
    assert detail["history"] == []


def test_an_archive_of_the_folders_gives_the_same_and_lists_what_it_passed_over(
    recon: Api, context: AppContext, sample: Path
) -> None:
    data = tarball(sample, extra={"sample/host/README": b"from the switch"})
    response = recon.post(RUNS, files=[("archive", ("sample.tar.gz", data))])
    assert response.status_code == 202, response.text
    run = _done(recon, context, response.json()["id"])
    assert sorted(_keys(_found(recon, run["id"]), recon), key=repr) == sorted(
        (match_key(entry) for entry in truth(sample)), key=repr
    )
    ignored = {entry["file"]: entry["reason"] for entry in run["summary"]["ignored_files"]}
    assert ignored == {
        "sample/truth.jsonl": "not in an ej/, paper/, host/ or counters/ folder",
        "sample/host/README": "not named <YYYYMMDD>.iso or <YYYYMMDD>.csv",
    }


@dataclass
class Ingested:
    atm_ids: dict[str, int]
    agents: dict[str, Signed]


def _ingest_journals(client: TestClient, context: AppContext, sample: Path) -> Ingested:
    """The sample's EJs as the agents upload them: signed, in two pieces each."""
    fleet = make_fleet(context, *TERMINALS)
    agents = {terminal: Signed(client, context, fleet.keys[terminal]) for terminal in TERMINALS}
    for terminal, agent in agents.items():
        for day in DAYS:
            data = (sample / "ej" / f"{terminal}_{day}.txt").read_bytes()
            half = len(data) // 2
            for offset, piece in ((0, data[:half]), (half, data[half:])):
                response = agent.put_journal(terminal, day, offset, piece)
                assert response.status_code == 200, response.text
    return Ingested(fleet.atm_ids, agents)


def test_a_run_from_ingested_days_gives_the_same_as_the_files(
    client: TestClient, recon: Api, context: AppContext, sample: Path
) -> None:
    _ingest_journals(client, context, sample)
    days = recon.get(
        "/api/v1/reconciliation/ingested-days", params={"date_from": "2026-11-16"}
    ).json()
    assert days["total"] == 12
    assert {(d["terminal_id"], d["business_date"]) for d in days["items"]} == {
        (t, f"{d[:4]}-{d[4:6]}-{d[6:]}") for t in TERMINALS for d in DAYS
    }

    response = recon.post(
        RUNS,
        data={"date_from": "2026-11-16", "date_to": "2026-11-17"},
        files=files(sample, ("paper", "host", "counters")),
    )
    assert response.status_code == 202, response.text
    assert response.json()["origin"] == "ingested"
    run = _done(recon, context, response.json()["id"])
    assert sorted(_keys(_found(recon, run["id"]), recon), key=repr) == sorted(
        (match_key(entry) for entry in truth(sample)), key=repr
    )
    stored = [s for s in run["sources"] if s["origin"] == "journal"]
    assert sorted(s["name"] for s in stored) == sorted(
        f"journal:{t}_{d}" for t in TERMINALS for d in DAYS
    )
    for source in stored:
        terminal, day = source["name"].removeprefix("journal:").split("_")
        assert source["size"] == (sample / "ej" / f"{terminal}_{day}.txt").stat().st_size
    assert run["selection"]["terminals"] == []
    assert len(run["selection"]["days"]) == 12


def _report_counters(ingested: Ingested, sample: Path) -> None:
    """The sample's counters snapshots, reported by each ATM's agent when they were taken."""
    zone = ZoneInfo(str(SITE["timezone"]))
    for terminal, agent in ingested.agents.items():
        records = []
        for day in DAYS:
            document = json.loads((sample / "counters" / f"{terminal}_{day}.json").read_text())
            for snapshot in document["snapshots"]:
                local = datetime.fromisoformat(snapshot["timestamp"]).replace(tzinfo=zone)
                records.append(
                    {
                        "seq": len(records) + 1,
                        "kind": "cash_units",
                        "stored_at": local.astimezone(UTC).isoformat(),
                        "data": {"reason": "changed", "cash_units": snapshot["cash_units"]},
                    }
                )
        response = agent.post_records(terminal, "0" * 32, records)
        assert response.status_code == 200, response.text


def test_counters_the_devices_reported_settle_the_cassettes(
    client: TestClient, context: AppContext, clock: FakeClock, sample: Path
) -> None:
    clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # both days are over
    recon = login(client, add_user(context, Role.RECONCILER, "rita"))
    _report_counters(_ingest_journals(client, context, sample), sample)

    response = recon.post(
        RUNS,
        data={"date_from": "2026-11-16", "date_to": "2026-11-17"},
        files=files(sample, ("paper", "host")),
    )
    assert response.status_code == 202, response.text
    run = _done(recon, context, response.json()["id"])
    built = [s for s in run["sources"] if s["origin"] == "device_counters"]
    assert len(built) == 12
    assert sorted(_keys(_found(recon, run["id"]), recon), key=repr) == sorted(
        (match_key(entry) for entry in truth(sample)), key=repr
    )


def test_progress_heartbeat_and_take_over(
    recon: Api, context: AppContext, clock: FakeClock, sample: Path
) -> None:
    response = recon.post(RUNS, files=files(sample, ("ej", "host")))
    run_id = response.json()["id"]
    queued = recon.get(f"{RUNS}/{run_id}").json()
    assert (queued["state"], queued["progress"]["percent"], queued["started_at"]) == (
        "queued",
        0,
        None,
    )
    stale = timedelta(seconds=context.settings.recon_stale_after_s)
    with context.database.session() as session:
        assert recon_runs.claim_next(session, now=clock(), worker="a", stale_after=stale) == run_id
        assert recon_runs.claim_next(session, now=clock(), worker="b", stale_after=stale) is None
        recon_runs.record_progress(
            session, run_id=run_id, worker="a", now=clock(), phase="host", done=30, total=120
        )
    running = recon.get(f"{RUNS}/{run_id}").json()
    assert running["state"] == "running"
    assert running["progress"] == {"phase": "host", "done": 30, "total": 120, "percent": 25}

    # Instance a goes silent; b takes the run over, and a finds out at its next report.
    clock.advance(seconds=context.settings.recon_stale_after_s + 1)
    with context.database.session() as session:
        assert recon_runs.claim_next(session, now=clock(), worker="b", stale_after=stale) == run_id
        with pytest.raises(RunLost):
            recon_runs.record_progress(session, run_id=run_id, worker="a", now=clock())
    assert recon_execute.execute_run(context.database, run_id, worker="a", clock=clock) is None
    assert recon.get(f"{RUNS}/{run_id}").json()["state"] == "running"
    assert recon_execute.execute_run(context.database, run_id, worker="b", clock=clock) == (
        RunState.DONE
    )
    done = recon.get(f"{RUNS}/{run_id}").json()
    assert done["state"] == "done"
    assert done["progress"]["percent"] == 100


def test_a_run_interrupted_again_and_again_fails_with_a_reason(
    recon: Api, context: AppContext, clock: FakeClock, sample: Path
) -> None:
    run_id = recon.post(RUNS, files=files(sample, ("host",))).json()["id"]
    stale = timedelta(seconds=60)
    with context.database.session() as session:
        for attempt in range(MAX_ATTEMPTS):
            claimed = recon_runs.claim_next(
                session, now=clock(), worker=f"w{attempt}", stale_after=stale
            )
            assert claimed == run_id
            clock.advance(seconds=61)
        assert recon_runs.claim_next(session, now=clock(), worker="last", stale_after=stale) is None
    run = recon.get(f"{RUNS}/{run_id}").json()
    assert run["state"] == "failed"
    assert f"interrupted {MAX_ATTEMPTS} times" in run["error"]


def test_a_failed_run_says_why_and_never_shows_a_traceback(
    client: TestClient,
    recon: Api,
    context: AppContext,
    sample: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    atm_ids = _ingest_journals(client, context, sample).atm_ids
    run_id = recon.post(
        RUNS,
        data={"date_from": "2026-11-16", "terminals": "T1000002"},
        files=files(sample, ("host",)),
    ).json()["id"]
    with context.database.connect() as connection:  # the journal goes away before the run
        connection.execute(
            sa.text("DELETE FROM journal_file WHERE atm_id = :atm AND name = '20261116'"),
            {"atm": atm_ids["T1000002"]},
        )
    run_queued(context)
    run = recon.get(f"{RUNS}/{run_id}").json()
    assert run["state"] == "failed"
    assert run["error"] == "The journal of T1000002 for 2026-11-16 is no longer stored."

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals at /srv/recon/engine.py line 12")

    monkeypatch.setattr(recon_execute, "run_reconciliation", broken)
    run_id = recon.post(RUNS, files=files(sample, ("host",))).json()["id"]
    run_queued(context)
    run = recon.get(f"{RUNS}/{run_id}").json()
    assert run["state"] == "failed"
    assert run["error"].startswith("The run stopped on an internal error; quote reference ")
    assert "secret" not in run["error"]
    assert "Traceback" not in run["error"]
    reference = run["error"].rsplit(" ", 1)[-1].rstrip(".")
    assert any(getattr(r, "reference", None) == reference for r in caplog.records)
    page = client.get(f"/reconciliation/runs/{run_id}")
    assert "quote reference" in page.text
    assert "secret" not in page.text
