"""Device keys: administrators enrol an agent's Ed25519 public key for an ATM, or revoke it."""

from __future__ import annotations

from fastapi import APIRouter, status

from atm_service.api.deps import Admin, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.params import DbId
from atm_service.models.devices import DeviceKeyCreate, DeviceKeyPublic
from atm_service.services import device_keys

router = APIRouter(tags=["device keys"], responses=problems(401, 403))


@router.get(
    "/atms/{atm_id}/device-keys",
    response_model=list[DeviceKeyPublic],
    summary="The ATM's device keys, revoked ones included",
    responses=problems(404),
)
def list_keys(atm_id: DbId, session: SessionDep, _user: Admin) -> list[DeviceKeyPublic]:
    return device_keys.list_keys(session, atm_id=atm_id)


@router.post(
    "/atms/{atm_id}/device-keys",
    response_model=DeviceKeyPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Enrol an agent's public key for the ATM",
    responses=problems(404, 409, 422),
)
def enrol_key(
    atm_id: DbId, data: DeviceKeyCreate, session: SessionDep, now: NowDep, _user: Admin
) -> DeviceKeyPublic:
    return device_keys.enrol_key(session, atm_id=atm_id, data=data, now=now)


@router.post(
    "/device-keys/{key_id}/revoke",
    response_model=DeviceKeyPublic,
    summary="Revoke a device key: its requests are refused from now on",
    responses=problems(404),
)
def revoke_key(key_id: str, session: SessionDep, now: NowDep, _user: Admin) -> DeviceKeyPublic:
    return device_keys.revoke_key(session, key_id=key_id, now=now)
