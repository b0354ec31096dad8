"""What a device offers the serial link: the ``DeviceBackend`` protocol.

The device side of the link (:mod:`simulators.serial_device`) serves any object
with this shape: the simulated ATM implements it, and so does the file-backed
device of :mod:`simulators.file_backend`. Journals are addressed by name
(``YYYYMMDD``, one file per business day, files only grow) and byte offset.

``terminal_id`` and ``boot_id`` are read-only here, so a backend may implement
them as plain attributes or as properties; ``boot_id`` changes on every
(simulated) reboot or power-up, and the link resynchronises when it does.
"""

from __future__ import annotations

from typing import Protocol


class DeviceBackend(Protocol):
    @property
    def terminal_id(self) -> str: ...

    @property
    def boot_id(self) -> int: ...

    def journals(self) -> list[tuple[str, int]]:
        """[(name "YYYYMMDD", size in bytes)], oldest first."""
        ...

    def read_journal(self, name: str, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of journal ``name`` from ``offset`` (fewer at its end)."""
        ...

    def cash_units(self) -> list[dict[str, object]]:
        """XFS ``WFSCDMCASHUNIT`` dicts, field names as in the counters format."""
        ...

    def device_status(self) -> dict[str, object]:
        """``{"time", "in_service", "safe_door", "devices": {name: "ok"|"warning"|"fault"}}``."""
        ...

    def poll_events(self) -> list[dict[str, object]]:
        """Unsolicited events since the last poll, oldest first."""
        ...

    def execute(self, command: str) -> dict[str, object]:
        """Run "send_counters", "go_out_of_service" or "go_in_service"; ``{"ok": bool, ...}``."""
        ...
