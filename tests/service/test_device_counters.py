"""Counters the devices report become the counters file reconciliation reads."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from atm_service.services.device_counters import (
    CountedExchange,
    DeviceSnapshot,
    counters_document,
)
from tests.samples import sample_dir


def _reports(document: dict[str, Any], *, counted: bool = True) -> list[DeviceSnapshot]:
    """The snapshots of a counters file as a device would have reported them."""
    reports = []
    for snapshot in document["snapshots"]:
        units = [dict(unit) for unit in snapshot["cash_units"]]
        if not counted:
            for unit in units:
                unit.pop("physical_count", None)
        reports.append(DeviceSnapshot(datetime.fromisoformat(snapshot["timestamp"]), units))
    return reports


def _files(sample: Path) -> list[Path]:
    return sorted((sample / "counters").glob("*.json"))


@pytest.fixture(scope="module")
def sample() -> Path:
    return sample_dir()


def test_the_sample_counters_come_back_from_what_the_devices_reported(sample: Path) -> None:
    checked = 0
    for path in _files(sample):
        document = json.loads(path.read_text())
        day = date.fromisoformat(document["business_date"])
        built = counters_document(
            _reports(document),
            terminal_id=document["terminal_id"],
            business_date=day,
            day_over=True,
        )
        assert built == document, path.name
        checked += 1
    assert checked == 12


def test_the_engineers_counts_stand_in_for_a_device_that_does_not_count(sample: Path) -> None:
    replenished = 0
    for path in _files(sample):
        document = json.loads(path.read_text())
        counts = []
        for snapshot in document["snapshots"]:
            if snapshot.get("phase") == "before_exchange":
                units = snapshot["cash_units"]
                counts.append(
                    CountedExchange(
                        datetime.fromisoformat(snapshot["timestamp"]),
                        {u["usNumber"]: u["physical_count"] for u in units if u["usType"] == 3},
                        next(u["physical_count"] for u in units if u["usType"] == 2),
                        next(u["physical_count"] for u in units if u["usType"] == 6),
                    )
                )
        replenished += len(counts)
        built = counters_document(
            _reports(document, counted=False),
            terminal_id=document["terminal_id"],
            business_date=date.fromisoformat(document["business_date"]),
            day_over=True,
            counts=counts,
        )
        assert built == document, path.name
    assert replenished > 0


def _units(dispensed: int, initial: int = 2000, counted: int | None = None) -> list[dict[str, Any]]:
    unit: dict[str, Any] = {
        "usNumber": 1,
        "usType": 3,
        "cUnitID": "CST01",
        "cCurrencyID": "USD",
        "ulValues": 20,
        "ulInitialCount": initial,
        "ulCount": initial - dispensed,
        "ulRejectCount": 0,
        "ulMinimum": 200,
        "ulMaximum": 0,
        "usStatus": 0,
        "ulDispensedCount": dispensed,
        "ulPresentedCount": dispensed,
        "ulRetractedCount": 0,
    }
    if counted is not None:
        unit["physical_count"] = counted
    return [unit]


DAY = date(2026, 11, 16)


def test_start_and_end_of_day_are_the_states_in_force_then() -> None:
    reports = [
        DeviceSnapshot(datetime(2026, 11, 15, 22, 10, 5), _units(10)),
        DeviceSnapshot(datetime(2026, 11, 16, 9, 0, 0), _units(14)),
        DeviceSnapshot(datetime(2026, 11, 16, 17, 30, 0), _units(20)),
    ]
    built = counters_document(reports, terminal_id="T1000001", business_date=DAY, day_over=True)
    assert built is not None
    assert [(s["timestamp"], s["reason"]) for s in built["snapshots"]] == [
        ("2026-11-16T00:00:00", "start_of_day"),
        ("2026-11-16T23:59:59", "end_of_day"),
    ]
    assert built["snapshots"][0]["cash_units"][0]["ulDispensedCount"] == 10
    assert built["snapshots"][1]["cash_units"][0]["ulDispensedCount"] == 20


def test_a_day_not_over_has_no_end_and_a_day_without_reports_no_file() -> None:
    reports = [DeviceSnapshot(datetime(2026, 11, 16, 9, 0, 0), _units(14))]
    built = counters_document(reports, terminal_id="T1000001", business_date=DAY, day_over=False)
    assert built is None  # nothing before midnight, no exchange, day not over
    assert counters_document([], terminal_id="T1000001", business_date=DAY, day_over=True) is None


def test_an_exchange_is_seen_where_the_counts_start_again() -> None:
    reports = [
        DeviceSnapshot(datetime(2026, 11, 16, 0, 0, 0), _units(100)),
        DeviceSnapshot(datetime(2026, 11, 16, 10, 0, 0), _units(180)),
        DeviceSnapshot(datetime(2026, 11, 16, 10, 20, 0), _units(0, initial=2500)),
    ]
    counts = [CountedExchange(datetime(2026, 11, 16, 10, 25, 0), {1: 1818})]
    built = counters_document(
        reports, terminal_id="T1000001", business_date=DAY, day_over=False, counts=counts
    )
    assert built is not None
    phases = [(s["reason"], s.get("phase")) for s in built["snapshots"]]
    assert phases == [
        ("start_of_day", None),
        ("replenishment", "before_exchange"),
        ("replenishment", "after_exchange"),
    ]
    before = built["snapshots"][1]["cash_units"][0]
    assert (before["ulCount"], before["physical_count"]) == (1820, 1818)
    # Counts taken far from the exchange belong to another one.
    far = [CountedExchange(datetime(2026, 11, 16, 18, 0, 0), {1: 1818})]
    built = counters_document(
        reports, terminal_id="T1000001", business_date=DAY, day_over=False, counts=far
    )
    assert built is not None
    assert "physical_count" not in built["snapshots"][1]["cash_units"][0]
