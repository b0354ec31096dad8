"""Rotating the lock master key: the service reads records under the previous key while the
rotation runs, `atm-service rewrap-lock-keys` re-seals them, then the old key can go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from atm_service.app import create_app
from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.db import Database, create_engine
from atm_service.migrate import upgrade
from atm_service.models.locks import LockKeyRecord
from atm_service.services.lock_secrets import LockSecrets, rewrap_lock_keys
from lockctl import MasterKey
from tests.service.dispatch_world import World, build
from tests.service.lock_world import admin, lock_secrets, lock_settings, provision
from tests.support import PASSWORD, FakeClock


@pytest.fixture
def settings() -> Settings:
    return lock_settings()


def _key_file(tmp_path: Path, name: str, key: MasterKey) -> Path:
    path = tmp_path / name
    path.write_text(key.to_text() + "\n")
    return path


def _export(app: Any, atm_id: int) -> Any:
    client = TestClient(app)
    response = client.post("/api/v1/session", json={"username": "ada", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client.post(
        f"/api/v1/atms/{atm_id}/lock/provisioning-record",
        json={"reason": "reload the lock"},
        headers={"X-CSRF-Token": response.json()["csrf_token"]},
    )


def _command(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script, "rewrap-lock-keys"], capture_output=True, text=True, env=env, timeout=120
    )


def _master_ids(session: Session) -> set[str]:
    return {row.master_key_id for row in session.exec(select(LockKeyRecord))}


def test_rotation_reads_old_records_rewraps_them_then_needs_no_old_key(
    session: Session,
    context: AppContext,
    world: World,
    database: Database,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    old = MasterKey.parse(lock_secrets()[0])
    provision(session, context, world)
    admin(session, context)
    session.commit()
    assert _master_ids(session) == {old.key_id}
    before_app = create_app(context.settings, database=database, clock=clock)
    record_before = _export(before_app, world.atms["T1000001"])
    assert record_before.status_code == 200

    new = MasterKey.generate()
    switched = lock_settings(
        lock_master_key=None,
        lock_master_key_file=_key_file(tmp_path, "new.key", new),
        lock_previous_master_key_files=str(_key_file(tmp_path, "old.key", old)),
    )
    # During the rotation: the old record still opens.
    during = _export(create_app(switched, database=database, clock=clock), world.atms["T1000001"])
    assert during.status_code == 200, during.text
    assert during.json()["key"] == record_before.json()["key"]

    assert rewrap_lock_keys(session, secrets=LockSecrets(switched)) == 1
    assert _master_ids(session) == {new.key_id}
    assert rewrap_lock_keys(session, secrets=LockSecrets(switched)) == 0

    # After it: the new key alone is enough.
    done = switched.model_copy(update={"lock_previous_master_key_files": []})
    after = _export(create_app(done, database=database, clock=clock), world.atms["T1000001"])
    assert after.status_code == 200, after.text
    assert after.json()["key"] == record_before.json()["key"]


def test_a_missing_previous_key_is_a_503_that_says_what_to_do(
    session: Session,
    context: AppContext,
    world: World,
    database: Database,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    provision(session, context, world)
    admin(session, context)
    session.commit()
    forgot = lock_settings(
        lock_master_key=None,
        lock_master_key_file=_key_file(tmp_path, "new.key", MasterKey.generate()),
    )
    response = _export(create_app(forgot, database=database, clock=clock), world.atms["T1000001"])
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "ATM_LOCK_PREVIOUS_MASTER_KEY_FILES" in detail
    assert "rewrap-lock-keys" in detail


def test_settings_take_a_comma_separated_list_of_previous_keys() -> None:
    settings = lock_settings(lock_previous_master_key_files=" /a/one.key, /b/two.key ,")
    assert settings.lock_previous_master_key_files == [Path("/a/one.key"), Path("/b/two.key")]


def test_the_command_rewraps_a_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rotate.db'}"
    database = Database(create_engine(url))
    upgrade(database)
    old, new = MasterKey.generate(), MasterKey.generate()
    signing = lock_secrets()[1]
    settings = lock_settings(database_url=url, lock_master_key=old.to_text())
    app = create_app(settings, database=database)
    context: AppContext = app.state.context
    with database.session() as session:
        world = build(session, passwords=context.passwords, now=FakeClock()())
        provision(session, context, world)
        session.commit()
    env = {
        **os.environ,
        "ATM_DATABASE_URL": url,
        "ATM_LOCK_MASTER_KEY_FILE": str(_key_file(tmp_path, "new.key", new)),
        "ATM_LOCK_PREVIOUS_MASTER_KEY_FILES": str(_key_file(tmp_path, "old.key", old)),
        "ATM_LOCK_LOG_SIGNING_KEY": signing,
        "COLUMNS": "200",
    }
    env.pop("ATM_LOCK_MASTER_KEY", None)
    script = str(Path(sys.executable).parent / "atm-service")
    result = _command(script, env)
    assert result.returncode == 0, result.stderr
    assert "Re-sealed 1 lock key record(s)" in result.stdout
    assert new.key_id in result.stdout
    with database.session() as session:
        assert _master_ids(session) == {new.key_id}
    # Without the old key, a record still under it is named, not a traceback.
    env["ATM_LOCK_PREVIOUS_MASTER_KEY_FILES"] = ""
    env["ATM_LOCK_MASTER_KEY_FILE"] = str(_key_file(tmp_path, "third.key", MasterKey.generate()))
    refused = _command(script, env)
    assert refused.returncode == 1
    assert "ATM_LOCK_PREVIOUS_MASTER_KEY_FILES" in refused.stderr
    assert "Traceback" not in refused.stderr
    database.dispose()
