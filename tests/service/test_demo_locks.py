"""The demo's locks: provisioned with the demo's own secrets, records for the simulator."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlmodel import Session, select

from atm_service.demo import lock_settings, seed, seed_locks
from atm_service.models.locks import Lock
from atm_service.security.passwords import Passwords
from atm_service.services.lock_secrets import LockSecrets
from lockctl import Outcome, Provisioning
from simulators.lock import SimulatedLock
from tests.support import FakeClock, make_settings


def test_every_demo_atm_gets_a_lock_and_a_record_for_the_simulator(
    session: Session, passwords: Passwords, clock: FakeClock, tmp_path: Path
) -> None:
    seed(session, passwords=passwords, now=clock())
    settings = lock_settings(make_settings(), tmp_path)
    master = tmp_path / "lock-master.key"
    assert stat.S_IMODE(master.stat().st_mode) == 0o600
    secrets = LockSecrets(settings)
    written = seed_locks(session, secrets=secrets, now=clock(), records_dir=tmp_path / "locks")
    found = session.exec(select(Lock)).all()
    assert len(found) == len(written) == 6
    assert [lock.lock_id for lock in found if lock.dual_control] == ["CX-1000005"]
    record = Provisioning.from_json((tmp_path / "locks" / "CX-1000001.json").read_bytes())
    lock = SimulatedLock(record, clock=clock)
    assert lock.lock_id == "CX-1000001"
    assert lock.enter_code(1, "00000000") is Outcome.WRONG_CODE
    # Seeding again keeps the keys and the records.
    assert seed_locks(session, secrets=secrets, now=clock(), records_dir=tmp_path / "locks") == []
    again = lock_settings(make_settings(), tmp_path)
    assert again.lock_master_key_file == master
    assert master.read_text().startswith("atm-lock-master-key:v1:")
