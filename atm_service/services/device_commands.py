"""Remote commands for ATMs: asked for by people, collected and answered by the agents.

A dispatcher asks (:func:`request_command`); the command waits until the ATM's
agent sends its next heartbeat, whose answer lists the ATM's waiting commands
(:func:`collect`, in the heartbeat's own transaction); the agent runs each over
the serial link and posts the device's answer (:func:`report_result`).

Delivery is at least once: a command stays listed in every heartbeat answer
until its result arrives or it expires, so a lost answer or an agent killed
mid-command costs nothing; the agent remembers the commands it has run and
reports those again rather than running them twice, and the three commands are
harmless to repeat anyway (a second ``go_out_of_service`` changes nothing). A
result is kept once: a repeated report changes nothing. A result that comes
after the command expired is still recorded, since the device did act on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, func, select

from atm_service.errors import NotFound
from atm_service.models.device_commands import (
    WAITING_STATES,
    CommandResultIn,
    CommandState,
    DeviceCommand,
    DeviceCommandCreate,
    DeviceCommandPublic,
)
from atm_service.models.devices import PendingCommand
from atm_service.models.fleet import Atm
from atm_service.models.users import User
from atm_service.services.device_auth import DeviceIdentity
from atm_service.services.fleet import get_atm
from atm_service.services.sql import cached, table

MAX_LISTED = 10
"""Commands listed in one heartbeat answer at most; the rest follow in the next ones."""

_COMMANDS = table(DeviceCommand)


def to_public(command: DeviceCommand, terminal_id: str) -> DeviceCommandPublic:
    return DeviceCommandPublic.model_validate(
        {
            **command.model_dump(),
            "terminal_id": terminal_id,
            "requested_by": command.requested_by_name,
        }
    )


def request_command(
    session: Session,
    *,
    atm_id: int,
    data: DeviceCommandCreate,
    by: User,
    now: datetime,
    ttl: timedelta,
) -> DeviceCommandPublic:
    """Queue ``data.command`` for the ATM; it expires if no agent collects it within ``ttl``."""
    atm = get_atm(session, atm_id=atm_id)
    command = DeviceCommand(
        atm_id=atm_id,
        command=data.command,
        state=CommandState.PENDING,
        reason=data.reason,
        requested_by=by.id,
        requested_by_name=by.username,
        requested_at=now,
        expires_at=now + ttl,
    )
    session.add(command)
    session.commit()
    session.refresh(command)
    return to_public(command, atm.terminal_id)


def list_commands(
    session: Session, *, atm_id: int, limit: int = 100, offset: int = 0
) -> tuple[list[DeviceCommandPublic], int]:
    """The ATM's commands, newest first."""
    atm = get_atm(session, atm_id=atm_id)
    where = col(DeviceCommand.atm_id) == atm_id
    rows = session.exec(
        select(DeviceCommand)
        .where(where)
        .order_by(col(DeviceCommand.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    total = session.exec(select(func.count()).select_from(DeviceCommand).where(where)).one()
    return [to_public(row, atm.terminal_id) for row in rows], total


def get_command(session: Session, *, atm_id: int, command_id: int) -> DeviceCommandPublic:
    found = session.exec(
        select(DeviceCommand, Atm)
        .join(Atm, col(Atm.id) == col(DeviceCommand.atm_id))
        .where(col(DeviceCommand.id) == command_id, col(DeviceCommand.atm_id) == atm_id)
    ).first()
    if found is None:
        raise NotFound(f"ATM {atm_id} has no command {command_id}.")
    command, atm = found
    return to_public(command, atm.terminal_id)


def collect(connection: Connection, *, atm_id: int, now: datetime) -> list[PendingCommand]:
    """The ATM's waiting commands for a heartbeat answer; marks them delivered.

    Runs in the heartbeat's transaction (Core statements: heartbeats are the
    fleet's most frequent request). Commands past their expiry become ``expired``.
    """
    rows = connection.execute(
        cached(
            "commands-waiting",
            connection,
            lambda: (
                sa.select(
                    _COMMANDS.c.id,
                    _COMMANDS.c.command,
                    _COMMANDS.c.requested_at,
                    _COMMANDS.c.expires_at,
                )
                .where(
                    _COMMANDS.c.atm_id == sa.bindparam("atm_id"),
                    _COMMANDS.c.state.in_(WAITING_STATES),
                )
                .order_by(_COMMANDS.c.id)
                .limit(MAX_LISTED)
                .with_for_update()
            ),
        ),
        {"atm_id": atm_id},
    ).all()
    if not rows:
        return []
    live = [row for row in rows if row.expires_at > now]
    expired = [row.id for row in rows if row.expires_at <= now]
    if expired:
        connection.execute(
            _COMMANDS.update()
            .where(_COMMANDS.c.id.in_(expired))
            .values(state=CommandState.EXPIRED, completed_at=now)
        )
    if live:
        connection.execute(
            _COMMANDS.update()
            .where(_COMMANDS.c.id.in_([row.id for row in live]))
            .values(
                state=CommandState.DELIVERED,
                delivered_at=sa.func.coalesce(_COMMANDS.c.delivered_at, now),
                deliveries=_COMMANDS.c.deliveries + 1,
            )
        )
    return [
        PendingCommand(id=row.id, command=str(row.command), requested_at=row.requested_at)
        for row in live
    ]


def report_result(
    session: Session,
    *,
    device: DeviceIdentity,
    command_id: int,
    result: CommandResultIn,
    now: datetime,
) -> DeviceCommandPublic:
    """Record the device's answer to a command of this ATM (once; repeats change nothing)."""
    command = session.exec(
        select(DeviceCommand)
        .where(col(DeviceCommand.id) == command_id, col(DeviceCommand.atm_id) == device.atm_id)
        .with_for_update()
    ).first()
    if command is None:
        raise NotFound(f"{device.terminal_id} has no command {command_id}.")
    if command.state not in (CommandState.SUCCEEDED, CommandState.FAILED):
        data: dict[str, Any] = result.model_dump(exclude_none=True)
        command.state = CommandState.SUCCEEDED if result.ok else CommandState.FAILED
        command.result = data
        command.completed_at = now
        if command.delivered_at is None:
            command.delivered_at = now
        session.add(command)
        session.commit()
        session.refresh(command)
    return to_public(command, device.terminal_id)
