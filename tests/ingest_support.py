"""Helpers for the device-ingest tests: the documented test vector, a fleet with enrolled
keys, sample journals, and signed requests through the test client."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from fastapi.testclient import TestClient

from atm_service.context import AppContext
from atm_service.db import Database
from atm_service.models.devices import DeviceKeyCreate
from atm_service.models.fleet import AtmCreate, SiteCreate
from atm_service.services.device_keys import enrol_key
from atm_service.services.fleet import create_atm, create_site
from device_agent.signing import DeviceKey, b64url
from tests.samples import SAMPLE
from tests.support import SITE, atm_payload

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EJ = SAMPLE / "ej"


@cache
def vector() -> dict[str, Any]:
    """The signature test vector of docs/ingest-api.md (the block after the marker)."""
    text = (ROOT / "docs" / "ingest-api.md").read_text()
    found = re.search(r"<!-- test-vector -->\s*```json\n(.*?)\n```", text, re.DOTALL)
    assert found, "docs/ingest-api.md lost its test vector"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def sample_journal(terminal_id: str = "T1000001", day: str = "20261116") -> bytes:
    """A sample EJ file of shared/formats (the field's own bytes)."""
    return (SAMPLE_EJ / f"{terminal_id}_{day}.txt").read_bytes()


@dataclass
class Fleet:
    """ATMs with enrolled device keys."""

    atm_ids: dict[str, int] = field(default_factory=dict)
    keys: dict[str, DeviceKey] = field(default_factory=dict)


def make_fleet(context: AppContext, *terminal_ids: str, keys: bool = True) -> Fleet:
    return make_fleet_in(context.database, context.clock(), *terminal_ids, keys=keys)


def make_fleet_in(
    database: Database, now: datetime, *terminal_ids: str, keys: bool = True
) -> Fleet:
    """A site with the ATMs ``terminal_ids``, each with an enrolled key unless ``keys`` is false."""
    fleet = Fleet()
    with database.session() as session:
        site = create_site(session, data=SiteCreate.model_validate(SITE), now=now)
        assert site.id is not None
        for terminal_id in terminal_ids:
            atm = create_atm(
                session,
                data=AtmCreate.model_validate(atm_payload(site.id, terminal_id)),
                now=now,
            )
            fleet.atm_ids[terminal_id] = atm.id
            if keys:
                key = DeviceKey.generate()
                enrol_key(
                    session,
                    atm_id=atm.id,
                    data=DeviceKeyCreate(public_key=key.public_key_b64),
                    now=now,
                )
                fleet.keys[terminal_id] = key
    return fleet


class Signed:
    """Signed device requests through a TestClient, with the app's clock and fresh nonces."""

    def __init__(self, client: TestClient, context: AppContext, key: DeviceKey) -> None:
        self.client = client
        self.context = context
        self.key = key
        self._nonces = itertools.count(1)

    def nonce(self) -> str:
        return b64url(next(self._nonces).to_bytes(16, "big"))

    def headers(
        self,
        method: str,
        target: str,
        body: bytes,
        *,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> dict[str, str]:
        return self.key.signature_headers(
            method=method,
            target=target,
            body=body,
            timestamp=int(self.context.clock().timestamp()) if timestamp is None else timestamp,
            nonce=nonce or self.nonce(),
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: bytes = b"",
        payload: Any = None,
        headers: dict[str, str] | None = None,
        **sign: Any,
    ) -> Any:
        target = path + (f"?{urlencode(params)}" if params else "")
        extra = dict(headers or {})
        if payload is not None:
            body = json.dumps(payload).encode()
            extra.setdefault("Content-Type", "application/json")
        elif body:
            extra.setdefault("Content-Type", "application/octet-stream")
        signed = self.headers(method, target, body, **sign)
        return self.client.request(method, target, content=body, headers={**signed, **extra})

    def put_journal(self, terminal_id: str, name: str, offset: int, data: bytes) -> Any:
        return self.request(
            "PUT",
            f"/api/v1/devices/{terminal_id}/journals/{name}",
            params={"offset": offset},
            body=data,
        )

    def post_records(self, terminal_id: str, stream: str, records: list[dict[str, Any]]) -> Any:
        return self.request(
            "POST",
            f"/api/v1/devices/{terminal_id}/records",
            payload={"stream": stream, "records": records},
        )


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion on an event loop of its own, in a thread of its own.

    A plain ``asyncio.run`` would refuse to start while another test fixture (the
    browser tests' Playwright session) keeps an event loop running in this thread.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="test-event-loop")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


class SerialTransport(httpx.AsyncBaseTransport):
    """Lets one request at a time through to the app.

    The test database is one connection inside a rolled-back transaction, which
    two requests must not use at once; a real deployment has a pool instead.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lock = asyncio.Lock()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self.lock:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response


class FlakyTransport(httpx.AsyncBaseTransport):
    """A line to the service that can be cut, or that loses answers after delivering them."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.lose_answers = 0
        self.delivered = 0
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.delivered += 1
        if self.lose_answers:
            self.lose_answers -= 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response
