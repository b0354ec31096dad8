"""Live updates for the pages: the outbox poller and the server-sent-events fan-out.

Each service instance runs one poller thread, started when the first browser
subscribes. It reads new rows of the ``dispatch_notification`` outbox (see
:mod:`atm_service.services.notifications`) every ``dispatch_poll_interval_ms``,
or at once when PostgreSQL's ``NOTIFY atm_dispatch`` says a transaction
committed some, and hands each row to the subscribers it is for: the engineer
it names, or every dispatcher's board. So a dispatch made on one instance
reaches an engineer whose page is connected to another.

Row ids come from a sequence, and on PostgreSQL a transaction can commit a
lower id after a higher one is visible. The cursor therefore keeps reading
from the lowest id it has not seen, skipping a hole only after
``GAP_GRACE_SECONDS`` (a rolled-back transaction leaves one forever).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, func, select

from atm_service.db import Database
from atm_service.models.notifications import Audience, DispatchNotification
from atm_service.services import notifications
from atm_service.services.notifications import CHANNEL

logger = logging.getLogger("atm_service.live")

GAP_GRACE_SECONDS = 10.0
QUEUE_SIZE = 500
HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class Update:
    id: int
    task_id: int | None
    payload: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    """One connected page: what it listens to, and the queue its stream reads."""

    audience: Audience
    user_id: int | None
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Update] = field(default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE))
    overflowed: bool = False

    def wants(self, audience: Audience, user_id: int | None) -> bool:
        if audience is Audience.BOARD:
            return self.audience is Audience.BOARD
        return self.audience is Audience.ENGINEER and self.user_id == user_id

    def offer(self, update: Update) -> None:
        """Called on the subscriber's event loop."""
        try:
            self.queue.put_nowait(update)
        except asyncio.QueueFull:
            self.overflowed = True


class Cursor:
    """Which outbox ids have been delivered: all up to ``low``, and ``seen`` above it."""

    def __init__(self, start: int, *, grace: float = GAP_GRACE_SECONDS) -> None:
        self.low = start
        self.high = start
        self.grace = grace
        self.seen: set[int] = set()
        self.gap_since: dict[int, float] = {}

    def take(self, ids: list[int]) -> list[int]:
        """The ids not delivered yet, marked delivered."""
        fresh = [i for i in ids if i > self.low and i not in self.seen]
        self.seen.update(fresh)
        if fresh:
            self.high = max(self.high, *fresh)
        return fresh

    def advance(self, now: float) -> None:
        while True:
            following = self.low + 1
            if following in self.seen:
                self.seen.discard(following)
                self.gap_since.pop(following, None)
                self.low = following
                continue
            if following < self.high:
                since = self.gap_since.setdefault(following, now)
                if now - since >= self.grace:
                    self.gap_since.pop(following, None)
                    self.low = following
                    continue
            return


class LiveUpdates:
    """The per-instance poller and its subscribers."""

    def __init__(self, database: Database, *, poll_interval: float) -> None:
        self.database = database
        self.poll_interval = poll_interval
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # --- subscribers ---------------------------------------------------------------

    def subscribe(
        self, *, audience: Audience, user_id: int | None, loop: asyncio.AbstractEventLoop
    ) -> Subscription:
        """Register a page; call it off the event loop (the first one starts the poller)."""
        subscription = Subscription(audience=audience, user_id=user_id, loop=loop)
        with self._lock:
            self._subscribers.add(subscription)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="live-updates", daemon=True)
                self._thread.start()
        self._ready.wait(timeout=5)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    # --- the poller ----------------------------------------------------------------

    def _latest_id(self) -> int:
        with self.database.session() as session:
            return int(session.exec(select(func.max(DispatchNotification.id))).one() or 0)

    def _fetch(self, after: int) -> list[DispatchNotification]:
        with self.database.session() as session:
            return list(
                session.exec(
                    select(DispatchNotification)
                    .where(col(DispatchNotification.id) > after)
                    .order_by(col(DispatchNotification.id))
                    .limit(2000)
                )
            )

    def _deliver(self, rows: list[DispatchNotification], cursor: Cursor) -> None:
        fresh = set(cursor.take([row.id for row in rows if row.id is not None]))
        if not fresh:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for row in rows:
            if row.id not in fresh:
                continue
            update = Update(id=row.id, task_id=row.task_id, payload=row.payload)
            for subscription in subscribers:
                if subscription.wants(row.audience, row.user_id):
                    try:
                        subscription.loop.call_soon_threadsafe(subscription.offer, update)
                    except RuntimeError:  # its event loop has closed
                        self.unsubscribe(subscription)

    def _run(self) -> None:
        listener = _Listener(self.database) if self.database.dialect == "postgresql" else None
        try:
            cursor = Cursor(self._latest_id())
        except Exception:
            logger.exception("live updates: cannot read the outbox")
            cursor = Cursor(0)
        finally:
            self._ready.set()
        while not self._stop.is_set():
            if listener is not None:
                listener.wait(self.poll_interval)
            else:
                self._stop.wait(self.poll_interval)
            try:
                self._deliver(self._fetch(cursor.low), cursor)
                cursor.advance(time.monotonic())
            except Exception:
                logger.exception("live updates: polling the outbox failed; retrying")
                self._stop.wait(1.0)
        if listener is not None:
            listener.close()


class _Listener:
    """``LISTEN atm_dispatch`` on a connection of its own; falls back to sleeping on trouble."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._raw: Any = None
        self._connect()

    def _connect(self) -> None:
        try:
            raw = self.database.engine.raw_connection()
            connection = raw.driver_connection
            assert connection is not None
            raw.rollback()
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            self._raw = raw
        except Exception:
            logger.warning("live updates: LISTEN unavailable; polling only", exc_info=True)
            self._raw = None

    def wait(self, timeout: float) -> None:
        if self._raw is None:
            time.sleep(timeout)
            self._connect()
            return
        try:
            for _ in self._raw.driver_connection.notifies(timeout=timeout, stop_after=1):
                break
        except Exception:
            logger.warning("live updates: LISTEN connection lost; reconnecting", exc_info=True)
            self.close()

    def close(self) -> None:
        if self._raw is not None:
            try:
                self._raw.invalidate()
            except Exception:  # closing a broken connection may fail again
                logger.debug("live updates: closing the LISTEN connection failed", exc_info=True)
            self._raw = None


def event_name(update: Update) -> str:
    """``task`` for a task's change; a payload may name another event (``alarm``)."""
    name = update.payload.get("event")
    return name if isinstance(name, str) and name.isalpha() else "task"


def format_event(event: str, data: dict[str, Any], *, event_id: int | None = None) -> str:
    """One server-sent event."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


async def stream(
    live: LiveUpdates,
    subscription: Subscription,
    *,
    max_seconds: float,
    hello: dict[str, Any],
    backlog: Sequence[Update] = (),
) -> AsyncIterator[str]:
    """The body of an SSE response: a hello, then updates and keep-alives until ``max_seconds``.

    The browser's EventSource reconnects by itself after the stream ends (or
    the network drops), which re-checks the session, and sends the last event
    id it saw: ``backlog`` holds what it missed, read after subscribing, so
    nothing falls between the two (an update in both is sent once).
    ``reload`` tells a page to reload instead (its queue overflowed).
    """
    deadline = time.monotonic() + max_seconds
    sent = {update.id for update in backlog}
    try:
        yield "retry: 2000\n\n"
        yield format_event("hello", hello)
        for update in backlog:
            yield format_event(event_name(update), update.payload, event_id=update.id)
        while (left := deadline - time.monotonic()) > 0:
            try:
                update = await asyncio.wait_for(
                    subscription.queue.get(), timeout=min(HEARTBEAT_SECONDS, left)
                )
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if subscription.overflowed:
                yield format_event("reload", {})
                return
            if update.id in sent:
                continue
            yield format_event(event_name(update), update.payload, event_id=update.id)
    finally:
        live.unsubscribe(subscription)


def last_event_id(header: str | None) -> int | None:
    """The ``Last-Event-ID`` a reconnecting EventSource sends, when it is one of ours."""
    if header is None or not header.strip().isdigit() or len(header) > 18:
        return None
    return int(header)


def as_updates(rows: Sequence[DispatchNotification]) -> list[Update]:
    return [
        Update(id=row.id, task_id=row.task_id, payload=row.payload)
        for row in rows
        if row.id is not None
    ]


async def open_stream(
    live: LiveUpdates,
    database: Database,
    *,
    audience: Audience,
    user_id: int | None,
    last_event_id_header: str | None,
    max_seconds: float,
    hello: dict[str, Any],
) -> AsyncIterator[str]:
    """Subscribe, read what a reconnecting page missed, and return the stream's body.

    The caller must have closed its own database session: on SQLite an open
    transaction holds the lock the poller and the backlog query need.
    """
    loop = asyncio.get_running_loop()
    subscription = await asyncio.to_thread(
        live.subscribe, audience=audience, user_id=user_id, loop=loop
    )
    try:
        after = last_event_id(last_event_id_header)
        backlog: list[Update] = []
        if after is not None:

            def missed() -> list[Update]:
                with database.session() as session:
                    return as_updates(
                        notifications.since(
                            session, audience=audience, user_id=user_id, after_id=after
                        )
                    )

            backlog = await asyncio.to_thread(missed)
    except BaseException:
        live.unsubscribe(subscription)
        raise
    return stream(live, subscription, max_seconds=max_seconds, hello=hello, backlog=backlog)
