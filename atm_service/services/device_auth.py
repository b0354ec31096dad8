"""Authentication of device requests: signature, clock skew, nonce replay, key binding.

The order of the checks, and what each refusal is:

1. the four signature headers are present and well formed, else 401;
2. the timestamp is within ``device_clock_skew_s`` of the service's clock, else 401 (stale);
3. the nonce was not used with this key id before, else 401 (replayed);
4. the key id names an enrolled key, else 403;
5. the signature verifies with that key, else 401;
6. the key is not revoked, else 403;
7. the key is enrolled for the ATM the route names, else 403 (a foreign key).

The nonce is inserted first (``INSERT ... ON CONFLICT DO NOTHING`` on the
(key id, nonce) primary key, which makes replay detection hold across several
service instances on one PostgreSQL); on SQLite that first write also takes
the write lock up front, so the transaction never has to upgrade a read lock,
which SQLite refuses outright under concurrent writers. :func:`run_verified`
commits the nonce together with the request's work (one commit per accepted
request); a request refused by its work has its nonce recorded alone, and a
request refused by the checks above keeps none. A nonce is kept until its
timestamp could no longer pass step 2; the expired nonces of a key are swept
when the key's ``last_used_at`` is refreshed (at most once a minute).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from atm_service.config import Settings
from atm_service.errors import NotAuthenticated, PermissionDenied, ServiceError
from atm_service.models.devices import DeviceKey, DeviceNonce
from atm_service.models.fleet import Atm
from atm_service.security.device_signatures import (
    SignatureError,
    SignedHeaders,
    b64url_decode,
    parse_headers,
    verify,
)
from atm_service.services.sql import cached, insert_ignoring_duplicates, table

LAST_USED_RESOLUTION = timedelta(seconds=60)
T = TypeVar("T")


@dataclass(frozen=True)
class SignedRequest:
    """What the signature covers, as the service received it."""

    method: str
    target: str
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class DeviceIdentity:
    """Who a verified request comes from."""

    atm_id: int
    terminal_id: str
    key_id: str
    device_key_pk: int


def check_freshness(request: SignedRequest, *, settings: Settings, now: datetime) -> SignedHeaders:
    """Checks 1 and 2, which need no database: the headers' shape and the timestamp."""
    try:
        signed = parse_headers(request.headers)
    except SignatureError as exc:
        raise NotAuthenticated(str(exc)) from None
    skew = settings.device_clock_skew_s
    drift = signed.timestamp - now.timestamp()
    if abs(drift) > skew:
        raise NotAuthenticated(
            f"Stale request: its timestamp is {drift:+.0f} s from the service's clock; "
            f"the limit is {skew} s. Check the device's clock.",
            extensions={"server_time": now.astimezone(UTC).isoformat()},
        )
    return signed


def _record_nonce(connection: Connection, signed: SignedHeaders, skew: int) -> bool:
    """Insert the nonce; False when the key has used it before."""
    return bool(
        insert_ignoring_duplicates(
            connection,
            table(DeviceNonce),
            {
                "key_id": signed.key_id,
                "nonce": signed.nonce,
                "expires_at": datetime.fromtimestamp(signed.timestamp + skew, UTC),
            },
        )
    )


def run_verified(
    session: Session,
    *,
    settings: Settings,
    request: SignedRequest,
    terminal_id: str | None,
    now: datetime,
    work: Callable[[Session, DeviceIdentity], T],
) -> T:
    """Verify ``request``, then ``work(session, identity)``, in one transaction.

    ``terminal_id`` is the ATM the route names (None: any). The nonce commits
    with the work, so an accepted request costs one commit; when the work is
    refused (a domain error), the nonce is recorded on its own before the error
    goes on, so the refused request cannot be replayed either.
    """
    signed = check_freshness(request, settings=settings, now=now)
    connection = session.connection()
    if not _record_nonce(connection, signed, settings.device_clock_skew_s):
        session.rollback()
        raise NotAuthenticated(
            "Replayed request: this nonce was already used with this key; sign every "
            "request with a new nonce."
        )
    try:
        identity = _check_key(connection, signed, request, terminal_id, now)
    except ServiceError:
        session.rollback()
        raise
    try:
        result = work(session, identity)
    except ServiceError:
        session.rollback()
        _record_nonce(session.connection(), signed, settings.device_clock_skew_s)
        session.commit()
        raise
    session.commit()
    return result


def authenticate(
    session: Session,
    *,
    settings: Settings,
    request: SignedRequest,
    terminal_id: str | None,
    now: datetime,
) -> DeviceIdentity:
    """Verify ``request`` and record its nonce; the device's identity."""
    return run_verified(
        session,
        settings=settings,
        request=request,
        terminal_id=terminal_id,
        now=now,
        work=lambda _session, identity: identity,
    )


def _check_key(
    connection: Connection,
    signed: SignedHeaders,
    request: SignedRequest,
    terminal_id: str | None,
    now: datetime,
) -> DeviceIdentity:
    nonces, keys, atms = table(DeviceNonce), table(DeviceKey), table(Atm)
    found = connection.execute(
        cached(
            "device-key",
            connection,
            lambda: (
                sa.select(
                    keys.c.id,
                    keys.c.public_key,
                    keys.c.revoked_at,
                    keys.c.last_used_at,
                    atms.c.id.label("atm_id"),
                    atms.c.terminal_id,
                )
                .join(atms, atms.c.id == keys.c.atm_id)
                .where(keys.c.key_id == sa.bindparam("key_id"))
            ),
        ),
        {"key_id": signed.key_id},
    ).first()
    if found is None:
        raise PermissionDenied(
            f"Key {signed.key_id} is not enrolled; an administrator enrols it for its ATM."
        )
    try:
        verify(
            public_key=b64url_decode(found.public_key),
            signed=signed,
            method=request.method,
            target=request.target,
            body=request.body,
        )
    except SignatureError as exc:
        raise NotAuthenticated(str(exc)) from None
    if found.revoked_at is not None:
        raise PermissionDenied(f"Key {signed.key_id} was revoked; enrol a new key for the ATM.")
    if terminal_id is not None and found.terminal_id != terminal_id:
        raise PermissionDenied(f"Key {signed.key_id} is not enrolled for terminal {terminal_id}.")
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
        connection.execute(
            sa.delete(nonces).where(nonces.c.key_id == signed.key_id, nonces.c.expires_at < now)
        )
        connection.execute(sa.update(keys).where(keys.c.id == found.id).values(last_used_at=now))
    return DeviceIdentity(
        atm_id=found.atm_id,
        terminal_id=found.terminal_id,
        key_id=signed.key_id,
        device_key_pk=found.id,
    )
