"""``/api/v1/contracts``: service contracts and their SLA targets."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from atm_service.api.deps import FleetEditor, FleetReader, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.models.fleet import (
    ServiceContractCreate,
    ServiceContractPublic,
    ServiceContractUpdate,
)
from atm_service.services import fleet

router = APIRouter(prefix="/contracts", tags=["fleet"], responses=problems(401, 403))


@router.get("", response_model=Page[ServiceContractPublic], summary="List service contracts")
def list_contracts(
    session: SessionDep, _user: FleetReader, limit: Limit = 100, offset: Offset = 0
) -> Page[ServiceContractPublic]:
    contracts, total = fleet.list_contracts(session, limit=limit, offset=offset)
    return Page(
        items=[ServiceContractPublic.model_validate(c) for c in contracts],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "",
    response_model=ServiceContractPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a service contract",
    responses=problems(409, 422),
)
def create_contract(
    data: ServiceContractCreate, session: SessionDep, now: NowDep, _user: FleetEditor
) -> ServiceContractPublic:
    return ServiceContractPublic.model_validate(fleet.create_contract(session, data=data, now=now))


@router.get(
    "/{contract_id}",
    response_model=ServiceContractPublic,
    summary="Get a service contract",
    responses=problems(404),
)
def get_contract(
    contract_id: DbId, session: SessionDep, _user: FleetReader
) -> ServiceContractPublic:
    return ServiceContractPublic.model_validate(
        fleet.get_contract(session, contract_id=contract_id)
    )


@router.patch(
    "/{contract_id}",
    response_model=ServiceContractPublic,
    summary="Change a service contract",
    responses=problems(404, 409, 422),
)
def update_contract(
    contract_id: DbId,
    data: ServiceContractUpdate,
    session: SessionDep,
    now: NowDep,
    _user: FleetEditor,
) -> ServiceContractPublic:
    return ServiceContractPublic.model_validate(
        fleet.update_contract(session, contract_id=contract_id, data=data, now=now)
    )


@router.delete(
    "/{contract_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a service contract that covers no ATM",
    responses=problems(404, 409),
)
def delete_contract(contract_id: DbId, session: SessionDep, _user: FleetEditor) -> Response:
    fleet.delete_contract(session, contract_id=contract_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
