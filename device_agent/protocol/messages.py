"""The messages of the device link and their payload layouts.

Types below 0x10 are link control and are never sequenced (HELLO, ACK); types
from 0x10 up are sequenced, acknowledged and retransmitted until acknowledged.
Host (agent) to device: QUERY, JOURNAL_READ, COMMAND. Device to host:
JOURNAL_INFO, JOURNAL_DATA, JOURNAL_ERROR, CASH_UNITS, STATUS, EVENT,
COMMAND_RESULT. The byte layout of each payload is in ``docs/protocol.md`` and in
the docstring of each message class; integers are unsigned big-endian.

``encode_message`` turns a message into ``(type, payload)``; ``decode_message``
does the reverse and raises only :class:`PayloadError` (or its subclass
:class:`UnknownMessageType`) on bytes that do not fit.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeAlias

from device_agent.protocol import cash_units, records
from device_agent.protocol.errors import DecodeError, EncodeError, PayloadError, UnknownMessageType

U8 = struct.Struct(">B")
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
NAME_PATTERN = re.compile(r"[0-9A-Za-z_.-]{1,32}")
TERMINAL_ID_MAX = 16
REASON_PATTERN = re.compile(r"[a-z_]{1,32}")
MAX_JOURNAL_ENTRIES = 64
MAX_WINDOW = 1024
FIRST_SEQUENCED = 0x10


class MessageType(IntEnum):
    HELLO = 0x01
    ACK = 0x02
    QUERY = 0x10
    JOURNAL_READ = 0x11
    COMMAND = 0x12
    JOURNAL_INFO = 0x20
    JOURNAL_DATA = 0x21
    JOURNAL_ERROR = 0x22
    CASH_UNITS = 0x23
    STATUS = 0x24
    EVENT = 0x25
    COMMAND_RESULT = 0x26


def is_sequenced(type_code: int) -> bool:
    """Whether frames of this type carry a sequence number and are acknowledged."""
    return type_code >= FIRST_SEQUENCED


class JournalErrorCode(IntEnum):
    UNKNOWN_JOURNAL = 1
    OFFSET_BEYOND_END = 2
    READ_FAILED = 3


@dataclass(frozen=True, slots=True)
class Hello:
    """HELLO (0x01), both directions, unsequenced: opens or re-opens a session.

    session u32, peer u32, flags u8 (bit 0 ANSWER: please answer; bit 1 DEVICE: the
    sender is the device), window u16, max_payload u16, boot_id u64,
    terminal_id (u8 length + ASCII, 0..16 characters).
    """

    session: int
    peer: int
    answer: bool
    device: bool
    window: int
    max_payload: int
    boot_id: int = 0
    terminal_id: str = ""


@dataclass(frozen=True, slots=True)
class Ack:
    """ACK (0x02), both directions, unsequenced: the header's ack field plus a bitmap.

    The payload is a bitmap of frames received beyond the first missing one: bit 7 of
    byte 0 is sequence number ack+1, bit 6 is ack+2, and so on. Trailing zero bytes
    are left out, so a plain cumulative ACK has an empty payload.
    """

    received: tuple[int, ...] = ()
    """Offsets i (0-based, ascending) such that frame ack+1+i has been received."""


@dataclass(frozen=True, slots=True)
class Query:
    """QUERY (0x10), host to device: send these now. u8 bits: 0 journals, 1 status, 2 cash units."""

    journals: bool = False
    status: bool = False
    cash_units: bool = False


@dataclass(frozen=True, slots=True)
class JournalRead:
    """JOURNAL_READ (0x11), host to device: name (u8 length + ASCII), offset u32, length u32.

    Length 0 asks for everything from ``offset`` to the journal's current end.
    """

    name: str
    offset: int
    length: int = 0


@dataclass(frozen=True, slots=True)
class Command:
    """COMMAND (0x12), host to device: request_id u32, then the command in ASCII."""

    request_id: int
    command: str


@dataclass(frozen=True, slots=True)
class JournalInfo:
    """JOURNAL_INFO (0x20), device to host: count u8, then count × (name, size u32).

    The size of each journal named; sent in answer to a QUERY and whenever a journal
    grows or a new one starts. Oldest first.
    """

    journals: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class JournalData:
    """JOURNAL_DATA (0x21), device to host: name, offset u32, flags u8 (bit 0 LAST), data.

    ``data`` is the journal's bytes from ``offset``; LAST marks the final chunk of a
    JOURNAL_READ (possibly empty when the journal ended sooner).
    """

    name: str
    offset: int
    data: bytes
    last: bool = False


@dataclass(frozen=True, slots=True)
class JournalError:
    """JOURNAL_ERROR (0x22), device to host: name, offset u32, code u8, text (UTF-8)."""

    name: str
    offset: int
    code: int
    text: str = ""


@dataclass(frozen=True, slots=True)
class CashUnits:
    """CASH_UNITS (0x23), device to host: reason (u8 length + ASCII), then the units.

    The units are laid out as in :mod:`device_agent.protocol.cash_units`.
    """

    reason: str
    units: list[dict[str, object]] = field(hash=False)


@dataclass(frozen=True, slots=True)
class Status:
    """STATUS (0x24), device to host: the device status as canonical JSON."""

    status: dict[str, object] = field(hash=False)


@dataclass(frozen=True, slots=True)
class Event:
    """EVENT (0x25), device to host: event_id u64, then the event as canonical JSON."""

    event_id: int
    event: dict[str, object] = field(hash=False)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """COMMAND_RESULT (0x26), device to host: request_id u32, then the result as canonical JSON."""

    request_id: int
    result: dict[str, object] = field(hash=False)


Message: TypeAlias = (
    Hello
    | Ack
    | Query
    | JournalRead
    | Command
    | JournalInfo
    | JournalData
    | JournalError
    | CashUnits
    | Status
    | Event
    | CommandResult
)

HELLO_FIXED = struct.Struct(">IIBHHQ")
HELLO_ANSWER = 0x01
HELLO_DEVICE = 0x02
QUERY_JOURNALS, QUERY_STATUS, QUERY_CASH_UNITS = 0x01, 0x02, 0x04
DATA_LAST = 0x01


# -- encoding -----------------------------------------------------------------------------------


def _uint(value: object, bits: int, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"must be an integer, got {value!r}", field=field_name)
    if not 0 <= value < 1 << bits:
        raise EncodeError(f"must be 0..{(1 << bits) - 1}, got {value}", field=field_name)
    return value


def _name(value: object, field_name: str = "name") -> bytes:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise EncodeError(f"must be 1 to 32 of 0-9 A-Z a-z _ . -, got {value!r}", field=field_name)
    return bytes([len(value)]) + value.encode("ascii")


def _short_ascii(
    value: object, field_name: str, pattern: re.Pattern[str] | None, limit: int
) -> bytes:
    if not isinstance(value, str) or not value.isascii() or len(value) > limit:
        raise EncodeError(
            f"must be ASCII, at most {limit} characters, got {value!r}", field=field_name
        )
    if pattern is not None and not pattern.fullmatch(value):
        raise EncodeError(f"must match {pattern.pattern}, got {value!r}", field=field_name)
    if not value.isprintable():
        raise EncodeError(f"must be printable, got {value!r}", field=field_name)
    return bytes([len(value)]) + value.encode("ascii")


def encode_message(message: Message) -> tuple[MessageType, bytes]:
    """The frame type and payload for ``message``; :class:`EncodeError` names a bad field."""
    if isinstance(message, Hello):
        if not 1 <= _uint(message.window, 16, "window") <= MAX_WINDOW:
            raise EncodeError(f"must be 1..{MAX_WINDOW}", field="window")
        flags = (HELLO_ANSWER if message.answer else 0) | (HELLO_DEVICE if message.device else 0)
        payload = HELLO_FIXED.pack(
            _uint(message.session, 32, "session"),
            _uint(message.peer, 32, "peer"),
            flags,
            message.window,
            _uint(message.max_payload, 16, "max_payload"),
            _uint(message.boot_id, 64, "boot_id"),
        ) + _short_ascii(message.terminal_id, "terminal_id", None, TERMINAL_ID_MAX)
        return MessageType.HELLO, payload
    if isinstance(message, Ack):
        return MessageType.ACK, _bitmap(message.received)
    if isinstance(message, Query):
        bits = (
            (QUERY_JOURNALS if message.journals else 0)
            | (QUERY_STATUS if message.status else 0)
            | (QUERY_CASH_UNITS if message.cash_units else 0)
        )
        return MessageType.QUERY, bytes([bits])
    if isinstance(message, JournalRead):
        return MessageType.JOURNAL_READ, (
            _name(message.name)
            + U32.pack(_uint(message.offset, 32, "offset"))
            + U32.pack(_uint(message.length, 32, "length"))
        )
    if isinstance(message, Command):
        if message.command not in records.COMMANDS:
            raise EncodeError(
                f"must be one of {', '.join(sorted(records.COMMANDS))}, got {message.command!r}",
                field="command",
            )
        return MessageType.COMMAND, (
            U32.pack(_uint(message.request_id, 32, "request_id")) + message.command.encode("ascii")
        )
    if isinstance(message, JournalInfo):
        if len(message.journals) > MAX_JOURNAL_ENTRIES:
            raise EncodeError(
                f"{len(message.journals)} entries, at most {MAX_JOURNAL_ENTRIES}", field="journals"
            )
        out = bytearray([len(message.journals)])
        for index, entry in enumerate(message.journals):
            name, size = entry
            out += _name(name, f"journals[{index}].name")
            out += U32.pack(_uint(size, 32, f"journals[{index}].size"))
        return MessageType.JOURNAL_INFO, bytes(out)
    if isinstance(message, JournalData):
        if not isinstance(message.data, bytes | bytearray | memoryview):
            raise EncodeError("must be bytes", field="data")
        return MessageType.JOURNAL_DATA, (
            _name(message.name)
            + U32.pack(_uint(message.offset, 32, "offset"))
            + bytes([DATA_LAST if message.last else 0])
            + bytes(message.data)
        )
    if isinstance(message, JournalError):
        if not isinstance(message.text, str):
            raise EncodeError("must be a string", field="text")
        return MessageType.JOURNAL_ERROR, (
            _name(message.name)
            + U32.pack(_uint(message.offset, 32, "offset"))
            + bytes([_uint(message.code, 8, "code")])
            + message.text.encode("utf-8")
        )
    if isinstance(message, CashUnits):
        return MessageType.CASH_UNITS, (
            _short_ascii(message.reason, "reason", REASON_PATTERN, 32)
            + cash_units.encode_units(message.units)
        )
    if isinstance(message, Status):
        return MessageType.STATUS, records.encode_status(message.status)
    if isinstance(message, Event):
        return MessageType.EVENT, (
            U64.pack(_uint(message.event_id, 64, "event_id")) + records.encode_event(message.event)
        )
    if isinstance(message, CommandResult):
        return MessageType.COMMAND_RESULT, (
            U32.pack(_uint(message.request_id, 32, "request_id"))
            + records.encode_command_result(message.result)
        )
    raise EncodeError(f"not a message: {type(message).__name__}")


def _bitmap(received: tuple[int, ...]) -> bytes:
    if not received:
        return b""
    for offset in received:
        _uint(offset, 16, "received")
    top = max(received)
    if top >= MAX_WINDOW:
        raise EncodeError(f"offsets must be below {MAX_WINDOW}, got {top}", field="received")
    out = bytearray(top // 8 + 1)
    for offset in received:
        out[offset // 8] |= 0x80 >> (offset % 8)
    return bytes(out)


# -- decoding -----------------------------------------------------------------------------------


class _Reader:
    """Reads fields off a payload, raising PayloadError when it runs short."""

    def __init__(self, payload: bytes, what: str) -> None:
        self.data = bytes(payload)
        self.position = 0
        self.what = what

    def take(self, size: int, field_name: str) -> bytes:
        end = self.position + size
        if end > len(self.data):
            raise PayloadError(f"{self.what}: payload ends inside {field_name}")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def unpack(self, layout: struct.Struct, field_name: str) -> tuple[int, ...]:
        return layout.unpack(self.take(layout.size, field_name))

    def u8(self, field_name: str) -> int:
        return self.take(1, field_name)[0]

    def u32(self, field_name: str) -> int:
        return int(U32.unpack(self.take(4, field_name))[0])

    def u64(self, field_name: str) -> int:
        return int(U64.unpack(self.take(8, field_name))[0])

    def name(self, field_name: str = "name") -> str:
        size = self.u8(f"{field_name} length")
        raw = self.take(size, field_name)
        text = raw.decode("ascii", errors="replace")
        if not NAME_PATTERN.fullmatch(text):
            raise PayloadError(f"{self.what}: {field_name} {raw!r} is not a journal name")
        return text

    def short_ascii(self, field_name: str, pattern: re.Pattern[str] | None, limit: int) -> str:
        size = self.u8(f"{field_name} length")
        raw = self.take(size, field_name)
        if size > limit or not raw.isascii() or not raw.decode("ascii").isprintable():
            raise PayloadError(f"{self.what}: {field_name} {raw!r} is not printable ASCII")
        text = raw.decode("ascii")
        if pattern is not None and not pattern.fullmatch(text):
            raise PayloadError(
                f"{self.what}: {field_name} {text!r} does not match {pattern.pattern}"
            )
        return text

    def rest(self) -> bytes:
        chunk = self.data[self.position :]
        self.position = len(self.data)
        return chunk

    def end(self) -> None:
        if self.position != len(self.data):
            raise PayloadError(
                f"{self.what}: {len(self.data) - self.position} unexpected bytes at the end"
            )


def decode_message(type_code: int, payload: bytes) -> Message:
    """The message of this type in ``payload``; :class:`PayloadError` if it does not fit."""
    try:
        kind = MessageType(type_code)
    except ValueError:
        raise UnknownMessageType(type_code) from None
    try:
        return _DECODERS[kind](_Reader(payload, kind.name))
    except DecodeError:
        raise
    except (ValueError, UnicodeDecodeError, struct.error) as exc:  # pragma: no cover - defensive
        raise PayloadError(f"{kind.name}: {exc}") from exc


def _decode_hello(reader: _Reader) -> Hello:
    session, peer, flags, window, max_payload, boot_id = reader.unpack(HELLO_FIXED, "header")
    if flags & ~(HELLO_ANSWER | HELLO_DEVICE):
        raise PayloadError(f"HELLO: reserved flag bits 0x{flags:02x}")
    if not 1 <= window <= MAX_WINDOW:
        raise PayloadError(f"HELLO: window {window} is not 1..{MAX_WINDOW}")
    terminal_id = reader.short_ascii("terminal_id", None, TERMINAL_ID_MAX)
    reader.end()
    return Hello(
        session=session,
        peer=peer,
        answer=bool(flags & HELLO_ANSWER),
        device=bool(flags & HELLO_DEVICE),
        window=window,
        max_payload=max_payload,
        boot_id=boot_id,
        terminal_id=terminal_id,
    )


def _decode_ack(reader: _Reader) -> Ack:
    bitmap = reader.rest()
    if len(bitmap) > MAX_WINDOW // 8:
        raise PayloadError(f"ACK: bitmap of {len(bitmap)} bytes, at most {MAX_WINDOW // 8}")
    received = tuple(
        index * 8 + bit
        for index, byte in enumerate(bitmap)
        for bit in range(8)
        if byte & (0x80 >> bit)
    )
    return Ack(received)


def _decode_query(reader: _Reader) -> Query:
    bits = reader.u8("bits")
    reader.end()
    if bits & ~(QUERY_JOURNALS | QUERY_STATUS | QUERY_CASH_UNITS):
        raise PayloadError(f"QUERY: reserved bits 0x{bits:02x}")
    return Query(
        journals=bool(bits & QUERY_JOURNALS),
        status=bool(bits & QUERY_STATUS),
        cash_units=bool(bits & QUERY_CASH_UNITS),
    )


def _decode_journal_read(reader: _Reader) -> JournalRead:
    name = reader.name()
    offset = reader.u32("offset")
    length = reader.u32("length")
    reader.end()
    return JournalRead(name, offset, length)


def _decode_command(reader: _Reader) -> Command:
    request_id = reader.u32("request_id")
    raw = reader.rest()
    text = raw.decode("ascii", errors="replace")
    if text not in records.COMMANDS:
        raise PayloadError(f"COMMAND: unknown command {raw!r}")
    return Command(request_id, text)


def _decode_journal_info(reader: _Reader) -> JournalInfo:
    count = reader.u8("count")
    if count > MAX_JOURNAL_ENTRIES:
        raise PayloadError(f"JOURNAL_INFO: {count} entries, at most {MAX_JOURNAL_ENTRIES}")
    entries = tuple(
        (reader.name(f"journals[{i}].name"), reader.u32(f"journals[{i}].size"))
        for i in range(count)
    )
    reader.end()
    return JournalInfo(entries)


def _decode_journal_data(reader: _Reader) -> JournalData:
    name = reader.name()
    offset = reader.u32("offset")
    flags = reader.u8("flags")
    if flags & ~DATA_LAST:
        raise PayloadError(f"JOURNAL_DATA: reserved flag bits 0x{flags:02x}")
    data = reader.rest()
    if offset + len(data) > 0xFFFFFFFF:
        raise PayloadError("JOURNAL_DATA: data runs past offset 2**32 - 1")
    return JournalData(name, offset, data, bool(flags & DATA_LAST))


def _decode_journal_error(reader: _Reader) -> JournalError:
    name = reader.name()
    offset = reader.u32("offset")
    code = reader.u8("code")
    raw = reader.rest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("JOURNAL_ERROR: text is not UTF-8") from None
    return JournalError(name, offset, code, text)


def _decode_cash_units(reader: _Reader) -> CashUnits:
    reason = reader.short_ascii("reason", REASON_PATTERN, 32)
    units = cash_units.decode_units(reader.rest())
    return CashUnits(reason, units)


def _decode_status(reader: _Reader) -> Status:
    return Status(records.decode_status(reader.rest()))


def _decode_event(reader: _Reader) -> Event:
    event_id = reader.u64("event_id")
    return Event(event_id, records.decode_event(reader.rest()))


def _decode_command_result(reader: _Reader) -> CommandResult:
    request_id = reader.u32("request_id")
    return CommandResult(request_id, records.decode_command_result(reader.rest()))


_DECODERS: dict[MessageType, Callable[[_Reader], Message]] = {
    MessageType.HELLO: _decode_hello,
    MessageType.ACK: _decode_ack,
    MessageType.QUERY: _decode_query,
    MessageType.JOURNAL_READ: _decode_journal_read,
    MessageType.COMMAND: _decode_command,
    MessageType.JOURNAL_INFO: _decode_journal_info,
    MessageType.JOURNAL_DATA: _decode_journal_data,
    MessageType.JOURNAL_ERROR: _decode_journal_error,
    MessageType.CASH_UNITS: _decode_cash_units,
    MessageType.STATUS: _decode_status,
    MessageType.EVENT: _decode_event,
    MessageType.COMMAND_RESULT: _decode_command_result,
}
