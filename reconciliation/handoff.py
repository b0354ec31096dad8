"""Handing a batch its host messages while it is already parsing its own files.

Reading a terminal's EJ, paper and counters files does not need the switch's
records, so worker processes start on their batches at once while the parent
reads the host files. When the parent has the host frame it writes each
batch's slice as an Arrow IPC file in a private temporary folder (written under
another name, then renamed, so a reader never sees half a file); a worker
whose files are parsed waits for its slice there. If the parent cannot finish
the host files, it leaves an ``abort`` file and every waiting worker stops; a
worker whose parent has died stops too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from reconciliation.classify import HOST_SCHEMA
from reconciliation.errors import HostNotHandedOver

_POLL_SECONDS = 0.002


@dataclass(frozen=True, slots=True)
class HostHandoff:
    """Where batch ``index`` finds its host messages."""

    folder: str
    index: int
    parent: int  # process id of the parent; a changed parent means it died

    @property
    def path(self) -> Path:
        return Path(self.folder) / f"host-{self.index}.arrow"

    @staticmethod
    def empty() -> pl.DataFrame:
        return pl.DataFrame(schema=HOST_SCHEMA)

    def publish(self, frame: pl.DataFrame) -> None:
        """Parent: hand over this batch's host messages."""
        partial = self.path.with_suffix(".partial")
        frame.write_ipc(partial)
        os.replace(partial, self.path)

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
        # read from the file itself, which Polars maps: reading it into bytes first
        # cost a copy of every slice (a third more CPU time to take them in)
        return pl.read_ipc(path)
