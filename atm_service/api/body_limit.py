"""A cap on the size of device request bodies, enforced before a body is read in full.

A device route reads its whole body (the signature covers its digest), so the
service bounds it: a request that declares a larger ``Content-Length`` is
answered 413 at once, and one that streams more than the cap is answered 413
as soon as it crosses it, before the app sees any of it. The answer is a
problem document like every other error.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atm_service.errors import PayloadTooLarge
from atm_service.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, Problem


class BodyLimit:
    """ASGI middleware: bodies of requests under ``prefix`` may hold ``max_bytes`` at most."""

    def __init__(self, app: ASGIApp, *, prefix: str, max_bytes: int) -> None:
        self.app = app
        self.prefix = prefix
        self.max_bytes = max_bytes

    def _detail(self) -> str:
        return f"The request body exceeds {self.max_bytes} bytes; send smaller batches."

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = Problem(
            type=PROBLEM_BASE + PayloadTooLarge.slug,
            title=PayloadTooLarge.title,
            status=PayloadTooLarge.status,
            detail=self._detail(),
            instance=scope["path"],
        )
        response = JSONResponse(
            problem.model_dump(exclude_none=True),
            status_code=PayloadTooLarge.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        # Read the body here, up to the cap, then hand it on as one message.
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            parts.append(body)
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": b"".join(parts), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
