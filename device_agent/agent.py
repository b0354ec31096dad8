"""The running agent: serial link, spool and uploader together.

The link runs in a thread of its own (serial I/O blocks) and writes into the
spool; the uploader and the heartbeats run on an asyncio loop and read from it.
They share nothing but the spool, so a service outage never slows the link and
a link failure never stops the uploads of what is already spooled. A link that
fails (port unplugged, device powered off) is started again after
``link_retry_s``; a signal or :meth:`Agent.stop` ends everything in order.

:func:`device_link_factory` is the single place where the serial link of
``device_agent.link`` is wired in; tests and other front ends pass their own
``LinkFactory``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx

from device_agent.errors import LinkUnavailable
from device_agent.ports import LinkFactory, LinkRunner, LinkSink
from device_agent.signing import RequestSigner, load_key_file
from device_agent.spool import Spool
from device_agent.uploader import Clock, Sleep, Uploader, UploadPolicy, system_clock

logger = logging.getLogger("device_agent.agent")


def device_link_factory(port: str, sink: LinkSink) -> LinkRunner:
    """The serial link to the device at the pyserial URL ``port``, feeding ``sink``.

    Uses ``device_agent.link.DeviceLink(port, sink)``, whose ``run(stop)`` reads the
    device until ``stop`` is set.
    """
    try:
        module = importlib.import_module("device_agent.link")
    except ModuleNotFoundError as exc:
        if exc.name != "device_agent.link":
            raise
        raise LinkUnavailable(
            "this installation of the agent has no serial link module (device_agent.link)"
        ) from None
    device_link = getattr(module, "DeviceLink", None)
    if device_link is None:
        raise LinkUnavailable("device_agent.link defines no DeviceLink")
    return cast(LinkRunner, device_link(port, sink))


@dataclass(frozen=True)
class AgentConfig:
    """Everything ``atm-agent run`` is told."""

    port: str
    service_url: str
    key_path: Path
    spool_path: Path
    terminal_id: str | None = None
    policy: UploadPolicy = field(default_factory=UploadPolicy)
    request_timeout_s: float = 30.0
    link_retry_s: float = 5.0


class LinkState:
    """The link's condition as the heartbeat reports it; written by the link thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = "starting"

    def set(self, value: str) -> None:
        with self._lock:
            self._value = value

    def __call__(self) -> str:
        with self._lock:
            return self._value


class Agent:
    """One ATM's agent. ``run`` returns when ``stop`` is called or a signal arrives."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        link_factory: LinkFactory = device_link_factory,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self.link_factory = link_factory
        self.transport = transport
        self.clock = clock
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.link_state = LinkState()
        self.uploader: Uploader | None = None
        self._stop = asyncio.Event()
        self._link_stop = threading.Event()

    def stop(self) -> None:
        """Ask the agent to finish (safe from the event loop's thread)."""
        self._stop.set()
        self._link_stop.set()

    def _run_link(self, spool: Spool) -> None:
        while not self._link_stop.is_set():
            try:
                link = self.link_factory(self.config.port, spool)
                self.link_state.set("running")
                link.run(self._link_stop)
                self.link_state.set("stopped")
            except LinkUnavailable as exc:
                self.link_state.set(f"unavailable: {exc}")
                logger.error("serial link unavailable: %s", exc)
            except Exception as exc:  # the link's own failures must not end the agent
                self.link_state.set(f"failed: {type(exc).__name__}: {exc}")
                logger.exception("serial link on %s failed; restarting", self.config.port)
            self._link_stop.wait(self.config.link_retry_s)

    async def run(self) -> None:
        key = load_key_file(self.config.key_path)
        spool = Spool(self.config.spool_path, clock=self.clock)
        link_thread = threading.Thread(
            target=self._run_link, args=(spool,), name="serial-link", daemon=True
        )
        try:
            async with httpx.AsyncClient(
                base_url=self.config.service_url,
                auth=RequestSigner(key, clock=self.clock),
                transport=self.transport,
                timeout=self.config.request_timeout_s,
            ) as client:
                self.uploader = Uploader(
                    spool=spool,
                    client=client,
                    policy=self.config.policy,
                    terminal_id=self.config.terminal_id,
                    clock=self.clock,
                    rng=self.rng,
                    sleep=self.sleep,
                    link_state=self.link_state,
                )
                link_thread.start()
                await self.uploader.run(self._stop)
        finally:
            self._link_stop.set()
            if link_thread.is_alive():
                await asyncio.to_thread(link_thread.join, 30)
            spool.close()


def run_agent(config: AgentConfig) -> None:
    """Run until SIGINT or SIGTERM."""

    async def main() -> None:
        agent = Agent(config)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, agent.stop)
        await agent.run()

    asyncio.run(main())
