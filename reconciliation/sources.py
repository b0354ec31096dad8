"""What a reconciliation run reads: files found in folders, or bytes in memory.

A source is one file of one format for one terminal and business day (the host
files cover all terminals of a day). Folders are scanned by the file names of
``shared/formats/README.md``; a file whose name does not fit is listed in the
run's summary as ignored, with the reason, and the run goes on. Bytes handed
in by a caller (the service's stored journals) are sources too.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from reconciliation.errors import SourceUnreadable, UnusableInput

_TERMINAL_DAY = re.compile(r"^(?P<tid>[A-Za-z0-9]{8})_(?P<date>\d{8})\.(?P<ext>txt|json)$")
_HOST_DAY = re.compile(r"^(?P<date>\d{8})\.(?P<ext>iso|csv)$")


@functools.lru_cache(maxsize=64)  # a folder's files share a few days
def _iso_date(compact: str) -> str | None:
    try:
        return date(int(compact[:4]), int(compact[4:6]), int(compact[6:])).isoformat()
    except ValueError:
        return None


def _size(entry: os.DirEntry[str]) -> int | None:
    """A listed file's size; ``None`` when it cannot be had now (it is asked again)."""
    try:
        return entry.stat().st_size
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class Source:
    """One input: a path to read, or bytes already in memory (``data``)."""

    kind: str  # "ej", "paper", "iso", "csv", "counters"
    name: str  # shown in reports and skipped-line lists
    terminal_id: str  # "" for host files
    business_date: str  # YYYY-MM-DD
    path: Path | None = None
    data: bytes | None = None
    dialect: str | None = None  # EJ only; detected when None
    # the file's size when the folder was scanned: a run asks for it several times
    # (packing, progress), and a stat per file and question adds up over thousands
    scanned_size: int | None = field(default=None, compare=False)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise SourceUnreadable(f"cannot read {self.name}: {exc.strerror or exc}") from exc

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        if self.scanned_size is not None:
            return self.scanned_size
        assert self.path is not None
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def read_raw(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` exactly as stored (binary files, pieces of files)."""
        if self.data is not None:
            return self.data[start:end]
        assert self.path is not None
        try:
            with self.path.open("rb") as handle:
                handle.seek(start)
                return handle.read(max(end - start, 0))
        except OSError as exc:
            raise SourceUnreadable(f"cannot read {self.name}: {exc.strerror or exc}") from exc


def prefetch(sources: Iterable[Source]) -> None:
    """Ask the system to start reading the files of ``sources`` into its file cache
    (``POSIX_FADV_WILLNEED``), to be read one after the other: a batch's files
    then come from the disk while the first ones are parsed, instead of each
    read waiting for the disk in turn. Best effort: nothing where the system
    gives no such advice, or for a file that cannot be opened (reading it says why)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    for source in sources:
        if source.path is None:
            continue
        try:
            handle = os.open(source.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            advise(handle, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(handle)


@dataclass(slots=True)
class Sources:
    """Everything a run reads, and the files that were passed over with a reason."""

    items: list[Source] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)

    def of(self, kind: str) -> list[Source]:
        return [source for source in self.items if source.kind == kind]

    def add_ej_bytes(
        self,
        terminal_id: str,
        business_date: str,
        data: bytes,
        *,
        name: str | None = None,
        dialect: str | None = None,
    ) -> None:
        """An EJ held in memory (e.g. the service's stored journal for a day)."""
        self.items.append(
            Source(
                "ej",
                name or f"ej:{terminal_id}_{business_date.replace('-', '')}",
                terminal_id,
                business_date,
                data=data,
                dialect=dialect,
            )
        )

    def add_bytes(
        self, kind: str, name: str, data: bytes, *, terminal_id: str = "", business_date: str
    ) -> None:
        """Any source held in memory: ``paper``, ``counters``, ``iso`` or ``csv``."""
        if kind not in ("ej", "paper", "counters", "iso", "csv"):
            raise UnusableInput(f"unknown source kind {kind!r}")
        self.items.append(Source(kind, name, terminal_id, business_date, data=data))

    @classmethod
    def from_dirs(
        cls,
        *,
        ej: Path | None = None,
        paper: Path | None = None,
        host: Path | None = None,
        counters: Path | None = None,
    ) -> Sources:
        """Scan folders by the naming conventions. Raises ``UnusableInput`` when a
        named folder does not exist or is not a folder."""
        sources = cls()
        for kind, folder in (("ej", ej), ("paper", paper), ("host", host), ("counters", counters)):
            if folder is None:
                continue
            if not folder.exists():
                raise UnusableInput(f"--{kind} {folder}: no such folder")
            if not folder.is_dir():
                raise UnusableInput(f"--{kind} {folder}: not a folder")
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(
                        (entry.name, _size(entry)) for entry in listing if entry.is_file()
                    )
            except OSError as exc:
                raise UnusableInput(f"--{kind} {folder}: cannot list ({exc.strerror})") from exc
            for name, size in entries:
                sources._add_path(kind, folder / name, size)
        return sources

    def _add_path(self, kind: str, path: Path, size: int | None = None) -> None:
        name = path.name
        if kind == "host":
            match = _HOST_DAY.match(name)
            day = _iso_date(match.group("date")) if match else None
            if match is None or day is None:
                self.ignored.append((str(path), "not named <YYYYMMDD>.iso or <YYYYMMDD>.csv"))
                return
            self.items.append(
                Source(match.group("ext"), str(path), "", day, path=path, scanned_size=size)
            )
            return
        wanted = "json" if kind == "counters" else "txt"
        match = _TERMINAL_DAY.match(name)
        day = _iso_date(match.group("date")) if match else None
        if match is None or day is None or match.group("ext") != wanted:
            self.ignored.append((str(path), f"not named <TID>_<YYYYMMDD>.{wanted}"))
            return
        self.items.append(
            Source(kind, str(path), match.group("tid"), day, path=path, scanned_size=size)
        )
