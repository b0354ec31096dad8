"""The device guard's plumbing: the request target it verifies, and its bound on threads."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pydantic import ValidationError
from starlette.requests import Request

from atm_service.api.device_guard import DEVICE_THREADS, _device_threads, request_target
from tests.ingest_support import run_async
from tests.support import make_settings


@pytest.mark.parametrize(
    ("scope", "target"),
    [
        ({"raw_path": b"/api/v1/devices/me", "query_string": b""}, "/api/v1/devices/me"),
        (
            {"raw_path": b"/api/v1/devices/T1/journals/20261116", "query_string": b"offset=5"},
            "/api/v1/devices/T1/journals/20261116?offset=5",
        ),
        ({"path": "/a b", "query_string": b""}, "/a%20b"),
    ],
)
def test_request_target_is_what_the_client_sent(scope: dict[str, Any], target: str) -> None:
    full = {"type": "http", "method": "GET", "headers": [], "path": "/", **scope}
    assert request_target(Request(full)) == target


def test_device_work_is_bounded_per_event_loop() -> None:
    async def limiter() -> anyio.CapacityLimiter:
        first = _device_threads()
        assert _device_threads() is first
        return first

    one, other = run_async(limiter()), run_async(limiter())
    assert one is not other
    assert one.total_tokens == DEVICE_THREADS


def test_the_bound_on_device_threads_follows_the_setting() -> None:
    async def limiters() -> tuple[anyio.CapacityLimiter, anyio.CapacityLimiter]:
        return _device_threads(), _device_threads(9)

    default, wider = run_async(limiters())
    assert default.total_tokens == DEVICE_THREADS
    assert wider.total_tokens == 9
    assert make_settings(device_threads=9).device_threads == 9
    with pytest.raises(ValidationError):
        make_settings(device_threads=0)
