"""The service's domain errors.

Services raise these; one handler (:mod:`atm_service.problems`) maps them to
HTTP responses in the RFC 9457 problem-details shape, or to an HTML page.

    ServiceError
    ├── NotFound                  404  an entity that does not exist
    ├── Conflict                  409  a uniqueness or state rule would break
    │   ├── IllegalTransition     409  a state machine refuses the change
    │   ├── OffsetMismatch        409  a device stream is sent from the wrong offset or sequence
    │   └── JournalConflict       409  journal bytes differ from those already stored
    ├── InvalidInput              422  a value is wrong; names the field
    ├── NotAuthenticated          401  no valid session or credentials
    │   └── LoginFailed           401  wrong user name or password
    ├── AccountLocked             423  too many failed logins; retry later
    ├── PermissionDenied          403  authenticated, but not allowed
    ├── CsrfFailed                403  missing or wrong CSRF token
    ├── PayloadTooLarge           413  a request body over the limit
    ├── NotAcceptable             406  the client cannot take what the route sends
    ├── TooManyRequests           429  a rate limit was hit
    ├── NotConfigured             503  a feature needs configuration the service lacks
    └── DatabaseUnavailable       503  the database cannot be reached now; retry after a moment

A problem may carry extension members (RFC 9457 section 3.2) in ``extensions``,
e.g. the offset a device must resend from.

    DatabaseNotMigrated           raised at start-up, never over HTTP
    DemoFailed                    the demo (atm-service demo) cannot start; says why
"""

from __future__ import annotations

from datetime import datetime


class ServiceError(Exception):
    """Base of every error the service reports to a client."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        extensions: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extensions = extensions or {}


class NotFound(ServiceError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(ServiceError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class IllegalTransition(Conflict):
    slug = "illegal-transition"
    title = "Illegal state transition"


class OffsetMismatch(Conflict):
    slug = "offset-mismatch"
    title = "Offset mismatch"


class JournalConflict(Conflict):
    slug = "journal-conflict"
    title = "Journal bytes conflict"


class InvalidInput(ServiceError):
    status = 422
    slug = "validation-error"
    title = "Invalid input"


class NotAuthenticated(ServiceError):
    status = 401
    slug = "not-authenticated"
    title = "Not authenticated"


class LoginFailed(NotAuthenticated):
    slug = "login-failed"
    title = "Login failed"


class AccountLocked(ServiceError):
    status = 423
    slug = "account-locked"
    title = "Account locked"

    def __init__(self, detail: str, *, until: datetime) -> None:
        super().__init__(detail)
        self.until = until


class PermissionDenied(ServiceError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class CsrfFailed(PermissionDenied):
    slug = "csrf-failed"
    title = "CSRF check failed"


class PayloadTooLarge(ServiceError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class NotAcceptable(ServiceError):
    status = 406
    slug = "not-acceptable"
    title = "Not acceptable"


class TooManyRequests(ServiceError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class NotConfigured(ServiceError):
    """The service lacks configuration a feature needs (e.g. lock control's master key)."""

    status = 503
    slug = "not-configured"
    title = "Not configured"


class DatabaseUnavailable(ServiceError):
    """The database is away (restarting, failing over, out of connections): nothing was
    done that the client can rely on, and the same request may be sent again shortly.
    Raised at the boundary from the driver's errors (:func:`atm_service.db.is_unavailable`)."""

    status = 503
    slug = "database-unavailable"
    title = "Database unavailable"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class DatabaseNotMigrated(Exception):
    """The database schema is not at the revision this code needs."""


class DemoFailed(Exception):
    """The demo cannot start or run on; the message says why (never over HTTP)."""
