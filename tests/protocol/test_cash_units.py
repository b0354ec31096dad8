"""Cash units: the XFS dicts of the sample counters files survive the wire exactly."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_agent.protocol import EncodeError, PayloadError
from device_agent.protocol.cash_units import PHYSICAL, UNIT, decode_units, encode_units
from tests.protocol.strategies import cash_unit
from tests.samples import sample_dir


def test_every_sample_snapshot_round_trips() -> None:
    files = sorted(sample_dir("counters").glob("*.json"))
    assert files
    snapshots = 0
    for path in files:
        for snapshot in json.loads(path.read_text())["snapshots"]:
            units = snapshot["cash_units"]
            wire = encode_units(units)
            with_physical = sum("physical_count" in unit for unit in units)
            assert len(wire) == 1 + len(units) * UNIT.size + with_physical * PHYSICAL.size
            assert decode_units(wire) == units
            assert [list(unit) for unit in decode_units(wire)] == [list(unit) for unit in units]
            snapshots += 1
    assert snapshots >= 12 * 3


@given(st.lists(cash_unit, max_size=8))
def test_round_trip(units: list[dict[str, object]]) -> None:
    assert decode_units(encode_units(units)) == units


@given(st.binary(max_size=300))
def test_garbage_raises_only_payload_error(data: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decode_units(data)


UNIT_OK: dict[str, object] = {
    "usNumber": 1,
    "usType": 3,
    "cUnitID": "CST01",
    "cCurrencyID": "USD",
    "ulValues": 20,
    "ulInitialCount": 2500,
    "ulCount": 1243,
    "ulRejectCount": 3,
    "ulMinimum": 250,
    "ulMaximum": 0,
    "usStatus": 0,
    "ulDispensedCount": 1254,
    "ulPresentedCount": 1254,
    "ulRetractedCount": 1,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"usNumber": None}, "cash_units[0].usNumber"),
        ({"ulCount": -1}, "cash_units[0].ulCount"),
        ({"ulCount": 2**32}, "cash_units[0].ulCount"),
        ({"usStatus": True}, "cash_units[0].usStatus"),
        ({"cUnitID": "CST001"}, "cash_units[0].cUnitID"),
        ({"cCurrencyID": "US"}, "cash_units[0].cCurrencyID"),
        ({"cCurrencyID": "€UR"}, "cash_units[0].cCurrencyID"),
        ({"lpszCashUnitName": "x"}, "cash_units[0]"),
        ({"physical_count": "12"}, "cash_units[0].physical_count"),
    ],
)
def test_bad_fields_are_named(change: dict[str, object], field: str) -> None:
    unit = {**UNIT_OK, **change}
    if change.get("usNumber", 0) is None:
        del unit["usNumber"]
    with pytest.raises(EncodeError) as caught:
        encode_units([unit])
    assert caught.value.field == field


def test_short_unit_id_is_padded_and_restored() -> None:
    unit = {**UNIT_OK, "cUnitID": "R1"}
    wire = encode_units([unit])
    assert wire[1 + 4 : 1 + 9] == b"R1\x00\x00\x00"
    assert decode_units(wire) == [unit]


def test_reserved_flags_and_trailing_bytes_are_refused() -> None:
    wire = bytearray(encode_units([UNIT_OK]))
    with pytest.raises(PayloadError, match="bytes after the last unit"):
        decode_units(bytes(wire) + b"\x00")
    wire[-1] = 0x02
    with pytest.raises(PayloadError, match="reserved flag"):
        decode_units(bytes(wire))
