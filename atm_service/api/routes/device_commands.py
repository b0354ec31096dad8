"""``/api/v1/atms/{atm_id}/commands``: ask an ATM to run a remote command, and see how it went.

The command waits until the ATM's agent collects it with its next heartbeat
(every 30 s by default), runs it over the serial link and reports the device's
answer; see ``docs/ingest-api.md``.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status

from atm_service.api.deps import ContextDep, Dispatcher, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.api.params import DbId
from atm_service.models.device_commands import DeviceCommandCreate, DeviceCommandPublic
from atm_service.services import device_commands

router = APIRouter(prefix="/atms", tags=["device commands"], responses=problems(401, 403))


@router.post(
    "/{atm_id}/commands",
    response_model=DeviceCommandPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Ask the ATM to run send_counters, go_out_of_service or go_in_service",
    responses=problems(404, 422),
)
def request_command(
    atm_id: DbId,
    data: DeviceCommandCreate,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    user: Dispatcher,
) -> DeviceCommandPublic:
    return device_commands.request_command(
        session,
        atm_id=atm_id,
        data=data,
        by=user,
        now=now,
        ttl=timedelta(seconds=context.settings.device_command_ttl_s),
    )


@router.get(
    "/{atm_id}/commands",
    response_model=Page[DeviceCommandPublic],
    summary="The ATM's remote commands, newest first",
    responses=problems(404),
)
def list_commands(
    atm_id: DbId,
    session: SessionDep,
    _user: Dispatcher,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[DeviceCommandPublic]:
    items, total = device_commands.list_commands(session, atm_id=atm_id, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{atm_id}/commands/{command_id}",
    response_model=DeviceCommandPublic,
    summary="One remote command: its state and the device's answer",
    responses=problems(404),
)
def get_command(
    atm_id: DbId, command_id: DbId, session: SessionDep, _user: Dispatcher
) -> DeviceCommandPublic:
    return device_commands.get_command(session, atm_id=atm_id, command_id=command_id)
