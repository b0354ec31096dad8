"""The fast ISO 8583 writer is byte-identical to pyiso8583's default_ascii encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators import iso

README_VECTORS = [
    b"0200723800000880800016535110443552721701000000000001200011160002486451040002481116632000645104T1000003840",
    b"0420F23800000E80800000000042000000001645320156228675850100000000000040001116164731750123164721111663201675012367576732T1000006840020075012311161647210000012345600000000000000000002000000000002000C00000000C00000000",
]  # fmt: skip

digits = st.integers(min_value=0)


@pytest.mark.parametrize("message", README_VECTORS)
def test_readme_vectors_round_trip(message: bytes) -> None:
    fields = {k: v for k, v in iso.decode(message).items() if k not in ("p", "s", "1")}
    assert iso.pack(fields) == message == iso.pack_with_pyiso8583(fields)


@given(
    mti=st.sampled_from(["0200", "0210", "0420"]),
    pan=st.text("0123456789", min_size=12, max_size=19),
    amount=st.integers(0, 10**9),
    stan=st.integers(1, 999_999),
    seconds=st.integers(0, 86_399),
    approved=st.booleans(),
    actual=st.one_of(st.none(), st.integers(0, 10**9)),
)
def test_pack_equals_pyiso8583(
    mti: str, pan: str, amount: int, stan: int, seconds: int, approved: bool, actual: int | None
) -> None:
    hms = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    fields = {
        "t": mti, "2": pan, "3": "010000", "4": f"{amount:012d}", "7": "1116" + hms,
        "11": f"{stan:06d}", "12": hms, "13": "1116", "37": f"632{hms[:2]}0{stan:06d}"[:12],
        "41": "T1000001", "49": "840",
    }  # fmt: skip
    if mti == "0210":
        fields["39"] = "00" if approved else "51"
        if approved:
            fields["38"] = "123456"
    if mti == "0420":
        fields.update({"38": "654321", "39": "22", "90": iso.de90(fields["11"], fields["7"])})
        if actual is not None:
            fields["39"] = "32"
            fields["95"] = iso.de95(actual)
    packed = iso.pack(fields)
    assert packed == iso.pack_with_pyiso8583(fields)
    assert iso.read_records(iso.frame(packed) * 2) == [packed, packed]


def test_unknown_mti_and_truncated_log_are_refused() -> None:
    with pytest.raises(ValueError, match="0800"):
        iso.pack(
            {
                "t": "0800",
                "2": "1",
                "3": "",
                "4": "",
                "7": "",
                "11": "",
                "12": "",
                "13": "",
                "37": "",
                "41": "",
                "49": "",
            }
        )
    with pytest.raises(ValueError, match="past the end"):
        iso.read_records(b"\x00\x10abc")
