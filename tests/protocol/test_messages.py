"""Messages: every type round-trips; any payload either decodes or raises PayloadError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_agent.protocol import (
    Ack,
    CashUnits,
    Command,
    EncodeError,
    Event,
    Hello,
    JournalData,
    JournalInfo,
    JournalRead,
    Message,
    MessageType,
    PayloadError,
    Status,
    UnknownMessageType,
    decode_message,
    encode_message,
)
from device_agent.protocol.framing import Frame, frame_from_wire, frame_to_wire
from device_agent.protocol.messages import is_sequenced
from tests.protocol.strategies import messages


@given(messages)
def test_round_trip(message: Message) -> None:
    type_code, payload = encode_message(message)
    assert decode_message(type_code, payload) == message


@given(messages, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_round_trip_through_a_frame(message: Message, seq: int, ack: int) -> None:
    type_code, payload = encode_message(message)
    frame = frame_from_wire(frame_to_wire(Frame(type_code, seq, ack, payload))[:-1])
    assert decode_message(frame.type, frame.payload) == message


@given(st.sampled_from(list(MessageType)), st.binary(max_size=400))
def test_garbage_payloads_raise_only_payload_error(kind: MessageType, payload: bytes) -> None:
    try:
        message = decode_message(kind, payload)
    except PayloadError:
        return
    assert encode_message(message)[0] == kind


@given(messages, st.data())
def test_truncated_payloads_are_refused_or_read_consistently(
    message: Message, data: st.DataObject
) -> None:
    type_code, payload = encode_message(message)
    cut = data.draw(st.integers(0, len(payload)))
    with contextlib.suppress(PayloadError):
        decode_message(type_code, payload[:cut])


@given(st.integers(0, 255).filter(lambda t: t not in set(MessageType)))
def test_unknown_types_are_named(type_code: int) -> None:
    with pytest.raises(UnknownMessageType, match=f"0x{type_code:02x}"):
        decode_message(type_code, b"")


def test_sequenced_types() -> None:
    assert not is_sequenced(MessageType.HELLO)
    assert not is_sequenced(MessageType.ACK)
    assert all(is_sequenced(t) for t in MessageType if t >= 0x10)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (JournalRead("2026/11/16", 0, 0), "name"),
        (JournalRead("20261116", -1, 0), "offset"),
        (JournalRead("20261116", 2**32, 0), "offset"),
        (JournalData("20261116", 0, "text", False), "data"),  # type: ignore[arg-type]
        (JournalInfo((("20261116", 2**32),)), "journals[0].size"),
        (Command(1, "reboot"), "command"),
        (Hello(1, 0, True, False, 0, 2048), "window"),
        (Hello(1, 0, True, False, 32, 2048, terminal_id="T" * 17), "terminal_id"),
        (Ack((1024,)), "received"),
        (CashUnits("Query", []), "reason"),
        (Status({"time": "2026-11-16T08:00:00", "in_service": "yes"}), "status.in_service"),
        (
            Status(
                {
                    "time": "2026-11-16T08:00:00+01:00",
                    "in_service": True,
                    "safe_door": "closed",
                    "devices": {},
                }
            ),
            "status.time",
        ),
        (Event(1, {"kind": "safe_door", "time": "2026-11-16T08:00:00"}), "event.state"),
        (
            Event(1, {"kind": "cash_unit_error", "time": "2026-11-16T08:00:00", "unit": True}),
            "event.unit",
        ),
        (Event(1, {"kind": "safe_door", "time": "x", "state": "open"}), "event.time"),
    ],
)
def test_encode_errors_name_the_field(message: Message, field: str) -> None:
    with pytest.raises(EncodeError) as caught:
        encode_message(message)
    assert caught.value.field == field


def test_json_records_are_canonical() -> None:
    _, payload = encode_message(
        Status(
            {
                "time": "2026-11-16T08:00:00",
                "safe_door": "closed",
                "in_service": True,
                "devices": {"dispenser": "ok", "card_reader": "fault"},
            }
        )
    )
    assert payload == (
        b'{"devices":{"card_reader":"fault","dispenser":"ok"},"in_service":true,'
        b'"safe_door":"closed","time":"2026-11-16T08:00:00"}'
    )


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        (MessageType.STATUS, b"[]", "an object was expected"),
        (MessageType.STATUS, b'{"time": NaN}', "not JSON"),
        (MessageType.STATUS, b"\xff", "not JSON"),
        (MessageType.STATUS, b"[" * 5000, "not JSON"),
        (MessageType.EVENT, bytes(8) + b'{"kind": "safe_door"}', "event.time: missing"),
        (MessageType.QUERY, b"\x08", "reserved bits"),
        (MessageType.QUERY, b"\x01\x00", "unexpected bytes"),
        (MessageType.JOURNAL_DATA, b"\x08202611", "ends inside name"),
        (MessageType.COMMAND, b"\x00\x00\x00\x01reboot", "unknown command"),
        (MessageType.HELLO, bytes(21) + b"\x00", "window 0"),
    ],
)
def test_payload_errors_say_what_is_wrong(kind: MessageType, payload: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_message(kind, payload)


def test_deeply_nested_json_is_refused() -> None:
    nested = b'{"ok": true, "x": ' + b"[" * 20 + b"]" * 20 + b"}"
    with pytest.raises(PayloadError, match="deeper"):
        decode_message(MessageType.COMMAND_RESULT, bytes(4) + nested)


def test_ack_bitmap_layout() -> None:
    assert encode_message(Ack((0, 9)))[1] == bytes([0x80, 0x40])
    assert encode_message(Ack(()))[1] == b""
    assert decode_message(MessageType.ACK, bytes([0x01, 0x00])) == Ack((7,))
