"""A device whose journals are files and whose counters are a counters JSON file.

``FileDeviceBackend`` implements :class:`simulators.device_backend.DeviceBackend`
over a directory of ``<TID>_<YYYYMMDD>.txt`` journal files (the EJ format of
``shared/formats``) and, optionally, a counters file
(``counters/<TID>_<YYYYMMDD>.json``): its cash units are those of the file's
last snapshot. Journals are read from disk on every call, so a file that another
process appends to grows on the link too. Events are those raised with
:meth:`FileDeviceBackend.raise_event` and those that its commands cause; a
reboot (:meth:`FileDeviceBackend.reboot`) changes the boot id.

It serves tests, benchmarks and demos where the full simulated ATM is more than
is needed; both speak the same protocol.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

DEVICES = ("dispenser", "card_reader", "receipt_printer", "journal_printer", "encrypting_pin_pad")


def _local_now() -> datetime:
    return datetime.now()  # terminal local time, as in the field formats


class FileDeviceBackend:
    """A device backed by journal files and a counters file."""

    def __init__(
        self,
        journal_dir: Path,
        terminal_id: str,
        *,
        counters: Path | None = None,
        boot_id: int = 1,
        clock: Callable[[], datetime] = _local_now,
    ) -> None:
        if not re.fullmatch(r"[0-9A-Za-z]{1,16}", terminal_id):
            raise ValueError(f"terminal_id must be 1 to 16 letters or digits, got {terminal_id!r}")
        self.journal_dir = Path(journal_dir)
        if not self.journal_dir.is_dir():
            raise ValueError(f"{self.journal_dir}: not a directory of journals")
        self.terminal_id = terminal_id
        self.boot_id = boot_id
        self._clock = clock
        self._pattern = re.compile(rf"{re.escape(terminal_id)}_(\d{{8}})\.txt")
        self._units = self._load_counters(counters) if counters is not None else []
        self._lock = threading.Lock()
        self._events: list[dict[str, object]] = []
        self._in_service = True
        self._safe_door = "closed"
        self._devices = dict.fromkeys(DEVICES, "ok")
        self.commands: list[str] = []

    @staticmethod
    def _load_counters(path: Path) -> list[dict[str, object]]:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            units = document["snapshots"][-1]["cash_units"]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"{path}: not a counters file with snapshots: {exc}") from exc
        if not isinstance(units, list):
            raise ValueError(f"{path}: the last snapshot's cash_units is not a list")
        return units

    # -- DeviceBackend --------------------------------------------------------------------------

    def journals(self) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        for path in self.journal_dir.iterdir():
            match = self._pattern.fullmatch(path.name)
            if match and path.is_file():
                found.append((match.group(1), path.stat().st_size))
        return sorted(found)

    def read_journal(self, name: str, offset: int, size: int) -> bytes:
        if not re.fullmatch(r"\d{8}", name):
            raise LookupError(f"no journal named {name!r}")
        path = self.journal_dir / f"{self.terminal_id}_{name}.txt"
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                return handle.read(size)
        except FileNotFoundError:
            raise LookupError(f"no journal named {name!r}") from None

    def cash_units(self) -> list[dict[str, object]]:
        with self._lock:
            return copy.deepcopy(self._units)

    def device_status(self) -> dict[str, object]:
        with self._lock:
            return {
                "time": self._time(),
                "in_service": self._in_service,
                "safe_door": self._safe_door,
                "devices": dict(self._devices),
            }

    def poll_events(self) -> list[dict[str, object]]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def execute(self, command: str) -> dict[str, object]:
        with self._lock:
            self.commands.append(command)
            if command == "send_counters":
                return {"ok": True}
            if command in ("go_out_of_service", "go_in_service"):
                wanted = command == "go_in_service"
                changed = wanted != self._in_service
                self._in_service = wanted
                if changed:
                    self._events.append(
                        {
                            "kind": "service_mode",
                            "time": self._time(),
                            "in_service": wanted,
                            "reason": "remote_command",
                        }
                    )
                return {"ok": True, "in_service": wanted, "changed": changed}
            return {"ok": False, "error": f"unknown command {command!r}"}

    # -- what a test or an operator does to the device ------------------------------------------

    def raise_event(self, event: dict[str, object]) -> None:
        """Report an unsolicited event; safe-door and hardware events also change the status."""
        with self._lock:
            kind = event.get("kind")
            if kind == "safe_door" and event.get("state") in ("open", "closed"):
                self._safe_door = str(event["state"])
            elif kind == "hardware_error" and event.get("device") in self._devices:
                fatal = event.get("severity") == "fatal"
                self._devices[str(event["device"])] = "fault" if fatal else "warning"
            elif kind == "hardware_recovered" and event.get("device") in self._devices:
                self._devices[str(event["device"])] = "ok"
            self._events.append(dict(event))

    def set_cash_units(self, units: list[dict[str, object]]) -> None:
        with self._lock:
            self._units = copy.deepcopy(units)

    def reboot(self) -> None:
        """Power-cycle: a new boot id; journals and counters stay as they are on disk."""
        with self._lock:
            self.boot_id += 1

    def _time(self) -> str:
        return self._clock().replace(microsecond=0, tzinfo=None).isoformat()
