"""The structured records the link carries as JSON: device status, events and command results.

Their payloads are canonical JSON (RFC 8259): UTF-8, object keys sorted, no
whitespace, no NaN or infinities, so one record has exactly one encoding. The
shapes are those of the device interface (status, the unsolicited events, command
results); a record that breaks its shape is refused on both sides of the line,
with a message that names the field. Keys beyond the required ones are carried
unchanged, so either side can add detail without a new protocol version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime

from device_agent.protocol.errors import EncodeError, PayloadError

DEVICE_STATES = frozenset({"ok", "warning", "fault"})
DEVICE_NAMES = frozenset(
    {"dispenser", "card_reader", "receipt_printer", "journal_printer", "encrypting_pin_pad"}
)
SAFE_DOOR_STATES = frozenset({"open", "closed"})
THRESHOLD_STATES = frozenset({"low", "empty", "high", "full", "ok"})
CASH_UNIT_ERRORS = frozenset({"jam", "missing", "inop", "pick_failure"})
SEVERITIES = frozenset({"fatal", "warning"})
EVENT_KINDS = frozenset(
    {
        "cash_unit_threshold",
        "cash_unit_error",
        "hardware_error",
        "hardware_recovered",
        "safe_door",
        "service_mode",
    }
)
COMMANDS = frozenset({"send_counters", "go_out_of_service", "go_in_service"})
MAX_DEPTH = 16


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def encode_json(record: Mapping[str, object]) -> bytes:
    """Canonical JSON of ``record``."""
    try:
        text = json.dumps(
            record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodeError(f"not representable as JSON: {exc}") from exc
    return text.encode("utf-8")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed")


def decode_json(payload: bytes) -> dict[str, object]:
    """The JSON object in ``payload``; :class:`PayloadError` for anything else."""
    try:
        value = json.loads(bytes(payload).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"payload is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise PayloadError(f"payload is JSON {type(value).__name__}, an object was expected")
    if _depth(value) > MAX_DEPTH:
        raise PayloadError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: object, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level)
    return level


def _require(record: Mapping[str, object], key: str, kind: type, where: str = "") -> object:
    field = f"{where}{key}"
    if key not in record:
        raise _Invalid(field, "missing")
    value = record[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise _Invalid(field, f"must be an integer, got {value!r}")
    if not isinstance(value, kind):
        raise _Invalid(field, f"must be a {kind.__name__}, got {value!r}")
    return value


def _require_choice(record: Mapping[str, object], key: str, choices: frozenset[str]) -> None:
    value = _require(record, key, str)
    if value not in choices:
        raise _Invalid(key, f"must be one of {', '.join(sorted(choices))}, got {value!r}")


def _require_time(record: Mapping[str, object]) -> None:
    value = _require(record, "time", str)
    assert isinstance(value, str)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid("time", f"not an ISO 8601 local time: {value!r}") from None
    if parsed.tzinfo is not None:
        raise _Invalid("time", f"terminal local time carries no offset, got {value!r}")


def _check_status(status: Mapping[str, object]) -> None:
    _require_time(status)
    _require(status, "in_service", bool)
    _require_choice(status, "safe_door", SAFE_DOOR_STATES)
    devices = _require(status, "devices", dict)
    assert isinstance(devices, dict)
    for name, state in devices.items():
        if state not in DEVICE_STATES:
            raise _Invalid(f"devices.{name}", f"must be one of ok, warning, fault, got {state!r}")
    if "details" in status:
        details = _require(status, "details", dict)
        assert isinstance(details, dict)
        for name, text in details.items():
            if not isinstance(text, str):
                raise _Invalid(f"details.{name}", f"must be a string, got {text!r}")


def _check_event(event: Mapping[str, object]) -> None:
    kind = _require(event, "kind", str)
    _require_time(event)
    if kind == "cash_unit_threshold":
        _require(event, "unit", int)
        _require_choice(event, "status", THRESHOLD_STATES)
    elif kind == "cash_unit_error":
        _require(event, "unit", int)
        _require_choice(event, "error", CASH_UNIT_ERRORS)
    elif kind == "hardware_error":
        _require(event, "device", str)
        _require_choice(event, "severity", SEVERITIES)
        _require(event, "code", str)
        _require(event, "description", str)
    elif kind == "hardware_recovered":
        _require(event, "device", str)
    elif kind == "safe_door":
        _require_choice(event, "state", SAFE_DOOR_STATES)
    elif kind == "service_mode":
        _require(event, "in_service", bool)
        _require(event, "reason", str)
    # Other kinds need only a kind and a time: a newer device may report more.


def _check_command_result(result: Mapping[str, object]) -> None:
    _require(result, "ok", bool)


def _checked_encoder(
    check: Callable[[Mapping[str, object]], None], what: str
) -> Callable[[Mapping[str, object]], bytes]:
    def encode(record: Mapping[str, object]) -> bytes:
        if not isinstance(record, Mapping):
            raise EncodeError(f"{what} must be a mapping, got {type(record).__name__}")
        try:
            check(record)
        except _Invalid as exc:
            raise EncodeError(exc.message, field=f"{what}.{exc.field}") from None
        return encode_json(record)

    return encode


def _checked_decoder(
    check: Callable[[Mapping[str, object]], None], what: str
) -> Callable[[bytes], dict[str, object]]:
    def decode(payload: bytes) -> dict[str, object]:
        record = decode_json(payload)
        try:
            check(record)
        except _Invalid as exc:
            raise PayloadError(f"{what}.{exc.field}: {exc.message}") from None
        return record

    return decode


encode_status = _checked_encoder(_check_status, "status")
decode_status = _checked_decoder(_check_status, "status")
encode_event = _checked_encoder(_check_event, "event")
decode_event = _checked_decoder(_check_event, "event")
encode_command_result = _checked_encoder(_check_command_result, "result")
decode_command_result = _checked_decoder(_check_command_result, "result")
