"""Discrepancies of done runs: finding them by filter, reading one, resolving and reopening.

A discrepancy is ``open`` until someone on the team marks it ``resolved`` with
a note (a refund made, a dispute answered, a cassette shortage written off);
it can be reopened, again with a note. Each change appends one
:class:`~atm_service.models.reconciliation.ReconResolution` (who, when, from
what, to what, why) in the transaction that makes it, under a row lock, so
two people acting at once both see the other's change: the second is refused
with 409 unless it carries the version it was made from and that version is
still current. A retried request with the same ``Idempotency-Key`` changes
nothing and answers as the first did.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import defer
from sqlmodel import Session, col, func, select

from atm_service.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from atm_service.models.reconciliation import (
    DiscrepancyDetail,
    DiscrepancyPublic,
    DiscrepancyStatus,
    ReconDiscrepancy,
    ReconResolution,
    ResolutionAction,
    ResolutionPublic,
)
from atm_service.models.users import User

OWED = ("customer", "bank", "none")
SORTS = ("position", "amount", "deadline")
MAX_EXPORT_ROWS = 500_000


@dataclass(frozen=True)
class DiscrepancyFilter:
    """What a list of discrepancies is narrowed to; every field is optional."""

    run_id: int | None = None
    kind: str | None = None
    terminal_id: str | None = None  # a terminal id, or the start of one
    date_from: date | None = None
    date_to: date | None = None
    owed_to: str | None = None
    status: DiscrepancyStatus | None = None
    amount_min: int | None = None  # minor units, inclusive
    amount_max: int | None = None

    def check(self) -> None:
        if self.owed_to is not None and self.owed_to not in OWED:
            raise InvalidInput(f"owed_to must be one of {', '.join(OWED)}.", field="owed_to")
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise InvalidInput("date_to comes before date_from.", field="date_to")
        if (
            self.amount_min is not None
            and self.amount_max is not None
            and self.amount_max < self.amount_min
        ):
            raise InvalidInput("The largest amount is below the smallest.", field="amount_max")
        if self.terminal_id is not None and not self.terminal_id.isalnum():
            raise InvalidInput("A terminal id holds letters and digits only.", field="terminal_id")

    def conditions(self) -> list[Any]:
        self.check()
        found: list[Any] = []
        if self.run_id is not None:
            found.append(col(ReconDiscrepancy.run_id) == self.run_id)
        if self.kind:
            found.append(col(ReconDiscrepancy.kind) == self.kind)
        if self.terminal_id:
            if len(self.terminal_id) == 8:
                found.append(col(ReconDiscrepancy.terminal_id) == self.terminal_id)
            else:
                found.append(col(ReconDiscrepancy.terminal_id).startswith(self.terminal_id))
        if self.date_from is not None:
            found.append(col(ReconDiscrepancy.business_date) >= self.date_from)
        if self.date_to is not None:
            found.append(col(ReconDiscrepancy.business_date) <= self.date_to)
        if self.owed_to:
            found.append(col(ReconDiscrepancy.owed_to) == self.owed_to)
        if self.status is not None:
            found.append(col(ReconDiscrepancy.status) == self.status)
        if self.amount_min is not None:
            found.append(col(ReconDiscrepancy.amount_minor) >= self.amount_min)
        if self.amount_max is not None:
            found.append(col(ReconDiscrepancy.amount_minor) <= self.amount_max)
        return found

    def params(self) -> dict[str, str]:
        """The filter as query parameters (for links and exports)."""
        out: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None or value == "":
                continue
            out[item.name] = value.value if isinstance(value, DiscrepancyStatus) else str(value)
        return out


def _ordering(sort: str) -> list[Any]:
    if sort == "amount":
        return [col(ReconDiscrepancy.amount_minor).desc(), col(ReconDiscrepancy.id)]
    if sort == "deadline":
        deadline = col(ReconDiscrepancy.dispute_deadline)
        return [deadline.is_(None), deadline, col(ReconDiscrepancy.id)]
    if sort == "position":
        return [col(ReconDiscrepancy.run_id).desc(), col(ReconDiscrepancy.seq)]
    raise InvalidInput(f"sort must be one of {', '.join(SORTS)}.", field="sort")


def list_discrepancies(
    session: Session,
    where: DiscrepancyFilter,
    *,
    sort: str = "position",
    limit: int = 50,
    offset: int = 0,
    with_evidence: bool = False,
) -> tuple[list[ReconDiscrepancy], int]:
    conditions = where.conditions()
    ordering = _ordering(sort)
    total = session.exec(
        select(func.count()).select_from(ReconDiscrepancy).where(*conditions)
    ).one()
    query = select(ReconDiscrepancy).where(*conditions).order_by(*ordering)
    if not with_evidence:
        query = query.options(defer(ReconDiscrepancy.evidence))  # type: ignore[arg-type]
    found = session.exec(query.limit(limit).offset(offset)).all()
    return list(found), int(total)


def totals(session: Session, where: DiscrepancyFilter) -> dict[str, int]:
    """Amount at stake by who is owed, over the whole filtered list (minor units)."""
    rows = session.exec(
        select(ReconDiscrepancy.owed_to, func.sum(ReconDiscrepancy.amount_minor))
        .where(*where.conditions())
        .group_by(col(ReconDiscrepancy.owed_to))
    ).all()
    return {str(owed): int(amount or 0) for owed, amount in rows}


def batches(
    session: Session,
    where: DiscrepancyFilter,
    *,
    sort: str = "position",
    size: int = 1000,
    with_evidence: bool = False,
) -> Iterator[list[ReconDiscrepancy]]:
    """The whole filtered list in batches, each read in a transaction of its own."""
    _, total = list_discrepancies(session, where, sort=sort, limit=1)
    if total > MAX_EXPORT_ROWS:
        raise InvalidInput(
            f"{total} discrepancies match; an export holds {MAX_EXPORT_ROWS} at most. "
            "Narrow the filter (a run, a date range, a kind).",
            field="run_id",
        )
    offset = 0
    while True:
        found, _ = list_discrepancies(
            session, where, sort=sort, limit=size, offset=offset, with_evidence=with_evidence
        )
        session.commit()  # never hold a read transaction (SQLite's lock) across batches
        if not found:
            return
        yield found
        offset += len(found)


def get_discrepancy(session: Session, *, discrepancy_id: int) -> ReconDiscrepancy:
    found = session.get(ReconDiscrepancy, discrepancy_id)
    if found is None:
        raise NotFound(f"No discrepancy with id {discrepancy_id}.")
    return found


def history(session: Session, *, discrepancy_id: int) -> list[ReconResolution]:
    return list(
        session.exec(
            select(ReconResolution)
            .where(col(ReconResolution.discrepancy_id) == discrepancy_id)
            .order_by(col(ReconResolution.at), col(ReconResolution.id))
        ).all()
    )


def public(item: ReconDiscrepancy) -> DiscrepancyPublic:
    assert item.id is not None
    return DiscrepancyPublic(
        id=item.id,
        run_id=item.run_id,
        terminal_id=item.terminal_id,
        business_date=item.business_date,
        local_time=item.local_time,
        kind=item.kind,
        stan=item.stan,
        rrn=item.rrn,
        amount_minor=item.amount_minor,
        currency=item.currency,
        owed_to=item.owed_to,
        suggested_action=item.suggested_action,
        dispute_deadline=item.dispute_deadline,
        scheme=item.scheme,
        text=str(item.detail.get("text", "")),
        status=item.status,
        status_at=item.status_at,
        status_by=item.status_by,
        note=item.note,
        version=item.version,
    )


def detail(session: Session, item: ReconDiscrepancy) -> DiscrepancyDetail:
    assert item.id is not None
    return DiscrepancyDetail(
        **public(item).model_dump(),
        detail=item.detail,
        evidence=item.evidence,
        history=[
            ResolutionPublic(
                at=event.at,
                action=event.action,
                from_status=event.from_status,
                to_status=event.to_status,
                note=event.note,
                actor=event.actor,
            )
            for event in history(session, discrepancy_id=item.id)
        ],
    )


def _lock(session: Session, discrepancy_id: int) -> ReconDiscrepancy:
    found = session.exec(
        select(ReconDiscrepancy)
        .where(col(ReconDiscrepancy.id) == discrepancy_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if found is None:
        raise NotFound(f"No discrepancy with id {discrepancy_id}.")
    return found


def change_status(
    session: Session,
    *,
    discrepancy_id: int,
    action: ResolutionAction,
    note: str,
    by: User,
    now: datetime,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> ReconDiscrepancy:
    """Resolve or reopen a discrepancy with a note; the change joins its audit trail."""
    note = note.strip()
    if len(note) < 3:
        raise InvalidInput(
            "Write a note of at least 3 characters: it goes into the audit trail.", field="note"
        )
    if len(note) > 2000:
        raise InvalidInput("A note holds 2000 characters at most.", field="note")
    item = _lock(session, discrepancy_id)
    if idempotency_key:
        done = session.exec(
            select(ReconResolution).where(col(ReconResolution.idempotency_key) == idempotency_key)
        ).first()
        if done is not None:
            if (
                done.discrepancy_id != discrepancy_id
                or done.action is not action
                or done.actor != by.username
            ):
                raise Conflict(
                    "This idempotency key was already used for a different request; "
                    "send a new key for a new action."
                )
            session.commit()
            return item
    if version is not None and version != item.version:
        raise Conflict(
            f"Discrepancy {discrepancy_id} changed since you loaded it (it is now "
            f"{item.status.value}{', by ' + item.status_by if item.status_by else ''}); "
            "reload and try again."
        )
    target = action.target
    if item.status is target:
        raise IllegalTransition(
            f"Discrepancy {discrepancy_id} is already {target.value}"
            + (f" (by {item.status_by})" if item.status_by else "")
            + "."
        )
    session.add(
        ReconResolution(
            discrepancy_id=discrepancy_id,
            at=now,
            action=action,
            from_status=item.status,
            to_status=target,
            note=note,
            actor=by.username,
            actor_user_id=by.id,
            idempotency_key=idempotency_key or None,
        )
    )
    item.status = target
    item.status_at = now
    item.status_by = by.username
    item.note = note
    item.version += 1
    session.add(item)
    session.commit()
    return item


def publics(items: Sequence[ReconDiscrepancy]) -> list[DiscrepancyPublic]:
    return [public(item) for item in items]
