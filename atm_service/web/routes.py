"""Login, logout, the per-role home page and the fleet page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from atm_service.api.deps import (
    AddressDep,
    AnyUser,
    AuthDep,
    ContextDep,
    FleetReader,
    NowDep,
    OptionalAuthDep,
    SessionDep,
)
from atm_service.errors import AccountLocked, LoginFailed, TooManyRequests
from atm_service.security import tokens
from atm_service.security.cookies import (
    LOGIN_CSRF_COOKIE,
    LOGIN_CSRF_PURPOSE,
    clear_session_cookie,
    set_session_cookie,
)
from atm_service.services import auth, fleet, fleet_state
from atm_service.web.capabilities import CAPABILITIES, ROLE_TITLES

router = APIRouter(include_in_schema=False)


def ago(now: datetime, then: datetime) -> str:
    """``then`` relative to ``now``, as a person says it: "just now", "5 min ago"."""
    seconds = int((now - then).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect off the service after login."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _login_page(
    request: Request,
    context: ContextDep,
    *,
    error: str | None = None,
    username: str = "",
    next_url: str = "/",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    csrf = tokens.new_token()
    response = context.templates.TemplateResponse(
        request,
        "login.html",
        {"error": error, "username": username, "csrf_token": csrf, "next": next_url},
        status_code=status_code,
        headers=headers,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        tokens.sign(context.secret, LOGIN_CSRF_PURPOSE, csrf),
        max_age=3600,
        httponly=True,
        secure=context.settings.cookie_secure,
        samesite="strict",
        path="/login",
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, context: ContextDep, found: OptionalAuthDep, next: str | None = None
) -> Response:
    if found is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, context, next_url=_safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    address: AddressDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    next_url = _safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    expected = tokens.unsign(context.secret, LOGIN_CSRF_PURPOSE, cookie) if cookie else None
    if expected is None or not csrf_token or not tokens.same(expected, csrf_token):
        return _login_page(
            request,
            context,
            error="The login form expired. Please try again.",
            username=username,
            next_url=next_url,
            status_code=403,
        )
    if not username or not password:
        return _login_page(
            request,
            context,
            error="Enter your user name and password.",
            username=username,
            next_url=next_url,
        )
    try:
        grant = auth.login(
            session,
            settings=context.settings,
            passwords=context.passwords,
            username=username,
            password=password,
            address=address,
            now=now,
        )
    except TooManyRequests as exc:
        return _login_page(
            request,
            context,
            error=exc.detail,
            username=username,
            next_url=next_url,
            status_code=exc.status,
            headers={"Retry-After": str(exc.retry_after_s)},
        )
    except (LoginFailed, AccountLocked) as exc:
        return _login_page(
            request,
            context,
            error=exc.detail,
            username=username,
            next_url=next_url,
        )
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, context, grant)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(found: AuthDep, _user: AnyUser, context: ContextDep, session: SessionDep) -> Response:
    auth.logout(session, token=found.token)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, context)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, found: AuthDep, user: AnyUser, context: ContextDep) -> Response:
    return context.templates.TemplateResponse(
        request,
        "home.html",
        {
            "user": user,
            "csrf_token": found.session.csrf_token,
            "role_title": ROLE_TITLES[user.role],
            "capabilities": CAPABILITIES[user.role],
        },
    )


@router.get("/fleet", response_class=HTMLResponse)
def fleet_page(
    request: Request,
    found: AuthDep,
    user: FleetReader,
    context: ContextDep,
    session: SessionDep,
    region: str | None = None,
) -> Response:
    sites, _ = fleet.list_sites(session, region=region, limit=500)
    atms, total = fleet.list_atms(session, region=region, limit=500)
    regions = sorted({site.region for site in fleet.list_sites(session, limit=500)[0]})
    sites_by_id = {site.id: site for site in sites}
    now = context.clock()
    states, _ = fleet_state.list_states(
        session,
        now=now,
        offline_after=timedelta(seconds=context.settings.device_offline_after_s),
        region=region,
        limit=500,
    )
    return context.templates.TemplateResponse(
        request,
        "fleet.html",
        {
            "user": user,
            "csrf_token": found.session.csrf_token,
            "atms": atms,
            "total": total,
            "sites": sites_by_id,
            "regions": regions,
            "region": region,
            "states": {state.atm_id: state for state in states},
            "seen": {
                state.atm_id: ago(now, state.last_seen_at) for state in states if state.last_seen_at
            },
        },
    )
