"""``/api/v1/devices``: what the ATMs' agents send. Every route is signed by a device key.

See ``docs/ingest-api.md`` for the signature and the resume rules.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query

from atm_service.api.device_guard import DeviceDep
from atm_service.api.openapi import problems
from atm_service.models.base import MAX_ID
from atm_service.models.device_commands import CommandResultIn, DeviceCommandPublic
from atm_service.models.devices import (
    DeviceWhoAmI,
    HeartbeatIn,
    HeartbeatReply,
    RecordBatch,
    RecordsAck,
)
from atm_service.models.fleet import TERMINAL_ID_PATTERN
from atm_service.models.journals import JOURNAL_NAME_PATTERN, JournalAck
from atm_service.services import device_commands, ingest

# The largest body a device may send in one request (enforced by BodyLimit in the
# app); agents send 64 KiB batches.
DEVICE_MAX_BODY_BYTES = 1024 * 1024
DEVICE_PREFIX = "/api/v1/devices/"

# A journal offset is stored in a 64-bit column.
MAX_JOURNAL_OFFSET = 2**63 - 1

router = APIRouter(prefix="/devices", tags=["device ingest"], responses=problems(401, 403))

TerminalId = Annotated[
    str, Path(pattern=TERMINAL_ID_PATTERN, description="The ATM's terminal id (DE41)")
]


@router.get("/me", response_model=DeviceWhoAmI, summary="Which ATM the signing key belongs to")
async def who_am_i(device: DeviceDep) -> DeviceWhoAmI:
    return await device.run(
        lambda _session, identity: DeviceWhoAmI(
            terminal_id=identity.terminal_id, key_id=identity.key_id
        )
    )


@router.put(
    "/{terminal_id}/journals/{name}",
    response_model=JournalAck,
    summary="Upload journal bytes at an offset (idempotent)",
    description=(
        "The body is raw journal bytes to store at `offset` of the business day's file. "
        "Bytes the service already holds are compared, not stored again; 409 "
        "`offset-mismatch` gives the `expected_offset` when `offset` is past the end, 409 "
        "`journal-conflict` when held bytes differ."
    ),
    responses=problems(409, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def put_journal(
    terminal_id: TerminalId,
    name: Annotated[str, Path(pattern=JOURNAL_NAME_PATTERN, description="Business day, YYYYMMDD")],
    offset: Annotated[
        int, Query(ge=0, le=MAX_JOURNAL_OFFSET, description="Byte offset of the body in the file")
    ],
    device: DeviceDep,
) -> JournalAck:
    return await device.run(
        lambda session, identity: ingest.append_journal(
            session,
            device=identity,
            name=name,
            offset=offset,
            data=device.body,
            now=device.now,
        )
    )


@router.post(
    "/{terminal_id}/records",
    response_model=RecordsAck,
    summary="Upload status, event and counter records (idempotent by stream and sequence)",
    responses=problems(409, 413, 422),
)
async def post_records(
    terminal_id: TerminalId, batch: RecordBatch, device: DeviceDep, background: BackgroundTasks
) -> RecordsAck:
    ack, follow_up = await device.run(
        lambda session, identity: ingest.store_records(
            session, device=identity, batch=batch, now=device.now
        )
    )
    if follow_up is not None:
        # The agent has its answer once the records are stored; the dispatch rules run
        # right after it is sent (and a record they miss is applied at the next request).
        speed = device.context.settings.dispatch_road_speed_kmh
        background.add_task(
            device.then,
            lambda session: ingest.apply_rules(
                session, follow_up, now=device.now, road_speed_kmh=speed
            ),
        )
    return ack


@router.post(
    "/{terminal_id}/heartbeat",
    response_model=HeartbeatReply,
    summary="The agent's heartbeat: its state and backlog",
    responses=problems(413, 422),
)
async def post_heartbeat(
    terminal_id: TerminalId, beat: HeartbeatIn, device: DeviceDep
) -> HeartbeatReply:
    return await device.run(
        lambda session, identity: ingest.record_heartbeat(
            session,
            device=identity,
            beat=beat,
            now=device.now,
            road_speed_kmh=device.context.settings.dispatch_road_speed_kmh,
        )
    )


@router.post(
    "/{terminal_id}/commands/{command_id}/result",
    response_model=DeviceCommandPublic,
    summary="Report what the device answered to a remote command (idempotent)",
    description=(
        "The body is the device's answer as the link returned it: at least `ok`, and "
        "`error` when it failed (or the agent's reason it could not ask the device). "
        "A command keeps its first result; a repeated report changes nothing."
    ),
    responses=problems(404, 413, 422),
)
async def post_command_result(
    terminal_id: TerminalId,
    command_id: Annotated[
        int, Path(ge=1, le=MAX_ID, description="The command's id, from the heartbeat")
    ],
    result: CommandResultIn,
    device: DeviceDep,
) -> DeviceCommandPublic:
    return await device.run(
        lambda session, identity: device_commands.report_result(
            session, device=identity, command_id=command_id, result=result, now=device.now
        )
    )
