"""Probes, metrics and request logs: what an operator's tools read from the service."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from atm_service.app import create_app
from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.db import Database, create_engine
from atm_service.logs import configure_logging
from atm_service.migrate import head_revision, upgrade
from atm_service.models.reconciliation import ReconRun, RunOrigin, RunState
from atm_service.models.users import Role
from tests.ingest_support import Fleet, Signed, make_fleet
from tests.support import FakeClock, add_user, login, make_settings

TOKEN = "metrics-token-" + "m" * 24


@pytest.fixture
def settings() -> Settings:
    return make_settings(metrics_token=TOKEN)


@pytest.fixture
def fleet(context: AppContext) -> Fleet:
    return make_fleet(context, "T1000001", "T1000002")


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything the service logs, as the JSON lines it writes in production."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging(make_settings(log_level="DEBUG"), stream)
    yield stream
    for handler in list(root.handlers):
        if handler.get_name() == "atm-service":
            root.removeHandler(handler)
    root.setLevel(level)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def _scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _beat(sent_at: str) -> dict[str, Any]:
    return {
        "agent_version": "0.1.0",
        "stream": "0123456789abcdef0123456789abcdef",
        "started_at": "2026-11-16T07:00:00+00:00",
        "sent_at": sent_at,
        "link": "running",
        "backlog_bytes": 4096,
        "backlog_records": 2,
        "oldest_pending_at": "2026-11-16T07:58:30+00:00",
        "last_stored_at": "2026-11-16T07:59:59+00:00",
        "last_error": None,
    }


# --- probes -------------------------------------------------------------------------


def test_readiness_needs_the_database_at_the_schema_this_code_needs(
    client: TestClient, context: AppContext, tmp_path: Path
) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "database": "ok",
        "schema": head_revision(context.database),
    }

    behind = Database(create_engine(f"sqlite:///{tmp_path / 'old.db'}"))
    upgrade(behind, "0005")
    old = create_app(make_settings(), database=behind, check_migrations=False)
    with TestClient(old) as old_client:
        response = old_client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["schema"] == "0005"
        assert body["expected_schema"] == head_revision(behind)
        assert "needs" in body["reason"]
        assert old_client.get("/healthz").status_code == 200  # alive, just not ready
    behind.dispose()


def test_readiness_fails_when_the_database_does_not_answer() -> None:
    gone = Database(create_engine("postgresql://nobody@127.0.0.1:1/nothing"))
    app = create_app(make_settings(), database=gone, check_migrations=False)
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["database"] == "unreachable"
        assert "nobody" not in response.text
        assert client.get("/healthz").status_code == 200
    gone.dispose()


# --- metrics ------------------------------------------------------------------------


def test_metrics_need_the_token(app: FastAPI, client: TestClient, context: AppContext) -> None:
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    # A user session is not the token.
    login(client, add_user(context, Role.ADMIN))
    assert client.get("/metrics").status_code == 401


def test_metrics_are_off_without_a_token(database: Database, clock: FakeClock) -> None:
    app = create_app(make_settings(), database=database, clock=clock)
    with TestClient(app) as client:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 503
        assert "ATM_METRICS_TOKEN" in response.json()["detail"]


def test_request_metrics_by_route_template_and_status(
    client: TestClient, context: AppContext
) -> None:
    api = login(client, add_user(context, Role.ADMIN))
    for task_id in (11, 12, 13):
        assert api.get(f"/api/v1/tasks/{task_id}").status_code == 404
    api.get("/api/v1/atms")
    client.get("/no/such/page")
    samples = _scrape(client)
    task = (("method", "GET"), ("route", "/api/v1/tasks/{task_id}"), ("status", "404"))
    assert samples[("atm_service_http_requests_total", task)] == 3
    assert samples[("atm_service_http_request_duration_seconds_count", task)] == 3
    listed = (("method", "GET"), ("route", "/api/v1/atms"), ("status", "200"))
    assert samples[("atm_service_http_requests_total", listed)] == 1
    unmatched = (("method", "GET"), ("route", "(unmatched)"), ("status", "404"))
    assert samples[("atm_service_http_requests_total", unmatched)] == 1
    # Raw paths never become labels.
    assert not any("/api/v1/tasks/11" in str(labels) for _, labels in samples)


def test_ingest_lag_per_atm(
    client: TestClient, context: AppContext, fleet: Fleet, clock: FakeClock
) -> None:
    device = Signed(client, context, fleet.keys["T1000001"])
    response = device.request(
        "POST", "/api/v1/devices/T1000001/heartbeat", payload=_beat("2026-11-16T08:00:00+00:00")
    )
    assert response.status_code == 200, response.text
    clock.advance(seconds=40)
    journal = device.put_journal("T1000001", "20261116", 0, b"08:00:40 CARD INSERTED\n")
    assert journal.status_code == 200, journal.text
    clock.advance(seconds=20)
    samples = _scrape(client)
    atm = (("terminal_id", "T1000001"),)
    assert samples[("atm_service_atm_last_heartbeat_age_seconds", atm)] == 60
    assert samples[("atm_service_atm_last_journal_age_seconds", atm)] == 20
    assert samples[("atm_service_atm_last_seen_age_seconds", atm)] == 20
    assert samples[("atm_service_atm_backlog_age_seconds", atm)] == 90
    assert samples[("atm_service_atm_backlog_bytes", atm)] == 4096
    # An ATM that never reported has no series rather than a made-up age.
    assert ("atm_service_atm_last_seen_age_seconds", (("terminal_id", "T1000002"),)) not in samples
    assert samples[("atm_service_database_up", ())] == 1


def test_open_tasks_by_state_and_sla_risk(
    client: TestClient, context: AppContext, fleet: Fleet, clock: FakeClock
) -> None:
    dispatcher = login(client, add_user(context, Role.DISPATCHER))
    for terminal in ("T1000001", "T1000002"):
        created = dispatcher.post(
            "/api/v1/tasks",
            json={"atm_id": fleet.atm_ids[terminal], "kind": "flm", "title": "Card reader jam"},
        )
        assert created.status_code == 201, created.text
    samples = _scrape(client)
    assert samples[("atm_service_tasks_open", (("state", "new"),))] == 2
    assert samples[("atm_service_tasks_open", (("state", "on_site"),))] == 0
    assert samples[("atm_service_tasks_sla", (("risk", "ok"),))] == 2
    assert samples[("atm_service_tasks_sla", (("risk", "breached"),))] == 0
    clock.advance(days=3)
    samples = _scrape(client)
    assert samples[("atm_service_tasks_sla", (("risk", "breached"),))] == 2
    assert samples[("atm_service_tasks_sla", (("risk", "ok"),))] == 0


def test_reconciliation_runs_by_state(client: TestClient, context: AppContext) -> None:
    with context.database.session() as session:
        for state in (RunState.QUEUED, RunState.DONE, RunState.DONE, RunState.FAILED):
            session.add(
                ReconRun(
                    origin=RunOrigin.UPLOAD,
                    state=state,
                    description="test run",
                    created_at=context.clock(),
                    created_by_name="recon",
                )
            )
        session.commit()
    samples = _scrape(client)
    runs = {
        state.value: samples[("atm_service_recon_runs", (("state", state.value),))]
        for state in RunState
    }
    assert runs == {"queued": 1, "running": 0, "done": 2, "failed": 1}


def test_metrics_answer_when_the_database_does_not() -> None:
    gone = Database(create_engine("postgresql://nobody@127.0.0.1:1/nothing"))
    app = create_app(make_settings(metrics_token=TOKEN), database=gone, check_migrations=False)
    with TestClient(app) as client:
        samples = _scrape(client)
    assert samples[("atm_service_database_up", ())] == 0
    gone.dispose()


# --- request ids and logs -----------------------------------------------------------


def test_every_answer_carries_a_request_id(client: TestClient) -> None:
    made = client.get("/healthz").headers["x-request-id"]
    assert len(made) == 32
    assert client.get("/healthz").headers["x-request-id"] != made
    kept = client.get("/login", headers={"X-Request-ID": "proxy-abc-123456"})
    assert kept.headers["x-request-id"] == "proxy-abc-123456"
    junk = client.get("/healthz", headers={"X-Request-ID": "bad id\twith <stuff>"})
    assert junk.headers["x-request-id"] != "bad id\twith <stuff>"
    assert len(junk.headers["x-request-id"]) == 32


def test_every_answer_gives_the_services_time_in_server_timing(client: TestClient) -> None:
    for path in ("/healthz", "/login", "/api/v1/no-such-route"):
        header = client.get(path).headers["server-timing"]
        found = re.fullmatch(r"app;dur=(\d+\.\d)", header)
        assert found, header
        assert 0 <= float(found.group(1)) < 10_000


def test_one_json_line_per_request_with_ids(
    client: TestClient, context: AppContext, fleet: Fleet, log_lines: io.StringIO
) -> None:
    username = add_user(context, Role.ADMIN)
    api = login(client, username)
    response = api.get("/api/v1/atms", headers={"X-Request-ID": "trace-0001-abcdef"})
    assert response.status_code == 200
    device = Signed(client, context, fleet.keys["T1000001"])
    beat = device.request(
        "POST", "/api/v1/devices/T1000001/heartbeat", payload=_beat("2026-11-16T08:00:00+00:00")
    )
    assert beat.status_code == 200, beat.text
    records = _records(log_lines)
    requests = [r for r in records if r["msg"] == "request"]
    [listed] = [r for r in requests if r.get("request_id") == "trace-0001-abcdef"]
    assert listed["route"] == "/api/v1/atms"
    assert listed["status"] == 200
    assert listed["method"] == "GET"
    assert listed["level"] == "info"
    assert listed["logger"] == "atm_service.requests"
    assert isinstance(listed["duration_ms"], float)
    assert listed["user_id"] > 0
    assert listed["ts"].endswith("Z")
    [heartbeat] = [r for r in requests if r["route"].endswith("/heartbeat")]
    assert heartbeat["device"] == "T1000001"
    assert heartbeat["route"] == "/api/v1/devices/{terminal_id}/heartbeat"
    assert heartbeat["request_id"] == beat.headers["x-request-id"]
    assert "user_id" not in heartbeat


def test_an_unexpected_error_is_logged_once_with_its_request_id(
    app: FastAPI, log_lines: io.StringIO
) -> None:
    def boom() -> None:
        raise RuntimeError("password=hunter2 went wrong")

    app.add_api_route("/api/v1/boom", boom)
    # An id with a run of 14 digits, as a random one may have: not taken for a card number.
    reference = "30113528938640f39cbd7a20eeef8afb"
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/boom", headers={"X-Request-ID": reference})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == reference
    assert reference in response.json()["detail"]
    records = _records(log_lines)
    [error] = [r for r in records if r["msg"] == "unhandled error"]
    assert error["request_id"] == reference
    assert "RuntimeError" in error["exc"]
    assert "hunter2" not in log_lines.getvalue()
    [request] = [r for r in records if r["msg"] == "request"]
    assert request["status"] == 500
    assert request["level"] == "warning"
