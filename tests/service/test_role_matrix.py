"""Role x route: every route admits exactly the roles ``route_roles.py`` names for it.

The test walks the app's routes (``iter_route_contexts``, which sees through the
included routers), so a new route is covered the day it is added: it fails here
until it has an entry in :data:`tests.service.route_roles.ROUTE_ROLES`, its role
guard must admit exactly the roles written there, and a request from each role
is answered accordingly: allowed roles get past the guard, the others get 403,
and a request without a session gets 401 (API, writes) or is sent to the login
page (pages). Device routes (``/api/v1/devices/...``) are authenticated by the
ATM's request signature (:class:`DeviceGuard`), not by a user session: a
logged-in user of any role is refused there like anyone without a signature.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from atm_service.api.deps import RoleGuard
from atm_service.api.device_guard import DeviceGuard
from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.models.users import Role
from tests.service.route_roles import DEVICE, METRICS_TOKEN, PUBLIC, ROUTE_ROLES
from tests.support import add_user, login, make_settings

OPEN = {key for key, spec in ROUTE_ROLES.items() if spec in (PUBLIC, METRICS_TOKEN)}


def expected_roles(method: str, path: str) -> frozenset[Role]:
    spec = ROUTE_ROLES[(method, path)]
    assert spec not in (PUBLIC, METRICS_TOKEN, DEVICE), (method, path, spec)
    return frozenset(Role(name) for name in spec.split())


@pytest.fixture
def settings() -> Settings:
    return make_settings(metrics_token="metrics-token-" + "t" * 24)


DEVICE_PREFIX = "/api/v1/devices/"


def _guards(dependant: Dependant) -> Iterator[RoleGuard]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, RoleGuard):
            yield dependency.call
        yield from _guards(dependency)


def _device_guarded(dependant: Dependant) -> bool:
    return any(
        isinstance(dependency.call, DeviceGuard) or _device_guarded(dependency)
        for dependency in dependant.dependencies
    )


def device_endpoints(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route that a device signature guards."""
    found = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and _device_guarded(route.dependant):
            assert context.path is not None
            found |= {(method, context.path) for method in context.methods or ()}
    return found


def endpoints(app: FastAPI) -> list[tuple[str, str, frozenset[Role] | None]]:
    """(method, path, roles) for every user route; roles is None for a public one."""
    devices = device_endpoints(app)
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            assert route.path == "/static", f"unexpected mount {route.path}"
            continue
        assert isinstance(route, Route | APIRoute), route
        assert context.path is not None
        for method in sorted(context.methods or ()):
            if method == "HEAD" or (method, context.path) in devices:
                continue
            roles: frozenset[Role] | None = None
            if isinstance(route, APIRoute):
                guards = list(_guards(route.dependant))
                if guards:
                    roles = frozenset.intersection(*(g.roles for g in guards))
            found.append((method, context.path, roles))
    return found


def test_the_table_names_every_route_and_only_routes(app: FastAPI) -> None:
    routes = {(m, p) for m, p, _ in endpoints(app)} | device_endpoints(app)
    missing = sorted(routes - ROUTE_ROLES.keys())
    assert not missing, f"routes with no entry in tests/service/route_roles.py: {missing}"
    stale = sorted(ROUTE_ROLES.keys() - routes)
    assert not stale, f"entries in tests/service/route_roles.py for no route: {stale}"


def test_every_guard_admits_exactly_the_roles_of_the_table(app: FastAPI) -> None:
    for method, path, roles in endpoints(app):
        if (method, path) in OPEN:
            assert roles is None, f"{method} {path} is public in the table but has a guard"
            continue
        assert roles is not None, f"{method} {path} has no role guard"
        assert roles == expected_roles(method, path), (method, path, sorted(roles))
    for key in device_endpoints(app):
        assert ROUTE_ROLES[key] == DEVICE, key


def test_open_routes_answer_without_a_session(client: TestClient) -> None:
    for method, path in sorted(OPEN):
        if (method, path) == ("POST", "/login"):  # the form's own CSRF token, no session
            form = client.get("/login").text
            csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
            data = {"username": "nobody", "password": "wrong", "csrf_token": csrf}
            response = client.post(path, data=data)
        else:
            response = _call(client, method, path, None)
        if ROUTE_ROLES[(method, path)] == METRICS_TOKEN:
            assert response.status_code == 401, (method, path)
            token = {"Authorization": "Bearer metrics-token-" + "t" * 24}
            assert client.get(path, headers=token).status_code == 200
        else:
            assert response.status_code not in (401, 403), (method, path, response.text)


def test_device_routes_are_exactly_the_signed_ones(app: FastAPI) -> None:
    devices = device_endpoints(app)
    assert devices, "no device routes found"
    assert all(path.startswith(DEVICE_PREFIX) for _, path in devices), devices
    user_routes = {(m, p) for m, p, _ in endpoints(app)}
    assert not any(path.startswith(DEVICE_PREFIX) for _, path in user_routes), user_routes
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and (context.path or "").startswith(DEVICE_PREFIX):
            assert not list(_guards(route.dependant)), f"{context.path} mixes user and device"


@pytest.mark.parametrize("role", list(Role))
def test_a_user_session_does_not_authenticate_a_device_route(
    app: FastAPI, client: TestClient, context: AppContext, role: Role
) -> None:
    api = login(client, add_user(context, role))
    for method, path in sorted(device_endpoints(app)):
        response = _call(client, method, path, api.csrf_token)
        assert response.status_code == 401, (method, path, role, response.text)
        assert response.json()["type"] == "/problems/not-authenticated"


def _concrete(path: str) -> str:
    path = path.replace("{terminal_id}", "T1000001").replace("{name}", "20261116")
    return re.sub(r"\{[^}]+\}", "1", path)


def _call(client: TestClient, method: str, path: str, csrf: str | None) -> Any:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False}
    if method in {"POST", "PATCH", "PUT"}:
        kwargs["json"] = {}
    if "/journals/" in path and method == "PUT":
        kwargs["params"] = {"offset": 0}
    return client.request(method, _concrete(path), **kwargs)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_is_refused_exactly_where_it_must_be(
    app: FastAPI, client: TestClient, context: AppContext, role: Role
) -> None:
    username = add_user(context, role)
    routes = [(m, p) for m, p, _ in endpoints(app) if (m, p) not in OPEN]
    assert routes
    for method, path in routes:
        client.cookies.clear()
        api = login(client, username)
        response = _call(client, method, path, api.csrf_token)
        if role in expected_roles(method, path):
            assert response.status_code not in (401, 403), (method, path, role, response.text)
            location = response.headers.get("location", "")
            assert not location.startswith("/login?next="), (method, path, role)
        else:
            assert response.status_code == 403, (method, path, role, response.status_code)
            if path.startswith("/api/"):
                assert response.headers["content-type"] == "application/problem+json"
                assert role.value in response.json()["detail"]


def test_anonymous_requests_are_refused_everywhere(app: FastAPI, client: TestClient) -> None:
    for method, path in device_endpoints(app):
        assert _call(client, method, path, None).status_code == 401, (method, path)
    for method, path, _ in endpoints(app):
        if (method, path) in OPEN:
            continue
        response = _call(client, method, path, None)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path)
        elif method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next=")
        else:
            assert response.status_code == 401, (method, path)
