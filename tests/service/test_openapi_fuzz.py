"""Schemathesis against the OpenAPI document, in process: no 5xx, every answer as documented.

Every operation of ``/openapi.json`` gets generated requests, valid ones
(``positive``) and ones that break the schema (``negative``), sent to the app
over ASGI as a user of a role the operation admits (``route_roles.py``), in a
small world: sites, ATMs, engineers, a provisioned safe lock and a task on site.
Each answer must not be a server error, and its status code, content type,
headers and body must be ones the document declares for the operation.

``ATM_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 5);
``ATM_FUZZ_RANDOM=1`` draws new examples on each run instead of the same ones;
``ATM_FUZZ_BACKEND=postgresql`` runs on the PostgreSQL test database.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session

from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.models.users import Role
from tests.service.dispatch_world import World
from tests.service.lock_world import lock_settings, on_site, provision
from tests.service.route_roles import DEVICE, METRICS_TOKEN, PUBLIC, ROUTE_ROLES
from tests.support import FakeClock, add_user, login

EXAMPLES = int(os.environ.get("ATM_FUZZ_EXAMPLES", "5"))
RANDOM = os.environ.get("ATM_FUZZ_RANDOM", "") not in ("", "0")
BACKEND = os.environ.get("ATM_FUZZ_BACKEND", "sqlite")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_context: Any, value: Any) -> bytes:
    """A lock trail upload is JSON lines; the document calls the body a string."""
    return value.encode() if isinstance(value, str) else str(value).encode()


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Engine:
    """SQLite unless ``ATM_FUZZ_BACKEND=postgresql``: the cases are many, and what they
    check hardly depends on the backend."""
    found: Engine = request.getfixturevalue(f"{BACKEND}_engine")
    return found


@pytest.fixture
def settings() -> Settings:
    return lock_settings()


def _credentials(app: FastAPI, context: AppContext) -> dict[str, dict[str, str]]:
    """Cookie and CSRF headers of a logged-in user per role (the engineer has a profile)."""
    names = {role: add_user(context, role) for role in Role if role is not Role.ENGINEER}
    names[Role.ENGINEER] = "eli"
    cookie_name = context.settings.session_cookie_name
    headers = {}
    for role, name in names.items():
        client = TestClient(app)
        api = login(client, name)
        headers[role.value] = {
            "Cookie": f"{cookie_name}={client.cookies[cookie_name]}",
            "X-CSRF-Token": api.csrf_token,
        }
    return headers


def _role_for(method: str, path: str) -> str | None:
    spec = ROUTE_ROLES[(method, path)]
    if spec in (PUBLIC, METRICS_TOKEN, DEVICE):
        return None
    return spec.split()[0]


def _run(
    operation: Any, mode: schemathesis.GenerationMode, headers: dict[str, str], seen: set[int]
) -> None:
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        seen.add(response.status_code)

    call()


MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
def test_every_operation_answers_as_documented(
    app: FastAPI,
    context: AppContext,
    session: Session,
    world: World,
    clock: FakeClock,
    mode: schemathesis.GenerationMode,
) -> None:
    provision(session, context, world)
    on_site(session, world, clock)
    session.commit()
    credentials = _credentials(app, context)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    connection = context.database.connection
    assert connection is not None
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        role = _role_for(operation.method.upper(), operation.path)
        seen = statuses.setdefault(operation.label, set()) if role else set()
        # Each operation starts from the same world: what it changed (a logout, a user
        # made inactive) is rolled back before the next one.
        savepoint = connection.begin_nested()
        try:
            _run(operation, mode, credentials[role] if role else {}, seen)
        except Unsatisfiable:
            # Nothing to break: an operation without parameters or body has no negative case.
            assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:  # a failure group, or a crash
            failures.append(f"{operation.label} as {role or 'anyone'}:\n{exc}")
        finally:
            savepoint.rollback()
    assert operations == sum(1 for _, path in ROUTE_ROLES if path.startswith("/api/"))
    assert not failures, "\n\n".join(failures)
    if mode is schemathesis.GenerationMode.POSITIVE:
        # The users were let in: every operation answered something beyond 401 and 403.
        shut_out = sorted(label for label, seen in statuses.items() if seen <= {401, 403})
        assert not shut_out, shut_out
