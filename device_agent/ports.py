"""What the agent and the serial link expect of each other.

``LinkSink`` is the agreed interface (see the project's interface notes): the
host side of the link hands every journal byte, cash-unit snapshot, status and
event to a sink, which stores it durably before returning; only then does the
link acknowledge it to the device. :class:`device_agent.spool.Spool` is the
sink. ``LinkRunner`` is the little the agent needs to run a link: a blocking
``run`` that returns when ``stop`` is set. ``LinkFactory`` builds one from the
``--port`` URL; :func:`device_agent.agent.device_link_factory` is the one place
where the serial link module is wired in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol


class LinkSink(Protocol):
    def journal_offset(self, name: str) -> int: ...
    def store_journal(self, name: str, offset: int, data: bytes) -> None: ...
    def store_cash_units(self, units: list[dict[str, object]], reason: str) -> None: ...
    def store_status(self, status: dict[str, object]) -> None: ...
    def store_event(self, event: dict[str, object]) -> None: ...


class LinkRunner(Protocol):
    def run(self, stop: threading.Event) -> None:
        """Read the device and feed the sink until ``stop`` is set."""
        ...


LinkFactory = Callable[[str, LinkSink], LinkRunner]
