"""Demo data: a small fleet matching the reference sample's terminals, one user per role,
engineer profiles, a few faults reported through the dispatch rules, and a safe lock per
ATM under central control.

The demo's lock secrets (the master key and the log's signing key) are made once in
the demo's data folder (mode 0600) and never printed; each lock's provisioning
record is written there too (``locks/<lock id>.json``), so a simulated lock can be
started from it: ``atm-sim lock --provisioning var/demo/locks/CX-1000001.json``.

Seeding is idempotent: existing sites, contracts, ATMs, profiles and tasks are
kept, and the demo users get fresh random passwords each time, which the
caller prints.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from sqlmodel import Session, col, select

from atm_service.config import Settings
from atm_service.errors import InvalidInput
from atm_service.models.cash_planning import CashDemandDay, DemandDayIn, DemandImport
from atm_service.models.condition import AtmCondition
from atm_service.models.engineers import EngineerCreate
from atm_service.models.fleet import (
    Atm,
    AtmCreate,
    Cassette,
    CassetteIn,
    EjDialect,
    ServiceContract,
    ServiceContractCreate,
    Site,
    SiteCreate,
)
from atm_service.models.locks import LockCreate
from atm_service.models.tasks import Task
from atm_service.models.users import Role, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services import cash_demand, dispatch_rules, engineers, fleet, locks, users
from atm_service.services.lock_secrets import LockSecrets
from lockctl import CheckpointSigner, MasterKey


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: Role
    password: str


_CONTRACTS = (
    ServiceContractCreate(
        code="GOLD-24X7",
        customer="First Demo Bank",
        name="Gold, around the clock",
        response_minutes=120,
        restore_minutes=240,
        service_days="1234567",
        service_start="00:00",
        service_end="24:00",
        availability_target_pct=99.0,
    ),
    ServiceContractCreate(
        code="STD-BUSINESS",
        customer="Second Demo Bank",
        name="Standard, business hours",
        response_minutes=240,
        restore_minutes=480,
        service_days="123456",
        service_start="07:00",
        service_end="22:00",
        availability_target_pct=97.5,
    ),
)

_SITES = (
    SiteCreate(
        code="NORTH-STATION",
        name="North Station concourse",
        address_line="1 Station Square",
        city="Springfield",
        postal_code="10001",
        country="US",
        region="North",
        latitude=40.7506,
        longitude=-73.9935,
        timezone="America/New_York",
        access_notes="Through the staff door left of the ticket office; ask for security.",
    ),
    SiteCreate(
        code="MARKET-ST",
        name="Market Street branch",
        address_line="220 Market Street",
        city="Springfield",
        postal_code="10007",
        country="US",
        region="North",
        latitude=40.7128,
        longitude=-74.0060,
        timezone="America/New_York",
    ),
    SiteCreate(
        code="SOUTH-MALL",
        name="South Mall, ground floor",
        address_line="85 Harbor Road",
        city="Shelbyville",
        postal_code="10550",
        country="US",
        region="South",
        latitude=40.6500,
        longitude=-73.9496,
        timezone="America/New_York",
        access_notes="Mall opens 07:00; loading bay B out of hours.",
    ),
)


@dataclass(frozen=True)
class DemoAtm:
    """One demo ATM: where it stands, what it is, and its four cassettes (note, notes loaded)."""

    terminal_id: str
    site: str
    contract: str
    vendor: str
    model: str
    dialect: EjDialect
    cassettes: tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]

    @property
    def lock_id(self) -> str:
        return f"CX-{self.terminal_id[1:]}"


_ATMS = (
    DemoAtm(
        "T1000001",
        "NORTH-STATION",
        "GOLD-24X7",
        "NCR",
        "SelfServ 84",
        EjDialect.NDC,
        ((20, 2000), (50, 1500), (100, 1500), (100, 2000)),
    ),
    DemoAtm(
        "T1000002",
        "NORTH-STATION",
        "GOLD-24X7",
        "NCR",
        "SelfServ 84",
        EjDialect.NDC,
        ((20, 2500), (20, 2500), (50, 2000), (100, 2000)),
    ),
    DemoAtm(
        "T1000003",
        "MARKET-ST",
        "STD-BUSINESS",
        "Diebold Nixdorf",
        "CINEO C4060",
        EjDialect.PROCASH,
        ((20, 2000), (20, 2000), (50, 2500), (100, 1500)),
    ),
    DemoAtm(
        "T1000004",
        "MARKET-ST",
        "STD-BUSINESS",
        "Diebold Nixdorf",
        "CINEO C4060",
        EjDialect.PROCASH,
        ((20, 1500), (50, 2500), (100, 1500), (100, 2500)),
    ),
    DemoAtm(
        "T1000005",
        "SOUTH-MALL",
        "GOLD-24X7",
        "Diebold Nixdorf",
        "DN Series 200",
        EjDialect.PROCASH,
        ((20, 1500), (20, 2500), (50, 2000), (100, 2500)),
    ),
    DemoAtm(
        "T1000006",
        "SOUTH-MALL",
        "GOLD-24X7",
        "NCR",
        "SelfServ 87",
        EjDialect.NDC,
        ((20, 2000), (20, 2000), (50, 1500), (100, 2000)),
    ),
)
MAX_ATMS = 60


def demo_atms(count: int = len(_ATMS)) -> tuple[DemoAtm, ...]:
    """The first ``count`` demo ATMs: the six above, then more of the same kinds at the
    three sites (T1000007 and up)."""
    if not 1 <= count <= MAX_ATMS:
        raise InvalidInput(f"The demo has 1 to {MAX_ATMS} ATMs, not {count}.", field="atms")
    atms = list(_ATMS[:count])
    for number in range(len(_ATMS) + 1, count + 1):
        like = _ATMS[(number - 1) % len(_ATMS)]
        atms.append(replace(like, terminal_id=f"T{1_000_000 + number}"))
    return tuple(atms)


def site_timezone(code: str) -> str:
    """The time zone of the demo site ``code``."""
    return next(site.timezone for site in _SITES if site.code == code)


def site_name(code: str) -> str:
    return next(site.name for site in _SITES if site.code == code)


_USERS = (
    ("admin", "Ada Admin", Role.ADMIN),
    ("dispatch", "Dana Dispatcher", Role.DISPATCHER),
    ("engineer", "Eli Engineer", Role.ENGINEER),
    ("engineer2", "Erin Engineer", Role.ENGINEER),
    ("recon", "Remy Reconciler", Role.RECONCILER),
    ("auditor", "Avery Auditor", Role.AUDITOR),
)


def seed_fleet(session: Session, *, now: datetime, atms: tuple[DemoAtm, ...] = _ATMS) -> None:
    contracts = {}
    for contract_data in _CONTRACTS:
        contract = session.exec(
            select(ServiceContract).where(col(ServiceContract.code) == contract_data.code)
        ).first()
        contracts[contract_data.code] = contract or fleet.create_contract(
            session, data=contract_data, now=now
        )
    sites = {}
    for site_data in _SITES:
        site = session.exec(select(Site).where(col(Site.code) == site_data.code)).first()
        sites[site_data.code] = site or fleet.create_site(session, data=site_data, now=now)
    for demo in atms:
        if session.exec(select(Atm).where(col(Atm.terminal_id) == demo.terminal_id)).first():
            continue
        site_id, contract_id = sites[demo.site].id, contracts[demo.contract].id
        assert site_id is not None
        assert contract_id is not None
        fleet.create_atm(
            session,
            data=AtmCreate(
                terminal_id=demo.terminal_id,
                site_id=site_id,
                contract_id=contract_id,
                vendor=demo.vendor,
                model=demo.model,
                serial_number=f"SN-{demo.terminal_id[1:]}",
                ej_dialect=demo.dialect,
                currency="USD",
                cassettes=[
                    CassetteIn(
                        number=number,
                        denomination=denomination,
                        currency="USD",
                        capacity=3000,
                        minimum=load // 10,
                    )
                    for number, (denomination, load) in enumerate(demo.cassettes, start=1)
                ],
            ),
            now=now,
        )


def seed_users(session: Session, *, passwords: Passwords, now: datetime) -> list[DemoLogin]:
    logins = []
    for username, full_name, role in _USERS:
        password = secrets.token_urlsafe(9)
        if users.find_user(session, username=username) is None:
            users.create_user(
                session,
                data=UserCreate(
                    username=username,
                    full_name=full_name,
                    email=f"{username}@demo.invalid",
                    role=role,
                    password=password + "-demo",
                ),
                passwords=passwords,
                now=now,
            )
        else:
            users.set_password(
                session,
                username=username,
                password=password + "-demo",
                passwords=passwords,
                now=now,
            )
        logins.append(DemoLogin(username=username, role=role, password=password + "-demo"))
    return logins


# user name → profile: Eli covers the North around the clock (first line and cash);
# Erin covers the South on a long day that runs past midnight, and does second line.
_ENGINEERS = {
    "engineer": {
        "skills": "flm,cash",
        "home_region": "North",
        "shift_days": "1234567",
        "shift_start": "00:00",
        "shift_end": "24:00",
        "timezone": "America/New_York",
        "latitude": 40.7411,
        "longitude": -73.9897,
        "phone": "+1 555 0101",
    },
    "engineer2": {
        "skills": "flm,slm,cash",
        "home_region": "South",
        "shift_days": "1234567",
        "shift_start": "06:00",
        "shift_end": "02:00",
        "timezone": "America/New_York",
        "latitude": 40.6602,
        "longitude": -73.9690,
        "phone": "+1 555 0102",
    },
}


def seed_engineers(session: Session, *, now: datetime) -> None:
    for username, profile in _ENGINEERS.items():
        user = users.find_user(session, username=username)
        if user is None or user.id is None:
            continue
        if engineers.engineer_of(session, user_id=user.id) is None:
            engineers.create_engineer(
                session,
                data=EngineerCreate.model_validate({"user_id": user.id, **profile}),
                now=now,
            )


def _local(now: datetime, minutes_ago: int, timezone: str) -> str:
    return (
        (now - timedelta(minutes=minutes_ago))
        .astimezone(ZoneInfo(timezone))
        .strftime("%Y-%m-%dT%H:%M:%S")
    )


def seed_faults(session: Session, *, now: datetime) -> None:
    """A dispenser jam, a failed card reader and low cash, through the real rules (once)."""
    if session.exec(select(Task)).first() is not None:
        return
    tz = "America/New_York"
    first = fleet.get_atm_by_terminal(session, terminal_id="T1000001")
    fifth = fleet.get_atm_by_terminal(session, terminal_id="T1000005")
    third = fleet.get_atm_by_terminal(session, terminal_id="T1000003")
    assert first.id is not None
    assert fifth.id is not None
    assert third.id is not None
    dispatch_rules.on_device_event(
        session,
        atm_id=first.id,
        event={
            "kind": "hardware_error",
            "time": _local(now, 12, tz),
            "device": "dispenser",
            "severity": "fatal",
            "code": "M-05",
            "description": "note jam in presenter",
        },
        now=now,
    )
    dispatch_rules.on_device_event(
        session,
        atm_id=fifth.id,
        event={
            "kind": "hardware_error",
            "time": _local(now, 40, tz),
            "device": "card_reader",
            "severity": "fatal",
            "code": "C-21",
            "description": "card reader module failure",
        },
        now=now,
    )
    dispatch_rules.on_cash_units(
        session,
        atm_id=third.id,
        units=[
            {"usNumber": 1, "usType": 3, "usStatus": 3, "ulValues": 20, "ulCount": 180},
            {"usNumber": 2, "usType": 3, "usStatus": 0, "ulValues": 20, "ulCount": 900},
            {"usNumber": 3, "usType": 3, "usStatus": 0, "ulValues": 50, "ulCount": 1200},
            {"usNumber": 4, "usType": 3, "usStatus": 4, "ulValues": 100, "ulCount": 0},
            {"usNumber": 5, "usType": 2, "usStatus": 0, "ulCount": 40, "ulMaximum": 300},
            {"usNumber": 6, "usType": 6, "usStatus": 0, "ulCount": 3, "ulMaximum": 100},
        ],
        now=now,
    )


_WEEK = (1.0, 0.95, 0.97, 1.02, 1.25, 1.1, 0.7)
_NOTES_A_DAY = {10: 20.0, 20: 260.0, 50: 70.0, 100: 110.0}  # an ordinary Monday


def seed_cash(session: Session, *, now: datetime, days: int = 90, cash_units: bool = True) -> None:
    """Ninety days of daily demand per ATM and denomination (as a bank's import), and a
    cash-unit report from each ATM that has not sent one (``cash_units``; a live demo's
    simulated ATMs report their own), so /cash has something to plan."""
    rng = np.random.default_rng(7)
    for index, atm in enumerate(session.exec(select(Atm).order_by(col(Atm.terminal_id))).all()):
        assert atm.id is not None
        if session.exec(select(CashDemandDay).where(col(CashDemandDay.atm_id) == atm.id)).first():
            continue
        site = session.get(Site, atm.site_id)
        assert site is not None
        today = now.astimezone(ZoneInfo(site.timezone)).date()
        cassettes = session.exec(
            select(Cassette).where(col(Cassette.atm_id) == atm.id).order_by(col(Cassette.number))
        ).all()
        volume = 0.6 + 0.25 * index
        rows = []
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            lift = 1.35 if day.day in (1, 15) else 1.0
            for denomination in sorted({c.denomination for c in cassettes}):
                mean = _NOTES_A_DAY.get(denomination, 50.0) * volume * _WEEK[day.weekday()] * lift
                rows.append(
                    DemandDayIn(day=day, denomination=denomination, notes=int(rng.poisson(mean)))
                )
        cash_demand.import_days(session, atm_id=atm.id, data=DemandImport(days=rows), now=now)
        condition = session.get(AtmCondition, atm.id)
        if cash_units and (condition is None or not condition.cash_units):
            units = [
                {
                    "usNumber": c.number,
                    "usType": 3,
                    "usStatus": 0,
                    "ulValues": c.denomination,
                    "ulCount": max(c.minimum + 50, int(c.capacity * (0.25 + 0.12 * index))),
                }
                for c in cassettes
            ]
            dispatch_rules.on_cash_units(session, atm_id=atm.id, units=units, now=now)


def seed(
    session: Session,
    *,
    passwords: Passwords,
    now: datetime,
    atms: tuple[DemoAtm, ...] = _ATMS,
    faults: bool = True,
) -> list[DemoLogin]:
    """The fleet, users, engineers and (``faults``) a few faults reported by hand; a live
    demo leaves the faults out: its simulated ATMs report their own."""
    seed_fleet(session, now=now, atms=atms)
    logins = seed_users(session, passwords=passwords, now=now)
    seed_engineers(session, now=now)
    if faults:
        seed_faults(session, now=now)
    seed_cash(session, now=now, cash_units=faults)
    return logins


# --- safe locks -------------------------------------------------------------------------

MASTER_KEY_FILE = "lock-master.key"
SIGNING_KEY_FILE = "lock-log-signing.pem"
DUAL_CONTROL_TERMINALS = frozenset({"T1000005"})  # the mall's ATM: two people to open


def _write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (never overwrite an existing secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


def lock_settings(settings: Settings, data_dir: Path) -> Settings:
    """The demo's settings with lock secrets: those configured, or the demo's own files in
    ``data_dir`` (made on first use, mode 0600; their content is never printed)."""
    updates: dict[str, object] = {}
    if settings.lock_master_key_file is None and settings.lock_master_key is None:
        path = data_dir / MASTER_KEY_FILE
        if not path.exists():
            _write_secret(path, MasterKey.generate().to_text().encode("ascii"))
        updates["lock_master_key_file"] = path
    if settings.lock_log_signing_key_file is None and settings.lock_log_signing_key is None:
        path = data_dir / SIGNING_KEY_FILE
        if not path.exists():
            _write_secret(path, CheckpointSigner.generate().private_pem())
        updates["lock_log_signing_key_file"] = path
    return settings.model_copy(update=updates) if updates else settings


def seed_locks(
    session: Session,
    *,
    secrets: LockSecrets,
    now: datetime,
    records_dir: Path,
    atms: tuple[DemoAtm, ...] = _ATMS,
) -> list[Path]:
    """A lock for every demo ATM that has none, and its provisioning record in
    ``records_dir`` for the lock simulator; returns the records written."""
    admin = users.find_user(session, username="admin")
    assert admin is not None, "seed the users first"
    written = []
    for demo in atms:
        terminal = demo.terminal_id
        atm = fleet.get_atm_by_terminal(session, terminal_id=terminal)
        assert atm.id is not None
        lock = locks.find_lock(session, atm_id=atm.id)
        if lock is None:
            lock = locks.provision(
                session,
                secrets=secrets,
                atm_id=atm.id,
                data=LockCreate(
                    lock_id=demo.lock_id,
                    model="Central-control OTC lock (simulated)",
                    dual_control=terminal in DUAL_CONTROL_TERMINALS,
                ),
                by=admin,
                now=now,
            )
        path = records_dir / f"{lock.lock_id}.json"
        if not path.exists():
            _, record = locks.provisioning_record(
                session,
                secrets=secrets,
                atm_id=atm.id,
                by=admin,
                reason="demo: load the lock simulator",
                now=now,
            )
            _write_secret(path, record.encode("ascii"))
            written.append(path)
    return written
