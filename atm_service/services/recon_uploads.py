"""Files uploaded for a reconciliation run: which source each one is, or why it is refused.

Files come one by one, each under the field of its kind (``ej``, ``paper``,
``host``, ``counters``), or packed in a zip or tar archive of the
``ej/ paper/ host/ counters/`` tree that ``atm-recon run`` reads. Names follow
``shared/formats/README.md``: ``<TID>_<YYYYMMDD>.txt`` (EJ and paper),
``<TID>_<YYYYMMDD>.json`` (counters), ``<YYYYMMDD>.iso`` and
``<YYYYMMDD>.csv`` (host).

A file sent under a kind with a name that does not fit is refused (422, naming
the file): the sender chose it. Inside an archive, files outside the four
folders or with other names are passed over and listed with the reason, as
the command line does with a folder. The total, unpacked, is capped
(``recon_upload_max_bytes``, 413); nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from atm_service.errors import InvalidInput, PayloadTooLarge
from atm_service.models.reconciliation import SourceKind

UPLOAD_FIELDS = ("ej", "paper", "host", "counters", "archive")
MAX_ARCHIVE_MEMBERS = 20_000

_TERMINAL_DAY = re.compile(r"^(?P<tid>[A-Za-z0-9]{8})_(?P<date>\d{8})\.(?P<ext>txt|json)$")
_HOST_DAY = re.compile(r"^(?P<date>\d{8})\.(?P<ext>iso|csv)$")
_EXPECTED = {
    "ej": "<TID>_<YYYYMMDD>.txt",
    "paper": "<TID>_<YYYYMMDD>.txt",
    "counters": "<TID>_<YYYYMMDD>.json",
    "host": "<YYYYMMDD>.iso or <YYYYMMDD>.csv",
}


@dataclass(frozen=True)
class Upload:
    """One file as received: the form field it came under, its name and its bytes."""

    field: str
    filename: str
    data: bytes


@dataclass(frozen=True)
class SourceFile:
    """An uploaded file recognised as one source of a run."""

    kind: SourceKind
    name: str
    terminal_id: str
    business_date: date
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Received:
    """What a set of uploads holds: sources, and archive members passed over with a reason."""

    sources: list[SourceFile] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)

    def count(self, *kinds: SourceKind) -> int:
        return sum(1 for source in self.sources if source.kind in kinds)


def _basename(filename: str) -> str:
    return re.split(r"[\\/]", filename)[-1]


def _day(compact: str) -> date | None:
    try:
        return date(int(compact[:4]), int(compact[4:6]), int(compact[6:]))
    except ValueError:
        return None


def recognise(folder: str, name: str, data: bytes) -> SourceFile | str:
    """The source a file of ``folder`` (ej, paper, host, counters) named ``name`` is, or
    why it is not one."""
    if folder == "host":
        match = _HOST_DAY.match(name)
        day = _day(match.group("date")) if match else None
        if match is None or day is None:
            return f"not named {_EXPECTED['host']}"
        kind = SourceKind.ISO if match.group("ext") == "iso" else SourceKind.CSV
        return SourceFile(kind, name, "", day, data)
    wanted = "json" if folder == "counters" else "txt"
    match = _TERMINAL_DAY.match(name)
    day = _day(match.group("date")) if match else None
    if match is None or day is None or match.group("ext") != wanted:
        return f"not named {_EXPECTED[folder]}"
    return SourceFile(SourceKind(folder), name, match.group("tid"), day, data)


def _members(upload: Upload, limit: int) -> Iterator[tuple[str, bytes | None]]:
    """(path, bytes) of each regular file in the archive; bytes None for links and devices.

    Reads at most ``limit`` bytes in all, whatever the headers claim."""
    buffer = io.BytesIO(upload.data)
    budget = limit
    if zipfile.is_zipfile(buffer):
        with zipfile.ZipFile(buffer) as archive:
            infos = archive.infolist()
            _check_count(upload, len(infos))
            for info in infos:
                if info.is_dir():
                    continue
                with archive.open(info) as handle:
                    data = handle.read(budget + 1)
                budget -= len(data)
                _check_budget(upload, budget, limit)
                yield info.filename, data
        return
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, mode="r:*") as archive:
        count = 0
        for member in archive:
            count += 1
            _check_count(upload, count)
            if member.isdir():
                continue
            if not member.isfile():
                yield member.name, None
                continue
            extracted = archive.extractfile(member)
            if extracted is None:
                yield member.name, None
                continue
            data = extracted.read(budget + 1)
            budget -= len(data)
            _check_budget(upload, budget, limit)
            yield member.name, data


def _check_count(upload: Upload, count: int) -> None:
    if count > MAX_ARCHIVE_MEMBERS:
        raise InvalidInput(
            f"The archive {upload.filename!r} holds more than {MAX_ARCHIVE_MEMBERS} entries.",
            field="archive",
        )


def _check_budget(upload: Upload, budget: int, limit: int) -> None:
    if budget < 0:
        raise PayloadTooLarge(
            f"Unpacked, the archive {upload.filename!r} holds more than {limit} bytes, the "
            "most one run may read; split the files over several runs."
        )


def _unpack(upload: Upload, limit: int, received: Received, seen: set[tuple[str, str]]) -> None:
    try:
        for path, data in _members(upload, limit):
            parts = [part for part in re.split(r"[\\/]", path) if part not in ("", ".")]
            shown = "/".join(parts)
            folders = [part for part in parts[:-1] if part in _EXPECTED]
            if not folders:
                received.ignored.append((shown, "not in an ej/, paper/, host/ or counters/ folder"))
                continue
            if data is None:
                received.ignored.append((shown, "not a regular file"))
                continue
            found = recognise(folders[-1], parts[-1], data)
            if isinstance(found, str):
                received.ignored.append((shown, found))
                continue
            _add(received, found, seen, shown, field="archive")
    except (zipfile.BadZipFile, zlib.error, tarfile.TarError, EOFError) as exc:
        raise InvalidInput(
            f"The archive {upload.filename!r} is damaged or not a zip or tar file ({exc}).",
            field="archive",
        ) from exc
    except RuntimeError as exc:  # zipfile: encrypted member, unsupported compression
        raise InvalidInput(
            f"The archive {upload.filename!r} cannot be read: {exc}.", field="archive"
        ) from exc
    except NotImplementedError as exc:  # zipfile: compression method not supported
        raise InvalidInput(
            f"The archive {upload.filename!r} uses a compression this service cannot read.",
            field="archive",
        ) from exc


def _add(
    received: Received, found: SourceFile, seen: set[tuple[str, str]], shown: str, *, field: str
) -> None:
    key = (found.kind.value, found.name)
    if key in seen:
        raise InvalidInput(
            f"{shown}: a {found.kind.label} named {found.name} is there twice.", field=field
        )
    seen.add(key)
    received.sources.append(found)


def receive(uploads: list[Upload], *, max_bytes: int) -> Received:
    """Sort the uploads into sources; refuse what cannot be used, naming it.

    Raises :class:`InvalidInput` (422) for a badly named file, a damaged archive or a
    file sent twice, and :class:`PayloadTooLarge` (413) past ``max_bytes`` in all."""
    received = Received()
    seen: set[tuple[str, str]] = set()
    total = sum(len(upload.data) for upload in uploads)
    if total > max_bytes:
        raise PayloadTooLarge(
            f"The files hold {total} bytes; one run may read {max_bytes} at most."
        )
    for upload in uploads:
        if upload.field not in UPLOAD_FIELDS:
            raise InvalidInput(f"Unknown upload field {upload.field!r}.", field=upload.field)
        name = _basename(upload.filename)
        if not name:
            raise InvalidInput("An uploaded file has no name.", field=upload.field)
        if not upload.data:
            raise InvalidInput(f"The file {name!r} is empty.", field=upload.field)
        if upload.field == "archive":
            _unpack(upload, max_bytes - (total - len(upload.data)), received, seen)
            continue
        found = recognise(upload.field, name, upload.data)
        if isinstance(found, str):
            raise InvalidInput(
                f"The {upload.field} file {name!r} is {found}; the name says which terminal "
                "and business day it holds.",
                field=upload.field,
            )
        _add(received, found, seen, name, field=upload.field)
    return received
