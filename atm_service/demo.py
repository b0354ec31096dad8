"""Demo data: a small fleet matching the reference sample's terminals, and one user per role.

Seeding is idempotent: existing sites, contracts and ATMs are kept, and the
demo users get fresh random passwords each time, which the caller prints.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from atm_service.models.fleet import (
    Atm,
    AtmCreate,
    CassetteIn,
    EjDialect,
    ServiceContract,
    ServiceContractCreate,
    Site,
    SiteCreate,
)
from atm_service.models.users import Role, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services import fleet, users


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

# terminal, site code, contract code, vendor, model, dialect, cassette denominations and loads
_ATMS = (
    (
        "T1000001",
        "NORTH-STATION",
        "GOLD-24X7",
        "NCR",
        "SelfServ 84",
        EjDialect.NDC,
        ((20, 2000), (50, 1500), (100, 1500), (100, 2000)),
    ),
    (
        "T1000002",
        "NORTH-STATION",
        "GOLD-24X7",
        "NCR",
        "SelfServ 84",
        EjDialect.NDC,
        ((20, 2500), (20, 2500), (50, 2000), (100, 2000)),
    ),
    (
        "T1000003",
        "MARKET-ST",
        "STD-BUSINESS",
        "Diebold Nixdorf",
        "CINEO C4060",
        EjDialect.PROCASH,
        ((20, 2000), (20, 2000), (50, 2500), (100, 1500)),
    ),
    (
        "T1000004",
        "MARKET-ST",
        "STD-BUSINESS",
        "Diebold Nixdorf",
        "CINEO C4060",
        EjDialect.PROCASH,
        ((20, 1500), (50, 2500), (100, 1500), (100, 2500)),
    ),
    (
        "T1000005",
        "SOUTH-MALL",
        "GOLD-24X7",
        "Diebold Nixdorf",
        "DN Series 200",
        EjDialect.PROCASH,
        ((20, 1500), (20, 2500), (50, 2000), (100, 2500)),
    ),
    (
        "T1000006",
        "SOUTH-MALL",
        "GOLD-24X7",
        "NCR",
        "SelfServ 87",
        EjDialect.NDC,
        ((20, 2000), (20, 2000), (50, 1500), (100, 2000)),
    ),
)

_USERS = (
    ("admin", "Ada Admin", Role.ADMIN),
    ("dispatch", "Dana Dispatcher", Role.DISPATCHER),
    ("engineer", "Eli Engineer", Role.ENGINEER),
    ("engineer2", "Erin Engineer", Role.ENGINEER),
    ("recon", "Remy Reconciler", Role.RECONCILER),
    ("auditor", "Avery Auditor", Role.AUDITOR),
)


def seed_fleet(session: Session, *, now: datetime) -> None:
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
    for terminal, site_code, contract_code, vendor, model, dialect, loads in _ATMS:
        if session.exec(select(Atm).where(col(Atm.terminal_id) == terminal)).first():
            continue
        site_id, contract_id = sites[site_code].id, contracts[contract_code].id
        assert site_id is not None
        assert contract_id is not None
        fleet.create_atm(
            session,
            data=AtmCreate(
                terminal_id=terminal,
                site_id=site_id,
                contract_id=contract_id,
                vendor=vendor,
                model=model,
                serial_number=f"SN-{terminal[1:]}",
                ej_dialect=dialect,
                currency="USD",
                cassettes=[
                    CassetteIn(
                        number=number,
                        denomination=denomination,
                        currency="USD",
                        capacity=3000,
                        minimum=load // 10,
                    )
                    for number, (denomination, load) in enumerate(loads, start=1)
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


def seed(session: Session, *, passwords: Passwords, now: datetime) -> list[DemoLogin]:
    seed_fleet(session, now=now)
    return seed_users(session, passwords=passwords, now=now)
