"""Hypothesis strategies for every message of the device link."""

from __future__ import annotations

from hypothesis import strategies as st

from device_agent.protocol import (
    COMMANDS,
    Ack,
    CashUnits,
    Command,
    CommandResult,
    Event,
    Hello,
    JournalData,
    JournalError,
    JournalInfo,
    JournalRead,
    Message,
    Query,
    Status,
)
from device_agent.protocol.records import DEVICE_NAMES

u32 = st.integers(0, 0xFFFFFFFF)
names = st.from_regex(r"[0-9A-Za-z_.-]{1,32}", fullmatch=True)
days = st.dates().map(lambda d: d.strftime("%Y%m%d"))
journal_names = days | names
times = st.datetimes().map(lambda t: t.replace(microsecond=0).isoformat())
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
extras = st.dictionaries(
    st.from_regex(r"x_[a-z]{1,8}", fullmatch=True),
    scalars | st.lists(scalars, max_size=3),
    max_size=2,
)


def _with_extras(
    base: st.SearchStrategy[dict[str, object]],
) -> st.SearchStrategy[dict[str, object]]:
    return st.tuples(base, extras).map(lambda pair: {**pair[1], **pair[0]})


cash_unit = st.fixed_dictionaries(
    {
        "usNumber": st.integers(0, 0xFFFF),
        "usType": st.integers(0, 0xFFFF),
        "cUnitID": st.from_regex(r"[A-Z0-9]{1,5}", fullmatch=True),
        "cCurrencyID": st.from_regex(r"[A-Z ]{3}", fullmatch=True),
        "ulValues": u32,
        "ulInitialCount": u32,
        "ulCount": u32,
        "ulRejectCount": u32,
        "ulMinimum": u32,
        "ulMaximum": u32,
        "usStatus": st.integers(0, 0xFFFF),
        "ulDispensedCount": u32,
        "ulPresentedCount": u32,
        "ulRetractedCount": u32,
    },
    optional={"physical_count": u32},
)

status = _with_extras(
    st.fixed_dictionaries(
        {
            "time": times,
            "in_service": st.booleans(),
            "safe_door": st.sampled_from(["open", "closed"]),
            "devices": st.dictionaries(
                st.sampled_from(sorted(DEVICE_NAMES)), st.sampled_from(["ok", "warning", "fault"])
            ),
        },
        optional={"details": st.dictionaries(st.sampled_from(sorted(DEVICE_NAMES)), text)},
    )
)

device_names = st.sampled_from(sorted(DEVICE_NAMES))
event = _with_extras(
    st.one_of(
        st.fixed_dictionaries(
            {
                "kind": st.just("cash_unit_threshold"),
                "time": times,
                "unit": st.integers(1, 6),
                "status": st.sampled_from(["low", "empty", "high", "full", "ok"]),
            }
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("cash_unit_error"),
                "time": times,
                "unit": st.integers(1, 6),
                "error": st.sampled_from(["jam", "missing", "inop", "pick_failure"]),
            }
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("hardware_error"),
                "time": times,
                "device": device_names,
                "severity": st.sampled_from(["fatal", "warning"]),
                "code": st.from_regex(r"[A-Z]-[0-9]{2}", fullmatch=True),
                "description": text,
            }
        ),
        st.fixed_dictionaries(
            {"kind": st.just("hardware_recovered"), "time": times, "device": device_names}
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("safe_door"),
                "time": times,
                "state": st.sampled_from(["open", "closed"]),
            }
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("service_mode"),
                "time": times,
                "in_service": st.booleans(),
                "reason": text,
            }
        ),
    )
)
result = _with_extras(st.fixed_dictionaries({"ok": st.booleans()}, optional={"error": text}))

hello = st.builds(
    Hello,
    session=u32,
    peer=u32,
    answer=st.booleans(),
    device=st.booleans(),
    window=st.integers(1, 1024),
    max_payload=st.integers(0, 0xFFFF),
    boot_id=st.integers(0, 2**64 - 1),
    terminal_id=st.from_regex(r"[ -~]{0,16}", fullmatch=True),
)

messages: st.SearchStrategy[Message] = st.one_of(
    hello,
    st.builds(Ack, st.lists(st.integers(0, 1023), unique=True).map(lambda r: tuple(sorted(r)))),
    st.builds(Query, st.booleans(), st.booleans(), st.booleans()),
    st.builds(JournalRead, journal_names, u32, u32),
    st.builds(Command, u32, st.sampled_from(sorted(COMMANDS))),
    st.builds(
        JournalInfo,
        st.lists(st.tuples(journal_names, u32), max_size=64).map(tuple),
    ),
    st.builds(
        JournalData,
        journal_names,
        st.integers(0, 0xFFFF0000),
        st.binary(max_size=1100),
        st.booleans(),
    ),
    st.builds(JournalError, journal_names, u32, st.integers(0, 255), text),
    st.builds(
        CashUnits,
        st.from_regex(r"[a-z_]{1,32}", fullmatch=True),
        st.lists(cash_unit, max_size=8),
    ),
    st.builds(Status, status),
    st.builds(Event, st.integers(0, 2**64 - 1), event),
    st.builds(CommandResult, u32, result),
)
