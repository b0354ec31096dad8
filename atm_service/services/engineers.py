"""Engineer profiles: skills, region, shift and location of users with the engineer role."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, func, select

from atm_service.errors import Conflict, InvalidInput, NotFound
from atm_service.models.engineers import (
    Engineer,
    EngineerCreate,
    EngineerPublic,
    EngineerUpdate,
    LocationIn,
    check_shift,
)
from atm_service.models.users import Role, User
from atm_service.services import tasks


def get_engineer(session: Session, *, engineer_id: int) -> Engineer:
    engineer = session.get(Engineer, engineer_id)
    if engineer is None:
        raise NotFound(f"No engineer with id {engineer_id}.")
    return engineer


def engineer_of(session: Session, *, user_id: int) -> Engineer | None:
    return session.exec(select(Engineer).where(col(Engineer.user_id) == user_id)).first()


def to_public(session: Session, engineers: Sequence[Engineer]) -> list[EngineerPublic]:
    user_ids = [engineer.user_id for engineer in engineers]
    users = {user.id: user for user in session.exec(select(User).where(col(User.id).in_(user_ids)))}
    load = tasks.held_counts(session)
    result = []
    for engineer in engineers:
        user = users[engineer.user_id]
        assert engineer.id is not None
        result.append(
            EngineerPublic.model_validate(
                {
                    **engineer.model_dump(),
                    "username": user.username,
                    "full_name": user.full_name,
                    "open_tasks": load.get(engineer.id, 0),
                }
            )
        )
    return result


def list_engineers(
    session: Session,
    *,
    region: str | None = None,
    active: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Engineer], int]:
    query = select(Engineer)
    if region is not None:
        query = query.where(col(Engineer.home_region) == region)
    if active is not None:
        query = query.where(col(Engineer.active).is_(active))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    page = session.exec(query.order_by(col(Engineer.id)).offset(offset).limit(limit))
    return list(page), total


def create_engineer(session: Session, *, data: EngineerCreate, now: datetime) -> Engineer:
    user = session.get(User, data.user_id)
    if user is None:
        raise InvalidInput(f"user_id {data.user_id} names no user.", field="user_id")
    if user.role is not Role.ENGINEER:
        raise InvalidInput(
            f"User {user.username!r} has the {user.role} role; only engineers get a profile.",
            field="user_id",
        )
    if engineer_of(session, user_id=data.user_id) is not None:
        raise Conflict(f"User {user.username!r} already has an engineer profile.", field="user_id")
    engineer = Engineer.model_validate(
        data, update={"created_at": now, "updated_at": now, "location_at": now}
    )
    session.add(engineer)
    session.commit()
    session.refresh(engineer)
    return engineer


def update_engineer(
    session: Session, *, engineer_id: int, data: EngineerUpdate, now: datetime
) -> Engineer:
    engineer = get_engineer(session, engineer_id=engineer_id)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise InvalidInput(f"{name} may not be null.", field=name)
    start = changes.get("shift_start", engineer.shift_start)
    end = changes.get("shift_end", engineer.shift_end)
    try:
        check_shift(start, end)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="shift_start") from None
    engineer.sqlmodel_update(changes)
    if "latitude" in changes or "longitude" in changes:
        engineer.location_at = now
    engineer.updated_at = now
    session.add(engineer)
    session.commit()
    session.refresh(engineer)
    return engineer


def set_location(
    session: Session, *, engineer: Engineer, location: LocationIn, now: datetime
) -> Engineer:
    """Where the engineer is now (their phone reports it); travel estimates start here."""
    engineer.latitude = location.latitude
    engineer.longitude = location.longitude
    engineer.location_at = now
    engineer.updated_at = now
    session.add(engineer)
    session.commit()
    session.refresh(engineer)
    return engineer
