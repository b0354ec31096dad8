"""Handing a batch its host messages while it is already parsing its own files.

Reading a terminal's EJ, paper and counters files does not need the switch's
records, so worker processes start on their batches at once while the parent
reads the host files. When the parent has read them it writes each batch's
share (:class:`~reconciliation.hostload.BatchHost`: its ISO 8583 records, and
the messages read otherwise) as a file in a private temporary folder (written
under another name, then renamed, so a reader never sees half a file); a
worker whose files are parsed waits for it there and reads its messages. If
the parent cannot finish the host files, it leaves an ``abort`` file and every
waiting worker stops; a worker whose parent has died stops too.

The worker hands the batch's result back the same way, and the parent takes
it when the batch's future is done (through the pool instead, where the file
cannot be written).
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from reconciliation.classify import HOST_SCHEMA
from reconciliation.errors import HostNotHandedOver
from reconciliation.hostload import BatchHost

_POLL_SECONDS = 0.002
_MEMORY_FOLDER = "/dev/shm"  # noqa: S108 - where Linux keeps files in memory


def folder_place(size: int, memory: str = _MEMORY_FOLDER) -> str | None:
    """Where to make the folder for ``size`` bytes of host messages: the system's
    in-memory file system when it has room for twice that (writing there took a
    fifth of the time of the usual disk-backed temporary folder), else ``None``
    (the temporary folder)."""
    try:
        room = os.statvfs(memory)
    except (OSError, AttributeError):  # none here, or no statvfs on this system
        return None
    if not os.access(memory, os.W_OK | os.X_OK):
        return None
    return memory if room.f_bavail * room.f_frsize >= 2 * size else None


@dataclass(frozen=True, slots=True)
class HostHandoff:
    """Where batch ``index`` finds its host messages."""

    folder: str
    index: int
    parent: int  # process id of the parent; a changed parent means it died

    @property
    def path(self) -> Path:
        return Path(self.folder) / f"host-{self.index}.pickle"

    @staticmethod
    def empty() -> pl.DataFrame:
        return pl.DataFrame(schema=HOST_SCHEMA)

    def publish(self, host: BatchHost) -> None:
        """Parent: hand over this batch's host messages."""
        _put(self.path, host)

    @property
    def result_path(self) -> Path:
        return Path(self.folder) / f"result-{self.index}.pickle"

    def hand_back(self, result: object) -> bool:
        """Worker: leave the batch's result for the parent (:meth:`take_back`);
        ``False`` when it cannot be written (the folder is full, say), and then
        the result goes back through the pool as usual.

        Through the folder rather than the pool's pipe: a large run's findings
        cross as tens of megabytes of evidence, which the pipe carried in pieces
        of 64 KiB, copied in and out and then once more when unpickled; a file is
        pickled into as it goes and read straight back into its objects."""
        try:
            _put(self.result_path, result)
        except OSError:
            return False
        return True

    def take_back(self) -> Any:
        """Parent: what the batch's worker handed back; its file is removed."""
        result = _take(self.result_path)
        self.result_path.unlink()
        return result

    @staticmethod
    def abort(folder: str) -> None:
        """Parent: tell every waiting worker that no host messages will come."""
        (Path(folder) / "abort").touch()

    def wait(self) -> pl.DataFrame:
        """Worker: the host messages, once the parent has handed them over."""
        path = self.path
        abort = Path(self.folder) / "abort"
        while not path.exists():
            if abort.exists() or os.getppid() != self.parent:
                raise HostNotHandedOver("the run stopped before the host files were read")
            time.sleep(_POLL_SECONDS)
        host: BatchHost = _take(path)
        return host.frame()


def _put(path: Path, value: object) -> None:
    """``value`` pickled into ``path``: written under another name as it is pickled
    (no copy of the whole in memory first), then renamed, so that a reader never
    sees half a file; on an error the partial file is removed and the error raised."""
    partial = path.with_suffix(".partial")
    try:
        with partial.open("wb") as file:
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise


def _take(path: Path) -> Any:
    """What :func:`_put` wrote into ``path``, read straight back into its objects."""
    with path.open("rb") as file:
        # written by the run's own processes into a folder only they use
        return pickle.load(file)  # noqa: S301
