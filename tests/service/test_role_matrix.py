"""Role x route: every route names the roles that may use it, and refuses the rest.

The test walks the app's routes, so a new route is covered the day it is added:
one without a role guard fails here unless it is in the short public list, or
is a device route. Device routes (``/api/v1/devices/...``) are authenticated by
the ATM's request signature (:class:`DeviceGuard`), not by a user session: a
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
from atm_service.context import AppContext
from atm_service.models.users import Role
from tests.support import add_user, login

PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/api/v1/session"),
}


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


def test_every_route_is_guarded_or_deliberately_public(app: FastAPI) -> None:
    unguarded = {(m, p) for m, p, roles in endpoints(app) if roles is None}
    assert unguarded == PUBLIC


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
    routes = [(m, p, r) for m, p, r in endpoints(app) if r is not None]
    assert routes
    for method, path, roles in routes:
        client.cookies.clear()
        api = login(client, username)
        response = _call(client, method, path, api.csrf_token)
        if role in roles:
            assert response.status_code != 403, (method, path, role, response.text)
        else:
            assert response.status_code == 403, (method, path, role, response.status_code)
            if path.startswith("/api/"):
                assert response.headers["content-type"] == "application/problem+json"
                assert role.value in response.json()["detail"]


def test_anonymous_requests_are_refused_everywhere(app: FastAPI, client: TestClient) -> None:
    for method, path in device_endpoints(app):
        assert _call(client, method, path, None).status_code == 401, (method, path)
    for method, path, roles in endpoints(app):
        if roles is None:
            continue
        response = _call(client, method, path, None)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path)
        elif method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next=")
        else:
            assert response.status_code == 401, (method, path)
