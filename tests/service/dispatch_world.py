"""A small fleet with engineers for the dispatch tests, built through the services.

Two contracts (around the clock; New York business hours), three sites in two
regions, four ATMs, and three engineers:

* ``eli``: North, first line and cash, around the clock, at North Station;
* ``erin``: South, first line, second line and cash, around the clock, at South Mall;
* ``sam``: North, second line only, Monday to Friday 08:00-17:00 New York.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from atm_service.models.engineers import Engineer, EngineerCreate
from atm_service.models.fleet import (
    AtmCreate,
    CassetteIn,
    EjDialect,
    ServiceContractCreate,
    SiteCreate,
)
from atm_service.models.users import Role, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services import engineers, fleet, users
from tests.support import PASSWORD

NEW_YORK = "America/New_York"

SITES = {
    "NORTH": {
        "name": "North Station",
        "region": "North",
        "latitude": 40.7506,
        "longitude": -73.9935,
    },
    "SOUTH": {"name": "South Mall", "region": "South", "latitude": 40.6500, "longitude": -73.9496},
    "FAR": {"name": "Capitol Plaza", "region": "North", "latitude": 42.6526, "longitude": -73.7562},
}
# terminal → site, contract
ATMS = {
    "T1000001": ("NORTH", "GOLD"),
    "T1000002": ("NORTH", "GOLD"),
    "T1000003": ("SOUTH", "BIZ"),
    "T1000004": ("FAR", "GOLD"),
}
ENGINEERS: dict[str, dict[str, Any]] = {
    "eli": {"skills": "flm,cash", "home_region": "North", "site": "NORTH"},
    "erin": {"skills": "flm,slm,cash", "home_region": "South", "site": "SOUTH"},
    "sam": {
        "skills": "slm",
        "home_region": "North",
        "site": "NORTH",
        "shift_days": "12345",
        "shift_start": "08:00",
        "shift_end": "17:00",
    },
}


@dataclass
class World:
    atms: dict[str, int]
    sites: dict[str, int]
    engineers: dict[str, int]  # user name → engineer id
    users: dict[str, int]  # user name → user id


def build(
    session: Session,
    *,
    passwords: Passwords,
    now: datetime,
    engineer_names: tuple[str, ...] = ("eli", "erin", "sam"),
) -> World:
    contracts = {
        "GOLD": fleet.create_contract(
            session,
            data=ServiceContractCreate(
                code="GOLD",
                customer="First Bank",
                name="Gold 24x7",
                response_minutes=120,
                restore_minutes=240,
            ),
            now=now,
        ),
        "BIZ": fleet.create_contract(
            session,
            data=ServiceContractCreate(
                code="BIZ",
                customer="Second Bank",
                name="Business hours",
                response_minutes=240,
                restore_minutes=480,
                service_days="12345",
                service_start="08:00",
                service_end="18:00",
            ),
            now=now,
        ),
    }
    sites = {}
    for code, info in SITES.items():
        site = fleet.create_site(
            session,
            data=SiteCreate(
                code=code,
                address_line=f"1 {info['name']} Road",
                city="Springfield",
                country="US",
                timezone=NEW_YORK,
                **info,
            ),
            now=now,
        )
        assert site.id is not None
        sites[code] = site.id
    atms = {}
    for terminal, (site_code, contract_code) in ATMS.items():
        contract_id = contracts[contract_code].id
        assert contract_id is not None
        atm = fleet.create_atm(
            session,
            data=AtmCreate(
                terminal_id=terminal,
                site_id=sites[site_code],
                contract_id=contract_id,
                vendor="NCR",
                model="SelfServ 84",
                ej_dialect=EjDialect.NDC,
                cassettes=[
                    CassetteIn(number=n, denomination=d, currency="USD", capacity=3000, minimum=200)
                    for n, d in enumerate((20, 20, 50, 100), start=1)
                ],
            ),
            now=now,
        )
        atms[terminal] = atm.id
    world = World(atms=atms, sites=sites, engineers={}, users={})
    for name in engineer_names:
        add_engineer(session, world, name, passwords=passwords, now=now, **ENGINEERS[name])
    return world


def add_engineer(
    session: Session,
    world: World,
    name: str,
    *,
    passwords: Passwords,
    now: datetime,
    site: str,
    **profile: Any,
) -> Engineer:
    user = users.create_user(
        session,
        data=UserCreate(
            username=name, full_name=name.capitalize(), role=Role.ENGINEER, password=PASSWORD
        ),
        passwords=passwords,
        now=now,
    )
    assert user.id is not None
    values = {
        "shift_days": "1234567",
        "shift_start": "00:00",
        "shift_end": "24:00",
        "timezone": NEW_YORK,
        "latitude": SITES[site]["latitude"],
        "longitude": SITES[site]["longitude"],
        **profile,
    }
    engineer = engineers.create_engineer(
        session, data=EngineerCreate.model_validate({"user_id": user.id, **values}), now=now
    )
    assert engineer.id is not None
    world.engineers[name] = engineer.id
    world.users[name] = user.id
    return engineer


def fault(
    time: str = "2026-11-16T02:55:00",
    *,
    device: str = "dispenser",
    description: str = "note jam in presenter",
    code: str = "M-05",
    severity: str = "fatal",
) -> dict[str, Any]:
    """A hardware_error event (terminal local time)."""
    return {
        "kind": "hardware_error",
        "time": time,
        "device": device,
        "severity": severity,
        "code": code,
        "description": description,
    }


def cash_units(*statuses: int, bins: tuple[int, int] = (0, 0)) -> list[dict[str, Any]]:
    """An XFS report: cassettes 1.. with the given usStatus, then the reject and retract bins."""
    units: list[dict[str, Any]] = [
        {"usNumber": n, "usType": 3, "cUnitID": f"CST0{n}", "usStatus": s, "ulCount": 500}
        for n, s in enumerate(statuses, start=1)
    ]
    units.append({"usNumber": 5, "usType": 2, "cUnitID": "REJ01", "usStatus": bins[0]})
    units.append({"usNumber": 6, "usType": 6, "cUnitID": "RTR01", "usStatus": bins[1]})
    return units
