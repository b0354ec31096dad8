"""The embedded SQLite database under concurrent writes: requests wait, none fails.

SQLite refuses to upgrade a read transaction to a write while another
connection writes ("database is locked", at once, whatever the busy timeout);
transactions therefore begin IMMEDIATE and requests end their authentication
read before anything slow. This failed with plain BEGIN.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from atm_service.models.users import Role, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services import users
from tests.service.dispatch_world import build, fault
from tests.service.live_servers import instance, log_in, running, shared_database
from tests.support import PASSWORD, FakeClock

DEVICES = ("dispenser", "card_reader", "receipt_printer", "journal_printer")


def test_parallel_signals_on_one_sqlite_instance_all_succeed(
    tmp_path: Path, clock: FakeClock
) -> None:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    with shared_database("sqlite", tmp_path) as shared:
        with shared.database().session() as session:
            world = build(session, passwords=passwords, now=clock())
            users.create_user(
                session,
                data=UserCreate(
                    username="dana", full_name="Dana", role=Role.DISPATCHER, password=PASSWORD
                ),
                passwords=passwords,
                now=clock(),
            )
        atms = list(world.atms.values())
        with running(instance(shared, clock)) as url, log_in(url, "dana").client(url) as dana:

            def signal(n: int) -> int:
                event = (
                    fault(device=DEVICES[n % 4])
                    if n % 2
                    else {
                        "kind": "cash_unit_threshold",
                        "time": "2026-11-16T02:50:00",
                        "unit": 1 + n % 4,
                        "status": "low",
                    }
                )
                response = dana.post(f"/api/v1/atms/{atms[n % 4]}/device-events", json=event)
                return response.status_code

            with ThreadPoolExecutor(12) as pool:
                codes = list(pool.map(signal, range(96)))
        assert codes == [200] * 96
