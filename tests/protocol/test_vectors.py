"""The test vectors of docs/protocol.md, checked against the code (and the code against them)."""

from __future__ import annotations

import json

import pytest

from device_agent.protocol import ChecksumError, cobs
from device_agent.protocol.framing import (
    Frame,
    crc32,
    decode_frame,
    encode_frame,
    frame_from_wire,
    frame_to_wire,
    session_binding,
)
from device_agent.protocol.messages import MessageType, decode_message, encode_message
from tests.protocol.test_framing import bitwise_crc32
from tests.protocol.vectors import hex_bytes, load, message_from_json, transcript

VECTORS = load()
BY_KIND = {
    "frame": [v for v in VECTORS if "message" in v],
    "cobs": [v for v in VECTORS if "cobs-data" in v],
    "crc": [v for v in VECTORS if "crc32" in v],
    "transcript": [v for v in VECTORS if any(k.startswith("step-") for k in v)],
}


def test_the_document_has_vectors_of_every_kind() -> None:
    assert all(BY_KIND.values()), {kind: len(v) for kind, v in BY_KIND.items()}
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names))
    covered = {json.loads(v["message"])["type"] for v in BY_KIND["frame"]}
    assert covered == {
        "Hello", "Ack", "Query", "JournalRead", "Command", "JournalInfo", "JournalData",
        "JournalError", "CashUnits", "Status", "Event", "CommandResult",
    }  # fmt: skip


@pytest.mark.parametrize("vector", BY_KIND["frame"], ids=lambda v: v["name"])
def test_frame_vector(vector: dict[str, str]) -> None:
    message = message_from_json(json.loads(vector["message"]))
    raw = hex_bytes(vector["frame"])
    wire = hex_bytes(vector["wire"])
    type_code, payload = encode_message(message)
    frame = Frame(type_code, int(vector["seq"], 0), int(vector["ack"], 0), payload)
    binding = b""
    if type_code != MessageType.HELLO:
        binding = session_binding(int(vector["from-session"], 0), int(vector["to-session"], 0))
        with pytest.raises(ChecksumError):
            decode_frame(raw)  # the CRC covers the sessions: unbound, it does not match
    assert encode_frame(frame, binding).hex(" ") == raw.hex(" ")
    assert frame_to_wire(frame, binding).hex(" ") == wire.hex(" ")
    # Independent of the encoder: the CRC bit by bit, the header by hand, COBS by decoding.
    assert bitwise_crc32(binding + raw[:-4]) == int.from_bytes(raw[-4:], "big")
    assert raw[0] == 1
    assert raw[1] == MessageType[_type_name(message)]
    assert int.from_bytes(raw[6:8], "big") == len(raw) - 12
    assert wire[-1] == 0
    assert 0 not in wire[:-1]
    assert cobs.decode(wire[:-1]) == raw
    decoded = frame_from_wire(wire[:-1], binding)
    assert decode_frame(raw, binding) == decoded == frame
    assert decode_message(decoded.type, decoded.payload) == message


def _type_name(message: object) -> str:
    return {
        "JournalRead": "JOURNAL_READ",
        "JournalInfo": "JOURNAL_INFO",
        "JournalData": "JOURNAL_DATA",
        "JournalError": "JOURNAL_ERROR",
        "CashUnits": "CASH_UNITS",
        "CommandResult": "COMMAND_RESULT",
    }.get(type(message).__name__, type(message).__name__.upper())


@pytest.mark.parametrize("vector", BY_KIND["cobs"], ids=lambda v: v["name"])
def test_cobs_vector(vector: dict[str, str]) -> None:
    data, encoded = hex_bytes(vector["cobs-data"]), hex_bytes(vector["cobs-encoded"])
    assert cobs.encode(data) == encoded
    assert cobs.decode(encoded) == data


@pytest.mark.parametrize("vector", BY_KIND["crc"], ids=lambda v: v["name"])
def test_crc_vector(vector: dict[str, str]) -> None:
    data = vector["crc-input-ascii"].encode("ascii")
    expected = int.from_bytes(hex_bytes(vector["crc32"]), "big")
    assert crc32(data) == bitwise_crc32(data) == expected


def test_first_contact_transcript() -> None:
    (vector,) = BY_KIND["transcript"]
    steps = [
        (key.rsplit("-", 1)[1], hex_bytes(value))
        for key, value in vector.items()
        if key.startswith("step-")
    ]
    produced = transcript()
    assert [who for who, _ in produced] == [who for who, _ in steps]
    for (who, wire), (_, expected) in zip(produced, steps, strict=True):
        assert wire.hex(" ") == expected.hex(" "), who
