"""Enrolment of the agents' Ed25519 keys to ATMs, and their revocation.

An ATM may hold several keys at once, which is how a key is rotated: enrol
the new one, switch the agent over, revoke the old one. A public key belongs
to one ATM only; revoking is final (enrol a new key instead).
"""

from __future__ import annotations

import base64
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from atm_service.errors import Conflict, NotFound
from atm_service.models.devices import (
    DeviceKey,
    DeviceKeyCreate,
    DeviceKeyPublic,
    decode_public_key,
)
from atm_service.models.fleet import Atm
from atm_service.security.device_signatures import key_id_of
from atm_service.services.fleet import get_atm


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def to_public(key: DeviceKey, terminal_id: str) -> DeviceKeyPublic:
    return DeviceKeyPublic.model_validate({**key.model_dump(), "terminal_id": terminal_id})


def enrol_key(
    session: Session, *, atm_id: int, data: DeviceKeyCreate, now: datetime
) -> DeviceKeyPublic:
    """Enrol ``data.public_key`` for the ATM; refuse a key already enrolled anywhere."""
    atm = get_atm(session, atm_id=atm_id)
    raw = decode_public_key(data.public_key)
    key_id = key_id_of(raw)
    existing = session.exec(select(DeviceKey).where(col(DeviceKey.key_id) == key_id)).first()
    if existing is not None:
        where = "this ATM" if existing.atm_id == atm_id else "another ATM"
        raise Conflict(
            f"Key {key_id} is already enrolled for {where}; each device key belongs to one ATM.",
            field="public_key",
        )
    key = DeviceKey(
        atm_id=atm_id, key_id=key_id, public_key=_b64url(raw), label=data.label, created_at=now
    )
    session.add(key)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"Key {key_id} was enrolled at the same moment.") from exc
    session.refresh(key)
    return to_public(key, atm.terminal_id)


def list_keys(session: Session, *, atm_id: int) -> list[DeviceKeyPublic]:
    atm = get_atm(session, atm_id=atm_id)
    keys = session.exec(
        select(DeviceKey)
        .where(col(DeviceKey.atm_id) == atm_id)
        .order_by(col(DeviceKey.created_at), col(DeviceKey.id))
    )
    return [to_public(key, atm.terminal_id) for key in keys]


def revoke_key(session: Session, *, key_id: str, now: datetime) -> DeviceKeyPublic:
    """Refuse the key from now on (idempotent: a revoked key keeps its first revocation time)."""
    found = session.exec(
        select(DeviceKey, Atm)
        .join(Atm, col(Atm.id) == col(DeviceKey.atm_id))
        .where(col(DeviceKey.key_id) == key_id)
    ).first()
    if found is None:
        raise NotFound(f"No device key with id {key_id}.")
    key, atm = found
    if key.revoked_at is None:
        key.revoked_at = now
        session.add(key)
        session.commit()
        session.refresh(key)
    return to_public(key, atm.terminal_id)
