"""Reads the test vectors out of ``docs/protocol.md`` and rebuilds what they describe.

A vector is a fenced block whose info string is ``vector``: lines ``key: value``,
where a key with nothing after the colon takes the indented hex lines that
follow. ``message`` is JSON naming a message class (``"type"``) and its fields;
a field ending in ``_ascii`` or ``_hex`` gives bytes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from device_agent.protocol import (
    Connection,
    JournalData,
    JournalInfo,
    JournalRead,
    Priority,
    Query,
    Received,
    Role,
    SessionStarted,
)
from device_agent.protocol import messages as message_module
from device_agent.protocol.messages import Message

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BLOCK = re.compile(r"^```vector\n(.*?)^```", re.MULTILINE | re.DOTALL)


def load(path: Path = DOC) -> list[dict[str, str]]:
    vectors: list[dict[str, str]] = []
    for match in BLOCK.finditer(path.read_text(encoding="utf-8")):
        vector: dict[str, str] = {}
        key = ""
        for line in match.group(1).splitlines():
            if line.startswith(" ") and key:
                vector[key] = (vector[key] + " " + line.strip()).strip()
            elif line.strip():
                key, _, value = line.partition(":")
                key = key.strip()
                vector[key] = value.strip()
        vectors.append(vector)
    return vectors


def hex_bytes(text: str) -> bytes:
    return bytes.fromhex(re.sub(r"\s+", "", text))


def message_from_json(data: dict[str, Any]) -> Message:
    fields = dict(data)
    cls = getattr(message_module, fields.pop("type"))
    for key in list(fields):
        if key.endswith("_ascii"):
            fields[key.removesuffix("_ascii")] = fields.pop(key).encode("ascii")
        elif key.endswith("_hex"):
            fields[key.removesuffix("_hex")] = hex_bytes(fields.pop(key))
    if cls is message_module.JournalInfo:
        fields["journals"] = tuple(tuple(entry) for entry in fields["journals"])
    if cls is message_module.Ack:
        fields["received"] = tuple(fields["received"])
    message: Message = cls(**fields)
    return message


HOST_SESSION = 0x1A2B3C4D
DEVICE_SESSION = 0x5E6F7081
TRANSCRIPT_JOURNAL = ("20261116", b"Card Inserted (520473XXXXXX0780)\n")


def transcript() -> list[tuple[str, bytes]]:
    """The frames of a first contact, as ``docs/protocol.md`` describes it, end by end.

    Both ends start at time 0 with the session ids above (device boot id 7,
    terminal T1000001) and take turns, host first; each turn an end's application
    handles what has arrived, then the end puts at most one frame on the line,
    which the other end receives at once. The host answers the session's start
    with QUERY(all) and each JOURNAL_INFO with a JOURNAL_READ; the device answers
    QUERY with one JOURNAL_INFO and the read with the journal's one chunk.
    Time does not advance, so no timer fires.
    """
    name, data = TRANSCRIPT_JOURNAL
    host = Connection(Role.HOST, now=0.0, session_ids=lambda: HOST_SESSION)
    device = Connection(
        Role.DEVICE,
        now=0.0,
        session_ids=lambda: DEVICE_SESSION,
        boot_id=7,
        terminal_id="T1000001",
    )

    def host_app() -> None:
        while (item := host.next_item()) is not None:
            if isinstance(item, SessionStarted):
                host.send(Query(journals=True, status=False, cash_units=False))
            elif isinstance(item, Received) and isinstance(item.message, JournalInfo):
                for journal, size in item.message.journals:
                    host.send(JournalRead(journal, 0, size))
            host.pop_item()

    def device_app() -> None:
        while (item := device.next_item()) is not None:
            if isinstance(item, Received) and isinstance(item.message, Query):
                device.send(JournalInfo(((name, len(data)),)))
            elif isinstance(item, Received) and isinstance(item.message, JournalRead):
                device.send(JournalData(name, 0, data, True), Priority.LOW)
            device.pop_item()

    frames: list[tuple[str, bytes]] = []
    turns = (("host", host, device, host_app), ("device", device, host, device_app))
    for _ in range(100):
        progressed = False
        for label, end, other, app in turns:
            app()
            wire = end.next_frame(0.0)
            if wire is not None:
                frames.append((label, wire))
                other.receive(wire, 0.0)
                progressed = True
        if not progressed:
            break
    return frames
