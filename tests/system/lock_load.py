"""Engineers at safe locks for the fault tests: code, open, close, seal, again, through faults.

Each :class:`LockEngineer` is an engineer on site at a task with a simulated lock
(``simulators.lock.SimulatedLock``, loaded from the service's provisioning
record) in a thread of their own. Over and over: ask for a code (their phone's
``POST /api/v1/atms/{id}/lock/codes``), key it into the lock, open and close the
door, report the close seal the lock shows. Requests alternate between the
service instances.

What happens when a request gets no answer (an instance killed, the database
restarting) is what a person would do: send it again. A code request whose
answer was lost finds its code already out (409); the engineer never saw it,
so the dispatcher force-closes it and the engineer asks again. A seal report
whose answer was lost finds nothing outstanding when sent again (409): the
first one was recorded. The :class:`Ledger` keeps what each engineer saw, to
compare with the lock-access log afterwards.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from lockctl import Outcome, Provisioning
from simulators.lock import SimulatedLock

PAUSE_S = 0.1  # between one cycle's seal and the next code


@dataclass
class Ledger:
    """What the engineers saw happen."""

    codes_received: int = 0
    seals_confirmed: list[tuple[str, int]] = field(default_factory=list)  # (lock, sequence)
    seals_answer_lost: int = 0
    force_closed: int = 0
    seen: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Sessions:
    """A logged-in user's clients, one per instance, used in turn."""

    def __init__(self, bases: list[str], username: str, password: str, seen: Counter[str]) -> None:
        self.seen = seen
        self.clients: list[httpx.Client] = []
        login: httpx.Response | None = None
        for base in bases:
            if login is None:
                login = httpx.post(
                    f"{base}/api/v1/session",
                    json={"username": username, "password": password},
                    timeout=30,
                )
                login.raise_for_status()
            self.clients.append(
                httpx.Client(
                    base_url=base,
                    cookies=dict(login.cookies),
                    headers={"X-CSRF-Token": login.json()["csrf_token"]},
                    timeout=10,
                )
            )
        self.turn = 0

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response | None:
        """The answer, or None when none came (refused, reset, timed out)."""
        self.turn = (self.turn + 1) % len(self.clients)
        try:
            response = self.clients[self.turn].post(path, json=body)
        except httpx.TransportError as exc:
            self.seen[f"transport: {type(exc).__name__}"] += 1
            return None
        self.seen[str(response.status_code)] += 1
        return response

    def close(self) -> None:
        for client in self.clients:
            client.close()


def _pause(response: httpx.Response | None) -> None:
    if response is not None and response.headers.get("retry-after"):
        time.sleep(min(2.0, float(response.headers["retry-after"])))
    else:
        time.sleep(0.2)


@dataclass
class LockEngineer:
    """One engineer on site at ``task_id``, at the lock of ATM ``atm_id``."""

    username: str
    atm_id: int
    task_id: int
    record: str  # the lock's provisioning record
    cycles: int = 0

    def run(
        self,
        bases: list[str],
        password: str,
        dispatcher: Sessions,
        ledger: Ledger,
        stop: threading.Event,
    ) -> None:
        lock = SimulatedLock(Provisioning.from_json(self.record), clock=lambda: datetime.now(UTC))
        phone = Sessions(bases, self.username, password, ledger.seen)
        path = f"/api/v1/atms/{self.atm_id}/lock"
        try:
            while not stop.is_set():
                code = self._code(phone, dispatcher, path, ledger, stop)
                if code is None:
                    continue
                outcome = lock.enter_code(code["user_number"], code["code"])
                if outcome is not Outcome.OPENED:
                    raise AssertionError(
                        f"lock {lock.lock_id} did not open with its code: {outcome}"
                    )
                lock.open_door()
                seal = lock.close_door()
                self._seal(phone, path, seal, ledger)
                self.cycles += 1
                stop.wait(PAUSE_S)
        finally:
            phone.close()

    def _code(
        self,
        phone: Sessions,
        dispatcher: Sessions,
        path: str,
        ledger: Ledger,
        stop: threading.Event,
    ) -> dict[str, Any] | None:
        while not stop.is_set():
            response = phone.post(path + "/codes", {"task_id": self.task_id})
            if response is not None and response.status_code == 201:
                with ledger.lock:
                    ledger.codes_received += 1
                body: dict[str, Any] = response.json()
                return body
            if response is not None and response.status_code == 409:
                if "code out" not in response.json().get("detail", ""):
                    raise AssertionError(f"code request refused: {response.text}")
                # Issued, but the answer was lost: nobody has the code. Force-close it.
                self._force_close(dispatcher, path, ledger)
                return None
            if response is not None and response.status_code != 503:
                raise AssertionError(f"code request: {response.status_code} {response.text}")
            _pause(response)
        return None

    def _force_close(self, dispatcher: Sessions, path: str, ledger: Ledger) -> None:
        body = {"reason": "the code's answer was lost on the way to the phone"}
        while True:
            response = dispatcher.post(path + "/force-close", body)
            if response is not None and response.status_code == 200:
                with ledger.lock:
                    ledger.force_closed += 1
                return
            if response is not None and response.status_code == 409:
                return  # an earlier attempt closed it; the log says so
            if response is not None and response.status_code != 503:
                raise AssertionError(f"force-close: {response.status_code} {response.text}")
            _pause(response)

    def _seal(self, phone: Sessions, path: str, seal: str, ledger: Ledger) -> None:
        while True:
            response = phone.post(path + "/seal", {"task_id": self.task_id, "seal": seal})
            if response is not None and response.status_code == 200:
                out = response.json()
                with ledger.lock:
                    ledger.seals_confirmed.append((out["lock_id"], out["sequence"]))
                return
            if response is not None and response.status_code == 409:
                if "no seal is due" not in response.json().get("detail", ""):
                    raise AssertionError(f"seal report refused: {response.text}")
                with ledger.lock:
                    ledger.seals_answer_lost += 1  # recorded by the attempt whose answer was lost
                return
            if response is not None and response.status_code != 503:
                raise AssertionError(f"seal report: {response.status_code} {response.text}")
            _pause(response)


class LockCrew:
    """The engineers' threads."""

    def __init__(
        self,
        engineers: list[LockEngineer],
        bases: list[str],
        password: str,
        dispatcher_name: str,
    ) -> None:
        self.ledger = Ledger()
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.engineers = engineers
        self.dispatcher = Sessions(bases, dispatcher_name, password, self.ledger.seen)
        self.threads = [
            threading.Thread(target=self._run, args=(e, bases, password), daemon=True)
            for e in engineers
        ]

    def _run(self, engineer: LockEngineer, bases: list[str], password: str) -> None:
        try:
            engineer.run(bases, password, self.dispatcher, self.ledger, self.stop)
        except BaseException as exc:
            self.errors.append(exc)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        self.dispatcher.close()
        if self.errors:
            raise self.errors[0]
