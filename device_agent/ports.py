"""What the agent needs of a serial link, and how it gets one.

The sink side is :class:`device_agent.link.LinkSink`, the agreed interface (see
the project's interface notes): the link hands every journal byte, cash-unit
snapshot, status and event to a sink, which stores it durably before returning;
only then does the link acknowledge it to the device.
:class:`device_agent.spool.Spool` is the sink.

``LinkRunner`` is the little the agent needs of a running link: a blocking
``run`` that returns when ``stop`` is set, whether a session with the device is
up, and a remote command. ``LinkFactory`` builds one from the ``--port`` URL;
:func:`device_agent.agent.device_link_factory` builds the real
:class:`device_agent.link.DeviceLink`, and tests pass their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from device_agent.link import LinkSink


class LinkRunner(Protocol):
    def run(self, stop: threading.Event) -> None:
        """Read the device and feed the sink until ``stop`` is set."""
        ...

    @property
    def up(self) -> bool:
        """A session with the device is up."""
        ...

    def send_command(self, command: str, *, timeout: float = 10.0) -> dict[str, object]:
        """Run a remote command on the device; its answer (``{"ok": bool, ...}``).

        Raises :class:`device_agent.protocol.LinkError` when the device cannot be asked.
        """
        ...


LinkFactory = Callable[[str, LinkSink], LinkRunner]

__all__ = ["LinkFactory", "LinkRunner"]
