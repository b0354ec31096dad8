"""How the reconciliation pages word amounts, kinds, deadlines and evidence."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from atm_service.errors import InvalidInput
from atm_service.web.formatting import money
from atm_service.web.recon_views import (
    counter_tables,
    deadline_words,
    detail_facts,
    host_rows,
    kind_label,
    marked_lines,
    needles,
    parse_amount,
)


@pytest.mark.parametrize(
    ("text", "minor"),
    [("120", 12000), ("120.5", 12050), ("120.50", 12050), ("0,05", 5), (" 7 ", 700), ("", None)],
)
def test_amounts_are_typed_in_major_units(text: str, minor: int | None) -> None:
    assert parse_amount(text, "amount_from") == minor


@pytest.mark.parametrize("text", ["ten", "1.234", "-5", "1e3", "12.5.0"])
def test_other_amounts_are_refused_by_field(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_amount(text, "amount_to")
    assert caught.value.field == "amount_to"


def test_money_is_shown_with_integer_arithmetic() -> None:
    assert money(356000) == "3,560.00 USD"
    assert money(-5, "EUR") == "-0.05 EUR"
    assert money(None) == ""


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        ("no_dispense_no_reversal", "No dispense, no reversal"),
        ("host_timeout_reversed", "Host timeout, reversed"),
        ("ej_gap", "EJ gap"),
        ("dispensed_not_in_host", "Dispensed not in host"),
    ],
)
def test_kinds_read_as_words(kind: str, label: str) -> None:
    assert kind_label(kind) == label


def test_deadlines_are_counted_from_today() -> None:
    today = date(2026, 11, 20)
    assert deadline_words(date(2027, 3, 16), today) == "in 116 days"
    assert deadline_words(date(2026, 11, 21), today) == "tomorrow"
    assert deadline_words(today, today) == "today"
    assert deadline_words(date(2026, 11, 19), today) == "passed 1 day ago"
    assert deadline_words(None, today) == ""


def test_the_discrepancys_own_lines_are_marked() -> None:
    item = SimpleNamespace(stan="805274", rrn="632008805274", local_time="08:39:56")
    excerpt = "\n".join(
        [
            "Transaction Reply [Host Seq.No.: 5273]",
            " TRACE     : 805273",
            "Transaction Reply [Host Seq.No.: 5274]",
            " DATE/TIME : 2026-11-16 08:39:56",
            " TRACE     : 805274",
            "*5274*1*E*000000100,M-00,R-00000",
        ]
    )
    assert [line.marked for line in marked_lines(excerpt, needles(item))] == [
        False,
        False,
        True,
        True,
        True,
        True,
    ]


def test_host_messages_and_counters_become_tables() -> None:
    rows = host_rows([{"mti": "0420", "amount_minor": 4000, "actual_minor": 2000, "stan": "1"}])
    assert rows[0][0] == "0420"
    assert "40.00" in rows[0]
    assert rows[0][-1] == "20.00"
    tables = counter_tables(
        {
            "before_exchange": {
                "timestamp": "2026-11-16T10:33:43",
                "reason": "replenishment",
                "phase": "before_exchange",
                "cash_units": [{"number": 1, "denomination": 20, "count": 5, "physical_count": 4}],
            }
        }
    )
    assert tables[0].title == "before exchange: 2026-11-16T10:33:43 (replenishment before exchange)"
    assert tables[0].rows[0][:2] == ["1", "20"]
    assert tables[0].rows[0][-1] == "4"


def test_detail_facts_show_amounts_as_money() -> None:
    facts = detail_facts(
        {"text": "x", "local_time": "1", "dispensed_minor": 2000, "notes_retracted": [0, 3]},
        "USD",
    )
    assert facts == [("dispensed", "20.00 USD"), ("notes retracted", "0, 3")]
