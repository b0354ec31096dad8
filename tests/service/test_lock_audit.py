"""The auditor's side: the log filtered and paged, the stored log verified (and tampering
found), a signed export that verifies offline, and a lock's trail compared with the log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.models.locks import LockLogEntry
from atm_service.models.users import Role
from atm_service.services import locks
from lockctl import (
    ExportInvalid,
    LockChain,
    LockControl,
    LockPolicy,
    Operation,
    Outcome,
    Provisioning,
    PublicKeys,
    verify_export,
)
from lockctl.signing import parse_public_key_text
from simulators.lock import SimulatedLock
from tests.service.dispatch_world import World
from tests.service.lock_world import admin, lock_settings, on_site, provision, simulated
from tests.support import Api, FakeClock, add_user, login

ATM_LOCK = str(Path(sys.executable).with_name("atm-lock"))


@pytest.fixture
def settings() -> Settings:
    return lock_settings(lock_checkpoint_every=4)


def as_user(app: FastAPI, name: str) -> Api:
    return login(TestClient(app), name)


def one_cycle(app: FastAPI, lock: SimulatedLock, task_id: int, atm_id: int, user: int) -> None:
    eli = as_user(app, "eli")
    code = eli.post(f"/api/v1/atms/{atm_id}/lock/codes", json={"task_id": task_id}).json()["code"]
    assert lock.enter_code(user, code) is Outcome.OPENED
    done = eli.post(
        f"/api/v1/atms/{atm_id}/lock/seal", json={"task_id": task_id, "seal": lock.relock()}
    )
    assert done.status_code == 200, done.text


@pytest.fixture
def worked(
    app: FastAPI, session: Session, world: World, context: AppContext, clock: FakeClock
) -> SimulatedLock:
    """Two locks; two code cycles at T1000001 by Eli; an auditor, Avery."""
    provision(session, context, world)
    provision(session, context, world, "T1000002")
    lock = simulated(session, context, world, clock)
    task = on_site(session, world, clock)
    assert task.id is not None
    for _ in range(2):
        one_cycle(app, lock, task.id, task.atm_id, world.users["eli"])
        clock.advance(minutes=3)
    add_user(context, Role.AUDITOR, "avery")
    return lock


def test_the_log_is_filtered_by_atm_user_event_and_date(
    app: FastAPI, world: World, worked: SimulatedLock, clock: FakeClock
) -> None:
    avery = as_user(app, "avery")

    def kinds(**params: object) -> list[str]:
        page = avery.get("/api/v1/lock-log", params=params).json()
        return [item["kind"] for item in page["items"]]

    everything = avery.get("/api/v1/lock-log").json()
    assert everything["total"] == 7  # 2 locks provisioned, 1 record exported, 2 issued, 2 sealed
    assert kinds(atm_id=world.atms["T1000002"]) == ["lock-provisioned"]
    assert kinds(atm_id=world.atms["T1000001"], kind="code-issued") == ["code-issued"] * 2
    assert set(kinds(user="eli")) == {"code-issued", "seal-reported"}
    assert kinds(user="nobody") == []
    assert kinds(since="2026-11-17T00:00:00Z") == []
    assert len(kinds(since="2026-11-16T00:00:00Z", until="2026-11-17T00:00:00Z")) == 7
    page = avery.get("/api/v1/lock-log", params={"limit": 2, "offset": 1}).json()
    assert [item["index"] for item in page["items"]] == [5, 4]
    item = page["items"][0]
    assert item["line"].startswith('{"prev":"')
    assert "prev" not in item["fields"]
    html = avery.get(
        "/audit/locks", params={"atm_id": world.atms["T1000001"], "kind": "seal-reported"}
    ).text
    assert html.count('class="card entry"') == 2
    assert "2 matching" in html
    assert avery.get("/audit/locks", params={"start": "16-11-2026"}).status_code == 422


def test_the_stored_log_verifies_and_a_changed_entry_is_found(
    app: FastAPI, session: Session, worked: SimulatedLock
) -> None:
    avery = as_user(app, "avery")
    result = avery.get("/api/v1/lock-log/verification").json()
    assert result["valid"] is True
    assert result["verified"] == result["entries"] == 7
    assert result["checkpoints"] == 1
    assert result["covered"] == 4
    assert "3 newer entries await the next checkpoint" in result["summary"]
    page = avery.get("/audit/locks/verification")
    assert "valid" in page.text
    assert result["public_key"] in page.text
    # Someone with database access rewrites entry 3 (keeping its stored hash).
    line = session.exec(sa.select(LockLogEntry.line).where(LockLogEntry.position == 3)).one()[0]
    forged = line.replace('"by":"eli"', '"by":"bob"')
    assert forged != line
    session.execute(sa.update(LockLogEntry).where(LockLogEntry.position == 3).values(line=forged))
    session.commit()
    broken = avery.get("/api/v1/lock-log/verification").json()
    assert broken["valid"] is False
    assert broken["first_bad_index"] == 3
    assert "does not match the hash stored" in broken["reason"]


def test_the_export_verifies_offline_and_tampering_is_caught(
    app: FastAPI, session: Session, world: World, worked: SimulatedLock, tmp_path: Path
) -> None:
    avery = as_user(app, "avery")
    key_text = avery.get("/api/v1/lock-log/public-key").text.strip()
    response = avery.post("/api/v1/lock-log/export", json={})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    data = response.content
    keys = PublicKeys([parse_public_key_text(key_text)])
    summary = verify_export(data.splitlines(keepends=True), keys)
    assert summary.pinned
    assert summary.entries == 8
    assert summary.kinds["export"] == 1
    last = json.loads(data.splitlines()[-2])
    assert last["kind"] == "export"
    assert last["by"] == "avery"
    assert last["start"] == 0
    # Offline, with the command an auditor runs.
    export = tmp_path / "locks.jsonl"
    export.write_bytes(data)
    public = tmp_path / "lock-log.pub"
    public.write_text(key_text + "\n")
    ok = subprocess.run(
        [ATM_LOCK, "verify-export", str(export), "--public-key", str(public)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "8 entries" in ok.stdout
    assert "pinned" in ok.stdout
    lines = data.splitlines(keepends=True)
    tampered = list(lines)
    tampered[6] = tampered[6].replace(b'"matched":true', b'"matched":false')  # entry 4
    assert tampered[6] != lines[6]
    with pytest.raises(ExportInvalid) as caught:
        verify_export(tampered, keys)
    assert caught.value.index == 4
    export.write_bytes(b"".join(tampered))
    bad = subprocess.run(
        [ATM_LOCK, "verify-export", str(export), "--public-key", str(public)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "entry 4" in bad.stderr + bad.stdout
    # The page's export button does the same.
    form = avery.client.post(
        "/audit/locks/export", data={"csrf_token": avery.csrf_token, "start": "3"}
    )
    assert form.status_code == 200
    partial = verify_export(form.content.splitlines(keepends=True), keys)
    assert partial.start == 3


def test_a_trail_opening_without_an_issued_code_raises_an_alarm(
    app: FastAPI,
    session: Session,
    world: World,
    context: AppContext,
    clock: FakeClock,
    worked: SimulatedLock,
) -> None:
    lock = worked
    # Someone who obtained the lock key computes a code outside the service and opens.
    _, record = locks.provisioning_record(
        session,
        secrets=context.locks,
        atm_id=world.atms["T1000001"],
        by=admin(session, context),
        reason="investigation",
        now=clock(),
    )
    provisioning = Provisioning.from_json(record)
    chain = LockChain.from_dict(_chain(session))
    rogue = LockControl(LockPolicy()).issue(
        chain, provisioning.key, user=777, operation=Operation.OPEN, now=clock()
    )
    clock.advance(minutes=5)
    assert lock.enter_code(777, rogue.codes[0].code) is Outcome.OPENED
    lock.relock()
    for _ in range(5):
        lock.enter_code(777, "00000000")  # a lockout at the lock
    add_user(context, Role.DISPATCHER, "dana")
    dana = as_user(app, "dana")
    url = f"/api/v1/atms/{world.atms['T1000001']}/lock/trail"
    imported = dana.post(
        url, content=lock.trail_jsonl().encode(), headers={"Content-Type": "application/x-ndjson"}
    )
    assert imported.status_code == 200, imported.text
    result = imported.json()
    kinds = {d["kind"] for d in result["discrepancies"]}
    assert "opened-without-issue" in kinds
    assert "seal-not-reported" in kinds  # the rogue opening's seal
    raised = {a["kind"] for a in result["alarms"]}
    assert raised == {"opened_without_code", "lockout"}
    assert result["imported"] == result["records"]
    # Importing the same trail again adds nothing and raises nothing.
    again = dana.post(url, content=lock.trail_jsonl().encode()).json()
    assert again["imported"] == 0
    assert again["alarms"] == []
    wrong = dana.post(
        f"/api/v1/atms/{world.atms['T1000002']}/lock/trail", content=lock.trail_jsonl().encode()
    )
    assert wrong.status_code == 422
    assert "CX-1000001" in wrong.json()["detail"]
    garbage = dana.post(url, content=b"not a trail")
    assert garbage.status_code == 422
    assert "line 1" in garbage.json()["detail"]
    avery = as_user(app, "avery")
    failures = avery.get("/api/v1/lock-log", params={"kind": "failure"}).json()["items"]
    assert failures
    assert all(f["fields"]["source"] == "lock" for f in failures)


def _chain(session: Session) -> dict[str, object]:
    row = session.exec(sa.text("SELECT chain FROM lock WHERE lock_id = 'CX-1000001'")).one()
    value = row[0]
    return value if isinstance(value, dict) else json.loads(value)
