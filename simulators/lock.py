"""A central-control safe lock in software, behaving like the firmware of one.

The lock is loaded from a provisioning record (its own copy of the lock key and
the policy) and verifies codes offline with :class:`lockctl.LockFirmware`. On
top of that it has what the hardware has:

- a keypad: digits, ``*`` between the user number and the code, ``#`` to enter,
  ``C`` to clear; an entry left unfinished for ``keypad_timeout_seconds`` is dropped;
- a bolt and a door: a good code withdraws the bolt; if the door is not opened
  within ``bolt_open_seconds`` the bolt throws again by itself; closing the door
  throws it; every relock computes the close seal and shows it on the display;
- a penalty timer after repeated wrong codes, shown as ``PENALTY mm:ss``;
- dual control (``2ND CODE`` while waiting for the second user);
- a silent alarm output, latched by a duress code and never shown on the display;
- its own numbered audit trail, downloadable as JSON lines and comparable with the
  service's log (:func:`lockctl.compare_trail`);
- non-volatile memory: :meth:`SimulatedLock.memory` is what it keeps through a power
  cycle (state, trail, door, display) and :meth:`SimulatedLock.restore` loads it again,
  so a lock restarted with its ATM still knows where its seal chain stands.

Time comes from the injected ``clock``; timers run when the lock is next touched
(or on :meth:`SimulatedLock.tick`), so tests move time by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lockctl import (
    LockEvent,
    LockFirmware,
    LockState,
    LockStatus,
    NotOpen,
    Outcome,
    Provisioning,
    ProvisioningError,
)
from lockctl.trail import TRAIL_FORMAT

Clock = Callable[[], datetime]
MEMORY_FORMAT = "atm-sim-lock-memory"

_MESSAGES = {
    Outcome.WRONG_CODE: "WRONG CODE",
    Outcome.USED_CODE: "CODE USED",
    Outcome.SAME_USER: "OTHER USER",
    Outcome.DUAL_MISMATCH: "CODE MISMATCH",
    Outcome.ALREADY_OPEN: "OPEN",
}


def _grouped(digits: str) -> str:
    return f"{digits[:4]}-{digits[4:]}"


class SimulatedLock:
    """One simulated lock. Not thread-safe: drive it from one place."""

    def __init__(
        self,
        provisioning: Provisioning,
        *,
        clock: Clock,
        bolt_open_seconds: int = 60,
        keypad_timeout_seconds: int = 30,
    ) -> None:
        self._firmware = LockFirmware(provisioning.key, provisioning.policy)
        self._state = self._firmware.initial_state()
        self._clock = clock
        self._bolt_open = timedelta(seconds=bolt_open_seconds)
        self._keypad_timeout = timedelta(seconds=keypad_timeout_seconds)
        self._trail: list[LockEvent] = []
        self._buffer = ""
        self._last_key: datetime | None = None
        self._door_open = False
        self._door_opened_once = False
        self._message = "ENTER CODE"
        self._alarm = False
        self.last_outcome: Outcome | None = None
        self.last_seal: str | None = None

    @classmethod
    def from_file(cls, path: str | Path, *, clock: Clock, **options: int) -> SimulatedLock:
        return cls(Provisioning.from_json(Path(path).read_bytes()), clock=clock, **options)

    # -- what the lock shows ---------------------------------------------------

    @property
    def lock_id(self) -> str:
        return self._firmware.lock_id

    @property
    def status(self) -> LockStatus:
        self.tick()
        return self._state.status(self._clock())

    @property
    def display(self) -> str:
        self.tick()
        now = self._clock()
        status = self._state.status(now)
        if status is LockStatus.PENALTY and self._state.penalty_until is not None:
            left = math.ceil((self._state.penalty_until - now).total_seconds())
            return f"PENALTY {left // 60:02d}:{left % 60:02d}"
        if self._buffer:
            user, star, code = self._buffer.partition("*")
            return f"{user}*{'-' * len(code)}" if star else user
        return self._message

    @property
    def penalty_until(self) -> datetime | None:
        """End of the running penalty (the display counts down to it), if any."""
        until = self._state.penalty_until
        return until if until is not None and self._clock() < until else None

    @property
    def alarm(self) -> bool:
        """The silent alarm output (wired to the ATM's alarm panel, not to the display)."""
        return self._alarm

    def reset_alarm(self) -> None:
        self._alarm = False

    @property
    def door_open(self) -> bool:
        return self._door_open

    @property
    def sequence(self) -> int:
        """How many times the lock has relocked."""
        return self._state.sequence

    # -- keypad ----------------------------------------------------------------

    def press(self, keys: str) -> str:
        """Press keys in order; returns the display afterwards."""
        for key in keys:
            self._press(key)
        return self.display

    def enter_code(self, user: int, code: str) -> Outcome | None:
        """Key ``<user>*<code>#`` and return what the lock did."""
        self.last_outcome = None
        self.press(f"C{user}*{code.replace('-', '').replace(' ', '')}#")
        return self.last_outcome

    def _press(self, key: str) -> None:
        self.tick()
        now = self._clock()
        if self._last_key is not None and now - self._last_key > self._keypad_timeout:
            self._buffer = ""
        self._last_key = now
        if key == "C":
            self._buffer = ""
        elif key.isdigit() and key.isascii():
            if len(self._buffer) < 24:
                self._buffer += key
        elif key == "*":
            if "*" not in self._buffer and self._buffer:
                self._buffer += "*"
        elif key == "#":
            entry, self._buffer = self._buffer, ""
            self._submit(entry, now)
        else:
            raise ValueError(f"the keypad has no key {key!r}")

    def _submit(self, entry: str, now: datetime) -> None:
        user_text, star, code = entry.partition("*")
        if not star or not user_text or not code or not 1 <= int(user_text) <= 999_999_999:
            self._message = "ENTRY ERROR"
            self.last_outcome = None
            return
        result = self._firmware.enter(self._state, user=int(user_text), code=code, now=now)
        self._apply(result.state, result.events)
        self.last_outcome = result.outcome
        if result.duress:
            self._alarm = True
        if result.outcome is Outcome.OPENED:
            self._message = "OPEN"
            self._door_opened_once = False
        elif result.outcome is Outcome.FIRST_CODE:
            self._message = "2ND CODE"
        elif result.outcome is Outcome.RESYNCED:
            assert result.seal is not None
            self.last_seal = result.seal
            self._message = f"RESYNC {_grouped(result.seal)}"
        elif result.outcome in (Outcome.LOCKED_OUT, Outcome.IN_PENALTY):
            self._message = "ENTER CODE"
        else:
            self._message = _MESSAGES.get(result.outcome, "ENTER CODE")

    # -- door and bolt ---------------------------------------------------------

    def open_door(self) -> None:
        self.tick()
        if self._state.opening is None:
            raise NotOpen(f"lock {self.lock_id} is locked: the bolt holds the door")
        self._door_open = True
        self._door_opened_once = True

    def close_door(self) -> str:
        """Close the door; the bolt throws and the lock shows its close seal (returned)."""
        self.tick()
        if not self._door_open:
            raise NotOpen(f"lock {self.lock_id}: the door is not open")
        self._door_open = False
        return self._relock(self._clock())

    def relock(self) -> str:
        """Throw the bolt without opening the door (the engineer changed their mind)."""
        self.tick()
        if self._door_open:
            raise NotOpen(f"lock {self.lock_id}: close the door first")
        return self._relock(self._clock())

    def _relock(self, now: datetime) -> str:
        result = self._firmware.relock(self._state, now=now)
        self._apply(result.state, result.events)
        self.last_seal = result.seal
        self._message = f"SEAL {_grouped(result.seal)}"
        return result.seal

    def tick(self) -> None:
        """Run timers: a first code of two expires; the bolt throws by itself if the door
        was not opened in time."""
        now = self._clock()
        expired = self._firmware.expire(self._state, now=now)
        if expired.events:
            self._apply(expired.state, expired.events)
            self._message = "ENTER CODE"
        opening = self._state.opening
        if opening is None or self._door_open or self._door_opened_once:
            return
        deadline = opening.opened_at + self._bolt_open
        if now >= deadline:
            self._relock(deadline)

    def _apply(self, state: LockState, events: tuple[LockEvent, ...]) -> None:
        self._state = state
        self._trail.extend(events)

    # -- non-volatile memory ---------------------------------------------------

    def memory(self) -> dict[str, Any]:
        """What the lock keeps through a power cycle, as JSON-ready data (secret: it holds
        the chain value)."""
        return {
            "format": MEMORY_FORMAT,
            "version": 1,
            "lock": self.lock_id,
            "state": self._state.to_dict(),
            "trail": [event.to_dict() for event in self._trail],
            "door_open": self._door_open,
            "door_opened_once": self._door_opened_once,
            "message": self._message,
            "last_seal": self.last_seal,
            "alarm": self._alarm,
        }

    def restore(self, data: Any) -> None:
        """Load :meth:`memory`'s data; raises :class:`lockctl.ProvisioningError` if it is not
        this lock's memory or is malformed."""
        if not isinstance(data, dict) or data.get("format") != MEMORY_FORMAT:
            raise ProvisioningError(f"not a lock memory ({MEMORY_FORMAT})")
        if data.get("lock") != self.lock_id:
            raise ProvisioningError(
                f"the memory is of lock {data.get('lock')!r}, not of {self.lock_id}"
            )
        state = LockState.from_dict(data.get("state"))
        trail = data.get("trail")
        if not isinstance(trail, list):
            raise ProvisioningError("lock memory: trail must be a list")
        message, seal = data.get("message"), data.get("last_seal")
        if not isinstance(message, str) or not (seal is None or isinstance(seal, str)):
            raise ProvisioningError("lock memory: message and last_seal must be text")
        self._trail = [LockEvent.from_dict(event) for event in trail]
        self._state = state
        self._door_open = bool(data.get("door_open"))
        self._door_opened_once = bool(data.get("door_opened_once"))
        self._message = message
        self.last_seal = seal
        self._alarm = bool(data.get("alarm"))
        self._buffer = ""

    # -- audit trail -----------------------------------------------------------

    def download_trail(self, *, since_seq: int = 0) -> list[LockEvent]:
        """The lock's trail records from ``since_seq`` on."""
        return [event for event in self._trail if event.seq >= since_seq]

    def trail_jsonl(self, *, since_seq: int = 0) -> str:
        header = {"format": TRAIL_FORMAT, "version": 1, "lock": self.lock_id}
        lines = [json.dumps(header, sort_keys=True)]
        lines += [
            json.dumps(event.to_dict(), sort_keys=True)
            for event in self.download_trail(since_seq=since_seq)
        ]
        return "\n".join(lines) + "\n"

    def accepted_codes_now(self, user: int) -> int:
        """How many codes the keypad would accept for ``user`` at this moment."""
        return self._firmware.candidate_count(self._clock())

    def would_accept(self, user: int, code: str) -> bool:
        return self._firmware.accepts(self._state, user=user, code=code, now=self._clock())
