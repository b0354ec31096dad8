"""Uploaded files become a run's sources by their names and folders, or are refused by name."""

from __future__ import annotations

import io
import tarfile
import zipfile
from datetime import date

import pytest

from atm_service.errors import InvalidInput, PayloadTooLarge
from atm_service.models.reconciliation import SourceKind
from atm_service.services.recon_uploads import MAX_ARCHIVE_MEMBERS, Upload, receive, recognise

MAX = 1024 * 1024


@pytest.mark.parametrize(
    ("folder", "name", "kind", "terminal", "day"),
    [
        ("ej", "T1000001_20261116.txt", SourceKind.EJ, "T1000001", date(2026, 11, 16)),
        ("paper", "T1000003_20261117.txt", SourceKind.PAPER, "T1000003", date(2026, 11, 17)),
        ("counters", "T1000002_20261116.json", SourceKind.COUNTERS, "T1000002", None),
        ("host", "20261116.iso", SourceKind.ISO, "", date(2026, 11, 16)),
        ("host", "20261117.csv", SourceKind.CSV, "", date(2026, 11, 17)),
    ],
)
def test_names_say_the_kind_terminal_and_day(
    folder: str, name: str, kind: SourceKind, terminal: str, day: date | None
) -> None:
    found = recognise(folder, name, b"x")
    assert not isinstance(found, str)
    assert (found.kind, found.terminal_id) == (kind, terminal)
    if day is not None:
        assert found.business_date == day


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("ej", "T1000001_20261116.json"),  # counters name under ej
        ("ej", "T100001_20261116.txt"),  # 7-character terminal id
        ("ej", "T1000001_20261331.txt"),  # no such day
        ("counters", "T1000001_20261116.txt"),
        ("host", "T1000001_20261116.iso"),
        ("host", "2026-11-16.csv"),
        ("paper", "notes.txt"),
    ],
)
def test_other_names_are_not_sources(folder: str, name: str) -> None:
    assert isinstance(recognise(folder, name, b"x"), str)


def test_a_badly_named_file_is_refused_by_name_and_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        receive([Upload("paper", "scan-monday.txt", b"x")], max_bytes=MAX)
    assert caught.value.field == "paper"
    assert "scan-monday.txt" in caught.value.detail
    assert "<TID>_<YYYYMMDD>.txt" in caught.value.detail


def test_paths_sent_by_a_client_are_cut_to_the_file_name() -> None:
    received = receive([Upload("ej", "C:\\EJ\\T1000001_20261116.txt", b"x")], max_bytes=MAX)
    assert [source.name for source in received.sources] == ["T1000001_20261116.txt"]


@pytest.mark.parametrize(
    ("uploads", "words"),
    [
        ([Upload("ej", "T1000001_20261116.txt", b"")], "is empty"),
        (
            [
                Upload("ej", "T1000001_20261116.txt", b"a"),
                Upload("ej", "T1000001_20261116.txt", b"b"),
            ],
            "there twice",
        ),
        ([Upload("receipts", "T1000001_20261116.txt", b"a")], "Unknown upload field"),
        ([Upload("archive", "ej.zip", b"PK\x03\x04 not really")], "damaged or not a zip or tar"),
        ([Upload("archive", "notes.txt", b"just some text")], "damaged or not a zip or tar"),
    ],
)
def test_unusable_uploads_are_refused_with_a_reason(uploads: list[Upload], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        receive(uploads, max_bytes=MAX)


def test_more_than_the_cap_is_refused() -> None:
    with pytest.raises(PayloadTooLarge, match="one run may read 1024 at most"):
        receive([Upload("ej", "T1000001_20261116.txt", b"x" * 1025)], max_bytes=1024)


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_an_archive_is_read_by_its_folders_and_the_rest_is_listed() -> None:
    data = _zip(
        {
            "batch/ej/T1000001_20261116.txt": b"ej",
            "batch/paper/T1000001_20261116.txt": b"paper",
            "batch/host/20261116.iso": b"iso",
            "batch/counters/T1000001_20261116.json": b"{}",
            "batch/truth.jsonl": b"{}",
            "batch/ej/readme.md": b"#",
            "__MACOSX/ej/._T1000001_20261116.txt": b"junk",
        }
    )
    received = receive([Upload("archive", "batch.zip", data)], max_bytes=MAX)
    assert sorted((s.kind.value, s.name) for s in received.sources) == [
        ("counters", "T1000001_20261116.json"),
        ("ej", "T1000001_20261116.txt"),
        ("iso", "20261116.iso"),
        ("paper", "T1000001_20261116.txt"),
    ]
    ignored = dict(received.ignored)
    assert ignored["batch/truth.jsonl"] == "not in an ej/, paper/, host/ or counters/ folder"
    assert ignored["batch/ej/readme.md"] == "not named <TID>_<YYYYMMDD>.txt"
    assert "__MACOSX/ej/._T1000001_20261116.txt" in ignored


def test_a_tar_with_a_link_passes_the_link_over() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("ej/T1000001_20261116.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"ej"))
        link = tarfile.TarInfo("ej/T1000002_20261116.txt")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    received = receive([Upload("archive", "x.tar.gz", buffer.getvalue())], max_bytes=MAX)
    assert [s.terminal_id for s in received.sources] == ["T1000001"]
    assert received.ignored == [("ej/T1000002_20261116.txt", "not a regular file")]


def test_an_archive_that_unpacks_past_the_cap_is_refused() -> None:
    # 4 MiB of zeros compress to a few KiB: the cap counts what comes out, not what went in.
    bomb = _zip({"ej/T1000001_20261116.txt": bytes(4 * 1024 * 1024)})
    assert len(bomb) < MAX
    with pytest.raises(PayloadTooLarge, match="Unpacked"):
        receive([Upload("archive", "small.zip", bomb)], max_bytes=MAX)


def test_an_archive_with_too_many_entries_is_refused() -> None:
    data = _zip({f"misc/{index}": b"" for index in range(MAX_ARCHIVE_MEMBERS + 1)})
    with pytest.raises(InvalidInput, match="more than"):
        receive([Upload("archive", "many.zip", data)], max_bytes=64 * MAX)
