"""Request dependencies: database session, clock, the logged-in user and role guards.

Every route that is not public depends on a :class:`RoleGuard`, which
authenticates the session cookie, checks the user's role and, for unsafe
methods, the CSRF token (the ``X-CSRF-Token`` header or a ``csrf_token`` form
field). The role × route test finds the guards by walking each route's
dependencies, so a route without one fails the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from atm_service.context import AppContext
from atm_service.errors import CsrfFailed, NotAuthenticated, NotFound, PermissionDenied
from atm_service.models.engineers import Engineer
from atm_service.models.users import Role, User, UserSession
from atm_service.request_log import note_user
from atm_service.security import tokens
from atm_service.security.cookies import SESSION_PURPOSE
from atm_service.services import auth, engineers, rate_limits

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    with context.database.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_now(context: ContextDep) -> datetime:
    return context.clock()


NowDep = Annotated[datetime, Depends(get_now)]


def client_address(request: Request) -> str:
    """The client's address (behind a proxy, what the server took from X-Forwarded-For
    when the proxy is trusted: uvicorn's ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


AddressDep = Annotated[str, Depends(client_address)]


@dataclass(frozen=True)
class Authenticated:
    user: User
    session: UserSession
    token: str


def optional_auth(
    request: Request, context: ContextDep, session: SessionDep, now: NowDep
) -> Authenticated | None:
    """The live login behind the request's session cookie, if any."""
    cookie = request.cookies.get(context.settings.session_cookie_name)
    if not cookie:
        return None
    token = tokens.unsign(context.secret, SESSION_PURPOSE, cookie)
    if token is None:
        return None
    found = auth.resolve_session(session, settings=context.settings, token=token, now=now)
    # End the read transaction: on SQLite it holds the write lock (BEGIN IMMEDIATE),
    # which must not wait on a slow client sending the rest of a form.
    session.commit()
    if found is None:
        return None
    user, user_session = found
    request.state.user_id = user.id
    note_user(user.id)
    return Authenticated(user=user, session=user_session, token=token)


OptionalAuthDep = Annotated[Authenticated | None, Depends(optional_auth)]


def require_auth(found: OptionalAuthDep) -> Authenticated:
    if found is None:
        raise NotAuthenticated("Log in first: this needs a valid session.")
    return found


AuthDep = Annotated[Authenticated, Depends(require_auth)]


async def check_csrf(request: Request, found: Authenticated) -> None:
    if request.method in SAFE_METHODS:
        return
    supplied = request.headers.get("x-csrf-token")
    content_type = request.headers.get("content-type", "")
    if supplied is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        supplied = value if isinstance(value, str) else None
    if not supplied or not tokens.same(supplied, found.session.csrf_token):
        raise CsrfFailed(
            "Missing or wrong CSRF token: send the X-CSRF-Token header or the form's "
            "csrf_token field."
        )


class RoleGuard:
    """A dependency that admits only the given roles (and checks CSRF on writes)."""

    def __init__(self, *roles: Role) -> None:
        if not roles:
            raise ValueError("a guard must admit at least one role")
        self.roles = frozenset(roles)

    def __repr__(self) -> str:
        return f"RoleGuard({', '.join(sorted(self.roles))})"

    async def __call__(self, request: Request, found: AuthDep) -> User:
        if found.user.role not in self.roles:
            allowed = ", ".join(sorted(self.roles))
            raise PermissionDenied(
                f"The {found.user.role} role may not do this; it needs one of: {allowed}."
            )
        await check_csrf(request, found)
        return found.user


ALL_ROLES = tuple(Role)

AnyUser = Annotated[User, Depends(RoleGuard(*ALL_ROLES))]
Admin = Annotated[User, Depends(RoleGuard(Role.ADMIN))]
FleetReader = Annotated[
    User, Depends(RoleGuard(Role.ADMIN, Role.DISPATCHER, Role.RECONCILER, Role.AUDITOR))
]
FleetEditor = Annotated[User, Depends(RoleGuard(Role.ADMIN))]

# Dispatch: who may see and change tasks, engineers and the service figures.
Dispatcher = Annotated[User, Depends(RoleGuard(Role.ADMIN, Role.DISPATCHER))]
TaskReader = Annotated[User, Depends(RoleGuard(Role.ADMIN, Role.DISPATCHER, Role.ENGINEER))]
EngineerUser = Annotated[User, Depends(RoleGuard(Role.ENGINEER))]
KpiReader = Annotated[User, Depends(RoleGuard(Role.ADMIN, Role.DISPATCHER, Role.AUDITOR))]

# Lock control: locks and alarms are seen by dispatchers and auditors; the
# lock-access log by auditors (read-only) and administrators only.
LockReader = Annotated[User, Depends(RoleGuard(Role.ADMIN, Role.DISPATCHER, Role.AUDITOR))]
LogReader = Annotated[User, Depends(RoleGuard(Role.ADMIN, Role.AUDITOR))]
# Reconciliation: the team (and administrators) run and resolve; auditors read.
ReconReader = Annotated[User, Depends(RoleGuard(Role.ADMIN, Role.RECONCILER, Role.AUDITOR))]
Reconciler = Annotated[User, Depends(RoleGuard(Role.ADMIN, Role.RECONCILER))]


def current_engineer(session: SessionDep, user: EngineerUser) -> Engineer:
    """The logged-in engineer's dispatch profile."""
    assert user.id is not None
    engineer = engineers.engineer_of(session, user_id=user.id)
    if engineer is None:
        raise NotFound("Your account has no engineer profile yet; ask a dispatcher to add one.")
    return engineer


CurrentEngineer = Annotated[Engineer, Depends(current_engineer)]


def limit_code_requests(
    context: ContextDep, session: SessionDep, now: NowDep, address: AddressDep, user: EngineerUser
) -> None:
    """Count a request for a lock code, a reveal or a seal report; 429 over the limit."""
    assert user.id is not None
    checks = rate_limits.code_checks(context.settings, user_id=user.id, address=address)
    rate_limits.admit(session, checks, now=now)


CodeRequestLimit = Annotated[None, Depends(limit_code_requests)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=64,
        description="Repeat a request with the same key and it is done once",
    ),
]
