"""Sites, service contracts and ATMs: the fleet's master data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select

from atm_service.errors import Conflict, InvalidInput, NotFound
from atm_service.models.fleet import (
    Atm,
    AtmCreate,
    AtmPublic,
    AtmStatus,
    AtmUpdate,
    Cassette,
    CassetteIn,
    CassettePublic,
    ServiceContract,
    ServiceContractCreate,
    ServiceContractUpdate,
    Site,
    SiteCreate,
    SiteUpdate,
    minutes_of_day,
)


def _commit(session: Session, what: str) -> None:
    """Commit, turning a lost race on a unique key into a clear conflict."""
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"{what} conflicts with an existing record.") from exc


# --- sites -----------------------------------------------------------------


def get_site(session: Session, *, site_id: int) -> Site:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound(f"No site with id {site_id}.")
    return site


def list_sites(
    session: Session, *, region: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[Site], int]:
    query = select(Site)
    count = select(func.count()).select_from(Site)
    if region is not None:
        query = query.where(col(Site.region) == region)
        count = count.where(col(Site.region) == region)
    sites = list(session.exec(query.order_by(col(Site.code)).offset(offset).limit(limit)))
    return sites, session.exec(count).one()


def _check_site_code(session: Session, code: str, *, except_id: int | None = None) -> None:
    other = session.exec(select(Site).where(col(Site.code) == code)).first()
    if other is not None and other.id != except_id:
        raise Conflict(f"A site with code {code!r} already exists.", field="code")


def create_site(session: Session, *, data: SiteCreate, now: datetime) -> Site:
    _check_site_code(session, data.code)
    site = Site.model_validate(data, update={"created_at": now, "updated_at": now})
    session.add(site)
    _commit(session, f"Site {data.code!r}")
    session.refresh(site)
    return site


def update_site(session: Session, *, site_id: int, data: SiteUpdate, now: datetime) -> Site:
    site = get_site(session, site_id=site_id)
    changes = _non_null_changes(data.model_dump(exclude_unset=True))
    if "code" in changes:
        _check_site_code(session, changes["code"], except_id=site_id)
    site.sqlmodel_update(changes)
    site.updated_at = now
    session.add(site)
    _commit(session, f"Site {site.code!r}")
    session.refresh(site)
    return site


def delete_site(session: Session, *, site_id: int) -> None:
    site = get_site(session, site_id=site_id)
    atms = session.exec(
        select(func.count()).select_from(Atm).where(col(Atm.site_id) == site_id)
    ).one()
    if atms:
        raise Conflict(f"Site {site.code!r} still has {atms} ATM(s); move or delete them first.")
    session.delete(site)
    session.commit()


# --- service contracts ---------------------------------------------------------


def get_contract(session: Session, *, contract_id: int) -> ServiceContract:
    contract = session.get(ServiceContract, contract_id)
    if contract is None:
        raise NotFound(f"No service contract with id {contract_id}.")
    return contract


def list_contracts(
    session: Session, *, limit: int = 100, offset: int = 0
) -> tuple[list[ServiceContract], int]:
    query = select(ServiceContract).order_by(col(ServiceContract.code))
    contracts = list(session.exec(query.offset(offset).limit(limit)))
    return contracts, session.exec(select(func.count()).select_from(ServiceContract)).one()


def _check_contract_code(session: Session, code: str, *, except_id: int | None = None) -> None:
    other = session.exec(select(ServiceContract).where(col(ServiceContract.code) == code)).first()
    if other is not None and other.id != except_id:
        raise Conflict(f"A service contract with code {code!r} already exists.", field="code")


def create_contract(
    session: Session, *, data: ServiceContractCreate, now: datetime
) -> ServiceContract:
    _check_contract_code(session, data.code)
    contract = ServiceContract.model_validate(data, update={"created_at": now, "updated_at": now})
    session.add(contract)
    _commit(session, f"Service contract {data.code!r}")
    session.refresh(contract)
    return contract


def update_contract(
    session: Session, *, contract_id: int, data: ServiceContractUpdate, now: datetime
) -> ServiceContract:
    contract = get_contract(session, contract_id=contract_id)
    changes = _non_null_changes(data.model_dump(exclude_unset=True))
    if "code" in changes:
        _check_contract_code(session, changes["code"], except_id=contract_id)
    start = changes.get("service_start", contract.service_start)
    end = changes.get("service_end", contract.service_end)
    if minutes_of_day(start) >= minutes_of_day(end):
        raise InvalidInput("service_start must be before service_end.", field="service_start")
    contract.sqlmodel_update(changes)
    contract.updated_at = now
    session.add(contract)
    _commit(session, f"Service contract {contract.code!r}")
    session.refresh(contract)
    return contract


def delete_contract(session: Session, *, contract_id: int) -> None:
    contract = get_contract(session, contract_id=contract_id)
    atms = session.exec(
        select(func.count()).select_from(Atm).where(col(Atm.contract_id) == contract_id)
    ).one()
    if atms:
        raise Conflict(f"Service contract {contract.code!r} still covers {atms} ATM(s).")
    session.delete(contract)
    session.commit()


# --- ATMs --------------------------------------------------------------------


def _non_null_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Refuse an explicit ``null`` for a field that cannot be empty."""
    nullable = {"contract_id"}
    for name, value in changes.items():
        if value is None and name not in nullable:
            raise InvalidInput(f"{name} may not be null.", field=name)
    return changes


def cassettes_of(session: Session, atm_ids: Sequence[int]) -> dict[int, list[Cassette]]:
    by_atm: dict[int, list[Cassette]] = {atm_id: [] for atm_id in atm_ids}
    if not atm_ids:
        return by_atm
    rows = session.exec(
        select(Cassette)
        .where(col(Cassette.atm_id).in_(atm_ids))
        .order_by(col(Cassette.atm_id), col(Cassette.number))
    )
    for cassette in rows:
        by_atm[cassette.atm_id].append(cassette)
    return by_atm


def to_public(atm: Atm, cassettes: Sequence[Cassette]) -> AtmPublic:
    return AtmPublic.model_validate(
        {
            **atm.model_dump(),
            "cassettes": [CassettePublic.model_validate(c.model_dump()) for c in cassettes],
        }
    )


def get_atm(session: Session, *, atm_id: int) -> Atm:
    atm = session.get(Atm, atm_id)
    if atm is None:
        raise NotFound(f"No ATM with id {atm_id}.")
    return atm


def get_atm_by_terminal(session: Session, *, terminal_id: str) -> Atm:
    atm = session.exec(select(Atm).where(col(Atm.terminal_id) == terminal_id)).first()
    if atm is None:
        raise NotFound(f"No ATM with terminal id {terminal_id!r}.")
    return atm


def get_atm_public(session: Session, *, atm_id: int) -> AtmPublic:
    atm = get_atm(session, atm_id=atm_id)
    return to_public(atm, cassettes_of(session, [atm_id])[atm_id])


def list_atms(
    session: Session,
    *,
    site_id: int | None = None,
    region: str | None = None,
    status: AtmStatus | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AtmPublic], int]:
    query = select(Atm)
    if site_id is not None:
        query = query.where(col(Atm.site_id) == site_id)
    if region is not None:
        query = query.join(Site, col(Site.id) == col(Atm.site_id)).where(col(Site.region) == region)
    if status is not None:
        query = query.where(col(Atm.status) == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    atms = list(session.exec(query.order_by(col(Atm.terminal_id)).offset(offset).limit(limit)))
    cassettes = cassettes_of(session, [atm.id for atm in atms if atm.id is not None])
    return [to_public(atm, cassettes[atm.id]) for atm in atms if atm.id is not None], total


def _check_references(session: Session, *, site_id: int | None, contract_id: int | None) -> None:
    if site_id is not None and session.get(Site, site_id) is None:
        raise InvalidInput(f"site_id {site_id} names no site.", field="site_id")
    if contract_id is not None and session.get(ServiceContract, contract_id) is None:
        raise InvalidInput(
            f"contract_id {contract_id} names no service contract.", field="contract_id"
        )


def _check_terminal_id(session: Session, terminal_id: str, *, except_id: int | None = None) -> None:
    other = session.exec(select(Atm).where(col(Atm.terminal_id) == terminal_id)).first()
    if other is not None and other.id != except_id:
        raise Conflict(
            f"An ATM with terminal id {terminal_id!r} already exists.", field="terminal_id"
        )


def _replace_cassettes(session: Session, atm_id: int, cassettes: Sequence[CassetteIn]) -> None:
    session.exec(delete(Cassette).where(col(Cassette.atm_id) == atm_id))
    for cassette in cassettes:
        session.add(Cassette.model_validate(cassette, update={"atm_id": atm_id}))


def create_atm(session: Session, *, data: AtmCreate, now: datetime) -> AtmPublic:
    _check_references(session, site_id=data.site_id, contract_id=data.contract_id)
    _check_terminal_id(session, data.terminal_id)
    atm = Atm.model_validate(
        data.model_dump(exclude={"cassettes"}), update={"created_at": now, "updated_at": now}
    )
    session.add(atm)
    _commit(session, f"ATM {data.terminal_id!r}")
    assert atm.id is not None
    _replace_cassettes(session, atm.id, data.cassettes)
    _commit(session, f"Cassettes of ATM {data.terminal_id!r}")
    return get_atm_public(session, atm_id=atm.id)


def update_atm(session: Session, *, atm_id: int, data: AtmUpdate, now: datetime) -> AtmPublic:
    atm = get_atm(session, atm_id=atm_id)
    changes = _non_null_changes(data.model_dump(exclude_unset=True))
    cassettes = changes.pop("cassettes", None)
    _check_references(
        session, site_id=changes.get("site_id"), contract_id=changes.get("contract_id")
    )
    if "terminal_id" in changes:
        _check_terminal_id(session, changes["terminal_id"], except_id=atm_id)
    atm.sqlmodel_update(changes)
    atm.updated_at = now
    session.add(atm)
    if data.cassettes is not None and cassettes is not None:
        _replace_cassettes(session, atm_id, data.cassettes)
    _commit(session, f"ATM {atm.terminal_id!r}")
    return get_atm_public(session, atm_id=atm_id)


def delete_atm(session: Session, *, atm_id: int) -> None:
    atm = get_atm(session, atm_id=atm_id)
    session.exec(delete(Cassette).where(col(Cassette.atm_id) == atm_id))
    session.delete(atm)
    session.commit()
