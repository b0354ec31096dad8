"""The running agent: serial link, spool, uploader and remote commands together.

The link runs in a thread of its own (serial I/O blocks) and writes into the
spool; the uploader and the heartbeats run on an asyncio loop and read from it.
They share nothing but the spool, so a service outage never slows the link and
a link failure never stops the uploads of what is already spooled. A link that
fails (port unplugged, device powered off) is started again after
``link_retry_s``; a signal or :meth:`Agent.stop` ends everything in order.

Remote commands come in heartbeat answers. :class:`CommandRunner` runs each on
the device over the link (in a worker thread: the link's call blocks) and posts
the device's answer, or why the device could not be asked; a command it has
already run is reported again, not run twice, however often the service lists it.

:func:`device_link_factory` is where the serial link of ``device_agent.link``
is wired in; tests and other front ends pass their own ``LinkFactory``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from device_agent.errors import AgentError, LinkUnavailable
from device_agent.link import DeviceLink, LinkSink
from device_agent.ports import LinkFactory, LinkRunner
from device_agent.protocol import ProtocolError
from device_agent.signing import RequestSigner, load_key_file
from device_agent.spool import Spool
from device_agent.uploader import (
    Clock,
    RemoteCommand,
    Sleep,
    Uploader,
    UploadPolicy,
    system_clock,
)

logger = logging.getLogger("device_agent.agent")

DEFAULT_BAUDRATE = 115200
REMEMBERED_COMMANDS = 256


def device_link_factory(
    port: str,
    sink: LinkSink,
    *,
    baudrate: int = DEFAULT_BAUDRATE,
    terminal_id: str | None = None,
) -> LinkRunner:
    """The serial link (:class:`~device_agent.link.DeviceLink`) to the device at the pyserial
    URL ``port``, 8N1 at ``baudrate``, feeding ``sink``; with ``terminal_id``, a device that
    is another terminal is refused."""
    return DeviceLink(port, sink, baudrate=baudrate, terminal_id=terminal_id)


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
    baudrate: int = DEFAULT_BAUDRATE
    command_timeout_s: float = 15.0


class LinkState:
    """The link's condition as the heartbeat reports it; written by the link thread.

    While a link runs, its session decides: ``up`` or ``waiting for the device``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = "starting"
        self._link: LinkRunner | None = None

    def set(self, value: str, link: LinkRunner | None = None) -> None:
        with self._lock:
            self._value = value
            self._link = link

    @property
    def link(self) -> LinkRunner | None:
        """The running link, if any."""
        with self._lock:
            return self._link

    def __call__(self) -> str:
        with self._lock:
            value, link = self._value, self._link
        if link is not None and value == "running":
            refused = getattr(link, "refused", None)
            if refused:
                return f"refused: {refused}"
            return "up" if link.up else "waiting for the device"
        return value


class CommandRunner:
    """Runs the service's remote commands over the link and reports each answer once.

    ``handle`` is the uploader's ``on_commands``: each listed command not yet run
    is run in the background; one already run is reported again (its answer may
    have been lost). Answers the service has taken are remembered, so a listing
    that crossed the report in flight does not run the command a second time.
    """

    def __init__(
        self,
        *,
        link: Callable[[], LinkRunner | None],
        report: Callable[[int, dict[str, object]], Awaitable[None]],
        timeout_s: float,
    ) -> None:
        self._link = link
        self._report = report
        self.timeout_s = timeout_s
        self.answers: dict[int, dict[str, object]] = {}
        self.reported: OrderedDict[int, None] = OrderedDict()
        self._busy: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, commands: tuple[RemoteCommand, ...]) -> None:
        for command in commands:
            if command.id in self._busy or command.id in self.reported:
                continue
            self._busy.add(command.id)
            task = asyncio.create_task(self._run(command))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, command: RemoteCommand) -> None:
        try:
            answer = self.answers.get(command.id)
            if answer is None:
                answer = await asyncio.to_thread(self.execute, command.command)
                self.answers[command.id] = answer
                logger.info(
                    "command %d %s: %s",
                    command.id,
                    command.command,
                    "done" if answer.get("ok") is True else answer.get("error", "failed"),
                )
            try:
                await self._report(command.id, answer)
            except AgentError as exc:
                logger.warning(
                    "reporting command %d failed (%s); reporting again later", command.id, exc
                )
                return
            self.answers.pop(command.id, None)
            self.reported[command.id] = None
            while len(self.reported) > REMEMBERED_COMMANDS:
                self.reported.popitem(last=False)
        finally:
            self._busy.discard(command.id)

    def execute(self, command: str) -> dict[str, object]:
        """Run ``command`` on the device now; its answer, or ``ok: false`` and why not."""
        link = self._link()
        if link is None:
            return {"ok": False, "error": "the serial link is not running"}
        try:
            return dict(link.send_command(command, timeout=self.timeout_s))
        except ProtocolError as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    async def wait(self) -> None:
        """Let the commands in progress finish."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class Agent:
    """One ATM's agent. ``run`` returns when ``stop`` is called or a signal arrives."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        link_factory: LinkFactory | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self.link_factory: LinkFactory = link_factory or self._serial_link
        self._terminal_id = config.terminal_id
        self.transport = transport
        self.clock = clock
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.link_state = LinkState()
        self.uploader: Uploader | None = None
        self.commands: CommandRunner | None = None
        self._stop = asyncio.Event()
        self._link_stop = threading.Event()

    def stop(self) -> None:
        """Ask the agent to finish (safe from the event loop's thread)."""
        self._stop.set()
        self._link_stop.set()

    def _serial_link(self, port: str, sink: LinkSink) -> LinkRunner:
        return device_link_factory(
            port, sink, baudrate=self.config.baudrate, terminal_id=self._terminal_id
        )

    def _run_link(self, spool: Spool) -> None:
        while not self._link_stop.is_set():
            try:
                # the terminal this agent serves, once known, so a wrong device is refused
                self._terminal_id = self.config.terminal_id or spool.terminal_id()
                link = self.link_factory(self.config.port, spool)
                self.link_state.set("running", link)
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
                self.uploader = uploader = Uploader(
                    spool=spool,
                    client=client,
                    policy=self.config.policy,
                    terminal_id=self.config.terminal_id,
                    clock=self.clock,
                    rng=self.rng,
                    sleep=self.sleep,
                    link_state=self.link_state,
                )
                self.commands = commands = CommandRunner(
                    link=lambda: self.link_state.link,
                    report=uploader.report_command,
                    timeout_s=self.config.command_timeout_s,
                )
                uploader.on_commands = commands.handle
                link_thread.start()
                try:
                    await uploader.run(self._stop)
                finally:
                    await commands.wait()
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
