"""Device ingest: journal bytes, records and heartbeats, each request one transaction.

Journals: bytes of a journal file are appended at its end. An upload may start
before the end (a retransmit after a lost answer): the part the service holds
is compared with what it holds and must be equal (else 409
``journal-conflict``), the rest is appended as one chunk. An upload starting
past the end is refused with 409 ``offset-mismatch`` and the offset the device
must send from (``expected_offset``). The journal row is locked (``SELECT ...
FOR UPDATE``) so concurrent uploads for one file, from one or several service
instances, apply one after the other.

Records (status, events, cash-unit snapshots): numbered per agent stream from
1; a batch is consecutive, records the stream already holds are skipped, a
batch starting past the next expected number is refused with 409 and
``expected_seq``. They are bulk-inserted, and the ATM's latest state is
brought up to date in the same transaction (:func:`store_records`). Once that
has committed, the records the dispatch rules have not seen go to them, each
exactly once (:func:`apply_rules`, :mod:`atm_service.services.device_rules`): a
fault becomes a task. The route does that right after the agent has its
answer, so an upload never waits for dispatch decisions. When the rules had
seen every earlier record of the stream (the usual case), the new records go
to them from memory; otherwise the rules read what they missed.

Heartbeats keep the agent's own state, answer with the stream's position and
the ATM's waiting remote commands (:mod:`atm_service.services.device_commands`),
and apply any records the rules were left behind on.

The work is set-based (Core statements, executemany), never one ORM object per
line or record: ingest must keep up with a whole fleet catching up after an outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from atm_service.errors import InvalidInput, JournalConflict, OffsetMismatch
from atm_service.models.cash import CountersSnapshot
from atm_service.models.devices import (
    AtmState,
    DeviceEvent,
    DeviceStatus,
    HeartbeatIn,
    HeartbeatReply,
    RecordBatch,
    RecordIn,
    RecordKind,
    RecordsAck,
    RecordStream,
)
from atm_service.models.journals import JournalAck, JournalChunk, JournalFile
from atm_service.services import device_commands, device_rules
from atm_service.services.device_auth import DeviceIdentity
from atm_service.services.dispatch_rules import DEFAULT_ROAD_SPEED_KMH
from atm_service.services.journals import check_journal_name, read_range
from atm_service.services.sql import cached, insert_ignoring_duplicates, table, upsert

_FILES = table(JournalFile)
_CHUNKS = table(JournalChunk)
_STREAMS = table(RecordStream)
_STATUS = table(DeviceStatus)
_EVENTS = table(DeviceEvent)
_COUNTERS = table(CountersSnapshot)
_STATE = table(AtmState)


def _touch(connection: Connection, atm_id: int, now: datetime, **fields: Any) -> None:
    """Record that the ATM was heard from, and set ``fields`` of its latest state."""
    values = {"atm_id": atm_id, "last_seen_at": now, **fields}
    upsert(
        connection,
        _STATE,
        key=["atm_id"],
        values=values,
        update=[name for name in values if name != "atm_id"],
    )


# --- journals -----------------------------------------------------------------------


def append_journal(
    session: Session,
    *,
    device: DeviceIdentity,
    name: str,
    offset: int,
    data: bytes,
    now: datetime,
) -> JournalAck:
    """Store ``data`` at ``offset`` of the ATM's journal ``name``; see the module docstring."""
    check_journal_name(name)
    if offset < 0:
        raise InvalidInput("offset must not be negative.", field="offset")
    connection = session.connection()
    # The first statement writes, so SQLite takes its write lock before anything is read.
    insert_ignoring_duplicates(
        connection,
        _FILES,
        {
            "atm_id": device.atm_id,
            "name": name,
            "size": 0,
            "line_count": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    journal_id, size = connection.execute(
        cached(
            "journal-lock",
            connection,
            lambda: (
                sa.select(_FILES.c.id, _FILES.c.size)
                .where(
                    _FILES.c.atm_id == sa.bindparam("atm_id"), _FILES.c.name == sa.bindparam("name")
                )
                .with_for_update()
            ),
        ),
        {"atm_id": device.atm_id, "name": name},
    ).one()
    if offset > size:
        session.rollback()
        raise OffsetMismatch(
            f"Journal {name} of {device.terminal_id} holds {size} bytes; bytes at offset "
            f"{offset} would leave a gap. Send from offset {size}.",
            extensions={"name": name, "expected_offset": size},
        )
    end = offset + len(data)
    if offset < size and data:
        held = read_range(connection, journal_id, offset, min(end, size))
        if held != data[: len(held)]:
            position = offset + next(
                i for i, (a, b) in enumerate(zip(held, data, strict=False)) if a != b
            )
            session.rollback()
            raise JournalConflict(
                f"Journal {name} of {device.terminal_id}: the bytes sent from offset {offset} "
                f"differ from the bytes held, first at offset {position}. A journal only grows.",
                extensions={"name": name, "expected_offset": size, "conflict_offset": position},
            )
    appended = lines = 0
    if end > size:
        new = data[size - offset :]
        appended, lines = len(new), new.count(b"\n")
        connection.execute(
            cached("chunk-insert", connection, _CHUNKS.insert),
            {
                "journal_id": journal_id,
                "start": size,
                "length": appended,
                "data": new,
                "received_at": now,
            },
        )
        connection.execute(
            cached(
                "journal-grow",
                connection,
                lambda: (
                    _FILES.update()
                    .where(_FILES.c.id == sa.bindparam("journal_id"))
                    .values(
                        size=sa.bindparam("size"),
                        line_count=_FILES.c.line_count + sa.bindparam("lines"),
                        updated_at=sa.bindparam("now"),
                    )
                ),
            ),
            {"journal_id": journal_id, "size": end, "lines": lines, "now": now},
        )
        _touch(connection, device.atm_id, now, last_journal_at=now)
    else:
        _touch(connection, device.atm_id, now)
    session.commit()
    return JournalAck(name=name, size=max(size, end), appended=appended, lines=lines)


# --- records -----------------------------------------------------------------------


def _text(value: object, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _check_record(record: RecordIn) -> None:
    if record.kind is RecordKind.CASH_UNITS:
        units = record.data.get("cash_units")
        reason = record.data.get("reason")
        if not isinstance(reason, str) or not reason:
            raise InvalidInput(
                f"record {record.seq}: a cash-unit snapshot needs a reason.", field="records"
            )
        if not isinstance(units, list) or not all(isinstance(u, dict) for u in units):
            raise InvalidInput(
                f"record {record.seq}: cash_units must be a list of XFS cash-unit objects.",
                field="records",
            )
    elif record.kind is RecordKind.EVENT and not isinstance(record.data.get("kind"), str):
        raise InvalidInput(f"record {record.seq}: an event needs a kind.", field="records")


class _LatestState:
    """The ATM's latest state, changed record by record in sequence order."""

    def __init__(self, row: sa.Row[Any] | None) -> None:
        self.fields: dict[str, Any] = {}
        self.devices: dict[str, Any] = dict(row.devices or {}) if row is not None else {}
        self.devices_changed = False

    def status(self, data: dict[str, Any], now: datetime) -> None:
        self.fields.update(
            in_service=data["in_service"] if isinstance(data.get("in_service"), bool) else None,
            safe_door=_text(data.get("safe_door"), 16),
            status_time=_text(data.get("time"), 32),
            status_received_at=now,
        )
        devices = data.get("devices")
        self.devices = dict(devices) if isinstance(devices, dict) else {}
        self.devices_changed = True

    def event(self, data: dict[str, Any], now: datetime) -> None:
        kind = data["kind"]
        self.fields.update(last_event_kind=kind[:32], last_event_at=now)
        if kind == "safe_door" and isinstance(data.get("state"), str):
            self.fields["safe_door"] = data["state"][:16]
        elif kind == "service_mode" and isinstance(data.get("in_service"), bool):
            self.fields["in_service"] = data["in_service"]
        elif kind in ("hardware_error", "hardware_recovered") and isinstance(
            data.get("device"), str
        ):
            if kind == "hardware_recovered":
                health = "ok"
            else:
                health = "fault" if data.get("severity") == "fatal" else "warning"
            self.devices[data["device"]] = health
            self.devices_changed = True

    def counters(self, data: dict[str, Any], now: datetime) -> None:
        self.fields.update(
            cash_units=data["cash_units"],
            counters_reason=str(data["reason"])[:64],
            counters_received_at=now,
        )

    def changes(self) -> dict[str, Any]:
        if self.devices_changed:
            return {**self.fields, "devices": self.devices}
        return self.fields


def _rules_data(record: RecordIn) -> dict[str, Any]:
    """What the rules read of a record, as :mod:`device_rules` reads it back when stored."""
    if record.kind is RecordKind.CASH_UNITS:
        return {"reason": record.data["reason"], "cash_units": record.data["cash_units"]}
    return record.data


@dataclass(frozen=True)
class RulesFollowUp:
    """What the dispatch rules are still to see after an upload committed: the new records
    as they came (when the rules had seen every earlier record of the stream), or
    nothing in hand (they read back what they missed)."""

    atm_id: int
    stream_id: int
    after: int
    records: tuple[tuple[int, RecordKind, dict[str, Any]], ...] = ()


def store_records(
    session: Session,
    *,
    device: DeviceIdentity,
    batch: RecordBatch,
    now: datetime,
) -> tuple[RecordsAck, RulesFollowUp | None]:
    """Store the batch's records the service does not hold yet and commit; the answer for
    the agent, and what is left for :func:`apply_rules` (None: nothing)."""
    for record in batch.records:
        _check_record(record)
    connection = session.connection()
    insert_ignoring_duplicates(
        connection,
        _STREAMS,
        {
            "atm_id": device.atm_id,
            "stream": batch.stream,
            "last_seq": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    stream_id, last_seq, rules_seq = connection.execute(
        cached(
            "stream-lock",
            connection,
            lambda: (
                sa.select(_STREAMS.c.id, _STREAMS.c.last_seq, _STREAMS.c.rules_seq)
                .where(
                    _STREAMS.c.atm_id == sa.bindparam("atm_id"),
                    _STREAMS.c.stream == sa.bindparam("stream"),
                )
                .with_for_update()
            ),
        ),
        {"atm_id": device.atm_id, "stream": batch.stream},
    ).one()
    first = batch.records[0].seq
    if first > last_seq + 1:
        session.rollback()
        raise OffsetMismatch(
            f"Stream {batch.stream} of {device.terminal_id} holds records up to {last_seq}; "
            f"record {first} would leave a gap. Send from record {last_seq + 1}.",
            extensions={"stream": batch.stream, "expected_seq": last_seq + 1},
        )
    new = [record for record in batch.records if record.seq > last_seq]
    if new:
        common = {"stream_id": stream_id, "atm_id": device.atm_id, "received_at": now}
        statuses: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        counters: list[dict[str, Any]] = []
        state = _LatestState(
            connection.execute(
                sa.select(_STATE.c.devices).where(_STATE.c.atm_id == device.atm_id)
            ).first()
        )
        for record in new:
            row = {**common, "seq": record.seq, "stored_at": record.stored_at}
            data = record.data
            if record.kind is RecordKind.STATUS:
                statuses.append(
                    {
                        **row,
                        "device_time": _text(data.get("time"), 32),
                        "in_service": data.get("in_service")
                        if isinstance(data.get("in_service"), bool)
                        else None,
                        "safe_door": _text(data.get("safe_door"), 16),
                        "data": data,
                    }
                )
                state.status(data, now)
            elif record.kind is RecordKind.EVENT:
                events.append(
                    {
                        **row,
                        "kind": str(data["kind"])[:32],
                        "device_time": _text(data.get("time"), 32),
                        "data": data,
                    }
                )
                state.event(data, now)
            else:
                counters.append(
                    {
                        **row,
                        "reason": str(data["reason"])[:64],
                        "cash_units": data["cash_units"],
                    }
                )
                state.counters(data, now)
        for target, rows in ((_STATUS, statuses), (_EVENTS, events), (_COUNTERS, counters)):
            if rows:
                connection.execute(target.insert(), rows)
        connection.execute(
            _STREAMS.update()
            .where(_STREAMS.c.id == stream_id)
            .values(last_seq=new[-1].seq, updated_at=now)
        )
        _touch(connection, device.atm_id, now, **state.changes())
    else:
        _touch(connection, device.atm_id, now)
    session.commit()
    follow_up = None
    if new and rules_seq == last_seq:
        # The rules had seen everything before this batch: they get the new records as
        # they are, rather than reading them back.
        follow_up = RulesFollowUp(
            atm_id=device.atm_id,
            stream_id=stream_id,
            after=last_seq,
            records=tuple((record.seq, record.kind, _rules_data(record)) for record in new),
        )
    elif rules_seq < last_seq:
        follow_up = RulesFollowUp(atm_id=device.atm_id, stream_id=stream_id, after=rules_seq)
    ack = RecordsAck(
        stream=batch.stream,
        acked_seq=max(last_seq, batch.records[-1].seq),
        stored=len(new),
        duplicates=len(batch.records) - len(new),
    )
    return ack, follow_up


def streams_behind_rules(session: Session) -> int:
    """How many record streams hold records the dispatch rules have not seen yet.

    The rules follow each upload's answer by a moment, and a heartbeat applies what a
    restart left behind: a count above zero that stays there means they are stuck."""
    return int(
        session.connection()
        .execute(
            sa.select(sa.func.count())
            .select_from(_STREAMS)
            .where(_STREAMS.c.rules_seq < _STREAMS.c.last_seq)
        )
        .scalar_one()
    )


def apply_rules(
    session: Session,
    follow_up: RulesFollowUp,
    *,
    now: datetime,
    road_speed_kmh: float = DEFAULT_ROAD_SPEED_KMH,
) -> device_rules.RulesReport:
    """Hand the dispatch rules what an upload left for them, each record once."""
    if follow_up.records:
        return device_rules.apply_stored(
            session,
            atm_id=follow_up.atm_id,
            stream_id=follow_up.stream_id,
            after=follow_up.after,
            records=follow_up.records,
            now=now,
            road_speed_kmh=road_speed_kmh,
        )
    return device_rules.apply_pending(
        session,
        atm_id=follow_up.atm_id,
        stream_id=follow_up.stream_id,
        now=now,
        road_speed_kmh=road_speed_kmh,
    )


def ingest_records(
    session: Session,
    *,
    device: DeviceIdentity,
    batch: RecordBatch,
    now: datetime,
    road_speed_kmh: float = DEFAULT_ROAD_SPEED_KMH,
) -> RecordsAck:
    """Store the batch's records, then apply the dispatch rules to those they have not
    seen, in one call; see the module docstring."""
    ack, follow_up = store_records(session, device=device, batch=batch, now=now)
    if follow_up is not None:
        apply_rules(session, follow_up, now=now, road_speed_kmh=road_speed_kmh)
    return ack


# --- heartbeats --------------------------------------------------------------------


def record_heartbeat(
    session: Session,
    *,
    device: DeviceIdentity,
    beat: HeartbeatIn,
    now: datetime,
    road_speed_kmh: float = DEFAULT_ROAD_SPEED_KMH,
) -> HeartbeatReply:
    """Keep the agent's reported state; answer with the time, the stream's position and the
    ATM's waiting commands; catch the dispatch rules up on the stream if they fell behind."""
    lag = None
    if beat.oldest_pending_at is not None:
        # Both times are the agent's, so its clock offset cancels out.
        lag = max(0, int((beat.sent_at - beat.oldest_pending_at).total_seconds()))
    elif beat.backlog_bytes == 0 and beat.backlog_records == 0:
        lag = 0
    connection = session.connection()
    _touch(
        connection,
        device.atm_id,
        now,
        last_heartbeat_at=now,
        agent_version=beat.agent_version,
        agent_started_at=beat.started_at,
        link_state=beat.link,
        agent_error=beat.last_error,
        backlog_bytes=beat.backlog_bytes,
        backlog_records=beat.backlog_records,
        ingest_lag_s=lag,
    )
    position = connection.execute(
        cached(
            "stream-position",
            connection,
            lambda: sa.select(_STREAMS.c.id, _STREAMS.c.last_seq, _STREAMS.c.rules_seq).where(
                _STREAMS.c.atm_id == sa.bindparam("atm_id"),
                _STREAMS.c.stream == sa.bindparam("stream"),
            ),
        ),
        {"atm_id": device.atm_id, "stream": beat.stream},
    ).first()
    commands = device_commands.collect(connection, atm_id=device.atm_id, now=now)
    session.commit()
    if position is not None and position.rules_seq < position.last_seq:
        device_rules.apply_pending(
            session,
            atm_id=device.atm_id,
            stream_id=position.id,
            now=now,
            road_speed_kmh=road_speed_kmh,
        )
    return HeartbeatReply(
        terminal_id=device.terminal_id,
        server_time=now,
        acked_seq=position.last_seq if position is not None else 0,
        commands=commands,
    )
