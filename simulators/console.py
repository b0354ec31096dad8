"""The operator's console of running simulated ATMs: faults, repairs and the clock, by text.

One command per line; each gets one line back, starting ``ok`` or ``error``.
The same commands work on standard input (``atm-sim atm`` / ``atm-sim fleet``)
and over a loopback TCP control port (``--control PORT``; e.g. ``nc 127.0.0.1
PORT``), so a person, a script or a test can drive the ATMs alike.

With more than one ATM, commands about an ATM name it first (``T1000002
inject dispenser_jam``) or say ``all``; with one ATM the name may be left out.
The commands are listed in :data:`HELP` (and answered to ``help``).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from simulators.errors import SimulatorError
from simulators.live import DEVICES, FAULTS, AcceleratedClock
from simulators.live_device import LiveDevice

HELP = """\
inject FAULT [unit N] [reversal|no-reversal]  raise a fault now, or on the next transaction it fits
clear DEVICE         an engineer clears a device (a device name, or cassettes)
door open|close      the safe door
replenish [N:D ...]  cash exchange; N:D miscounts cassette N by D notes (e.g. 3:-2)
visit                supervisor mode without a cash exchange
reboot               power failure and restart: the link starts a new session
status               status, journals, cassette counts, today's transactions (JSON)
list                 the ATMs and where their links are served
clock                simulated time, speed, paused
pause | resume       stop / restart simulated time (journals stop growing)
speed N              simulated seconds per real second
help                 this list
quit                 stop everything, as Ctrl-C does
"""
CLEARABLE = (*DEVICES, "cassettes")
GLOBAL = frozenset({"help", "list", "clock", "pause", "resume", "speed", "quit"})
PER_ATM = frozenset({"inject", "clear", "door", "replenish", "visit", "reboot", "status"})


class ConsoleError(SimulatorError):
    """A console line that cannot be carried out; the message says why."""


@dataclass
class Console:
    """Carries out console lines against ``devices`` (by terminal id) and their shared clock."""

    devices: Mapping[str, LiveDevice]
    clock: AcceleratedClock
    on_quit: Callable[[], None] = lambda: None
    log: list[str] = field(default_factory=list)

    def execute(self, line: str) -> str:
        """One line in, one line out: ``ok ...`` or ``error ...``."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return f"error {exc}"
        if not words:
            return "ok"
        try:
            answer = self._dispatch(words)
        except (ConsoleError, SimulatorError, ValueError) as exc:
            return f"error {exc}"
        self.log.append(line.strip())
        return f"ok {answer}".rstrip()

    def _dispatch(self, words: list[str]) -> str:
        verb = words[0].lower()
        if verb in GLOBAL:
            return self._global(verb, words[1:])
        targets, words = self._targets(words)
        verb = words[0].lower() if words else ""
        if verb not in PER_ATM:
            raise ConsoleError(f"unknown command {verb or words!r}; try `help`")
        answers = [self._per_atm(device, verb, words[1:]) for device in targets]
        return answers[0] if len(answers) == 1 else " | ".join(answers)

    def _targets(self, words: list[str]) -> tuple[list[LiveDevice], list[str]]:
        first = words[0]
        if first.lower() == "all":
            return list(self.devices.values()), words[1:]
        if first.upper() in self.devices:
            return [self.devices[first.upper()]], words[1:]
        if len(self.devices) == 1:
            return list(self.devices.values()), words
        if first.lower() in PER_ATM:
            raise ConsoleError(
                f"name the ATM first, e.g. `{next(iter(self.devices))} {' '.join(words)}`, or `all`"
            )
        raise ConsoleError(f"unknown command or terminal {first!r}; try `help` or `list`")

    # --- commands about the whole simulation --------------------------------------

    def _global(self, verb: str, args: list[str]) -> str:
        if verb == "help":
            return "commands: " + " ; ".join(
                " ".join(line.split()) for line in HELP.splitlines() if line.strip()
            )
        if verb == "list":
            return " ".join(f"{tid}={device.address}" for tid, device in self.devices.items())
        if verb == "pause":
            paused = self.clock.pause()
            for device in self.devices.values():
                device.atm.settle()  # what was due is in the journal before the answer
            return f"paused at {paused.isoformat(timespec='seconds')}"
        if verb == "resume":
            return f"running from {self.clock.resume().isoformat(timespec='seconds')}"
        if verb == "speed":
            if len(args) != 1:
                raise ConsoleError("speed needs one number: simulated seconds per real second")
            try:
                factor = float(args[0])
            except ValueError:
                raise ConsoleError(f"speed {args[0]!r} is not a number") from None
            self.clock.set_speed(factor)
            return f"speed {factor:g}"
        if verb == "quit":
            self.on_quit()
            return "stopping"
        return json.dumps(
            {
                "time": self.clock().isoformat(timespec="seconds"),
                "speed": self.clock.factor,
                "paused": self.clock.paused,
            }
        )

    # --- commands about one ATM ------------------------------------------------------

    def _per_atm(self, device: LiveDevice, verb: str, args: list[str]) -> str:
        atm = device.atm
        tid = device.terminal_id
        if verb == "status":
            return json.dumps(atm.summary(), sort_keys=True)
        if verb == "inject":
            fault, unit, reversal = _inject_args(args)
            atm.inject(fault, reversal=reversal, unit=unit)
            return f"{tid} {fault}"
        if verb == "clear":
            if len(args) != 1 or args[0].replace("-", "_") not in CLEARABLE:
                raise ConsoleError(f"clear needs one of {', '.join(CLEARABLE)}")
            atm.clear(args[0].replace("-", "_"))
            return f"{tid} {args[0]} cleared"
        if verb == "door":
            if args not in (["open"], ["close"], ["closed"]):
                raise ConsoleError("door needs `open` or `close`")
            atm.inject("safe_door_open" if args[0] == "open" else "safe_door_closed")
            return f"{tid} safe door {'open' if args[0] == 'open' else 'closed'}"
        if verb == "replenish":
            atm.service_visit(replenish=True, count_errors=[_count_error(arg) for arg in args])
            return f"{tid} replenished"
        if verb == "visit":
            atm.service_visit(replenish=False)
            return f"{tid} supervisor visit"
        atm.inject("power_failure")  # reboot
        return f"{tid} restarted (boot {atm.boot_id})"


def _inject_args(args: list[str]) -> tuple[str, int, bool | None]:
    if not args:
        raise ConsoleError(f"inject needs a fault: {', '.join(FAULTS)}")
    fault = args[0].replace("-", "_").lower()
    unit, reversal = 1, None
    rest = args[1:]
    while rest:
        word = rest.pop(0).lower()
        if word == "unit" and rest:
            try:
                unit = int(rest.pop(0))
            except ValueError:
                raise ConsoleError("unit needs a cassette number 1-4") from None
        elif word in ("reversal", "no-reversal"):
            reversal = word == "reversal"
        else:
            raise ConsoleError(
                f"inject does not take {word!r}: use `unit N`, `reversal`, `no-reversal`"
            )
    return fault, unit, reversal


def _count_error(arg: str) -> tuple[int, int]:
    try:
        unit, delta = arg.split(":")
        return int(unit), int(delta)
    except ValueError:
        raise ConsoleError(
            f"replenish takes count errors as CASSETTE:NOTES (e.g. 3:-2), not {arg!r}"
        ) from None
