"""Setting and clearing the session cookie (HttpOnly, SameSite=Lax, signed)."""

from __future__ import annotations

from starlette.responses import Response

from atm_service.context import AppContext
from atm_service.security import tokens
from atm_service.services.auth import LoginGrant

SESSION_PURPOSE = "session"
LOGIN_CSRF_PURPOSE = "login-csrf"
LOGIN_CSRF_COOKIE = "atm_login_csrf"


def set_session_cookie(response: Response, context: AppContext, grant: LoginGrant) -> None:
    response.set_cookie(
        context.settings.session_cookie_name,
        tokens.sign(context.secret, SESSION_PURPOSE, grant.token),
        max_age=context.settings.session_lifetime_minutes * 60,
        httponly=True,
        secure=context.settings.cookie_secure,
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response, context: AppContext) -> None:
    response.delete_cookie(
        context.settings.session_cookie_name,
        httponly=True,
        secure=context.settings.cookie_secure,
        samesite="lax",
        path="/",
    )
