"""Reading a data set for the tests, independently of the simulators."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import iso8583
from iso8583.specs import default_ascii


def iso_messages(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    messages = []
    offset = 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 2], "big")
        raw = data[offset + 2 : offset + 2 + length]
        assert len(raw) == length, f"{path.name}: record at {offset} is truncated"
        decoded, _ = iso8583.decode(raw, default_ascii)
        decoded["raw"] = raw
        messages.append(decoded)
        offset += 2 + length
    return messages


def csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]


def truth(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def counters(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result
