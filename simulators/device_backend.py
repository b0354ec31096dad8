"""The device side of the serial link: what a (simulated or real) ATM offers the agent.

Journals are addressed by (journal name ``YYYYMMDD``, byte offset); files only grow.
Cash units are CEN/XFS ``WFSCDMCASHUNIT`` dicts with the field names of the
counters format (``shared/formats/README.md``); status and events have the
shapes agreed in the interfaces between the parts.
"""

from __future__ import annotations

from typing import Protocol


class DeviceBackend(Protocol):  # defined in simulators/device_backend.py
    terminal_id: str
    boot_id: int  # changes on every (simulated) reboot/power-up

    def journals(self) -> list[tuple[str, int]]: ...  # [(name "YYYYMMDD", size)], oldest first
    def read_journal(self, name: str, offset: int, size: int) -> bytes: ...
    def cash_units(self) -> list[dict[str, object]]: ...  # XFS WFSCDMCASHUNIT dicts, field names
    # exactly as in shared/formats counters
    def device_status(self) -> dict[str, object]: ...  # shape below
    def poll_events(self) -> list[dict[str, object]]: ...  # unsolicited events since last poll
    def execute(
        self, command: str
    ) -> dict[str, object]: ...  # "send_counters" | "go_out_of_service"

    # | "go_in_service"; returns {"ok": bool, ...}
