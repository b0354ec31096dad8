"""A cap on file uploads (reconciliation runs), enforced while the body streams in.

Unlike :mod:`atm_service.api.body_limit`, which holds a small device body in
memory, an upload may be large: it is not buffered here, only counted. A
request that declares a larger ``Content-Length`` is refused before any of it
is read; one that streams past the cap is refused as soon as it crosses it.
Either way the app's error handler answers 413, as a problem document under
``/api/`` and as an error page for a web form.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Room for the multipart boundaries, headers and form fields around the files.
ENVELOPE_BYTES = 256 * 1024


class UploadLimit:
    """ASGI middleware: POST bodies to paths starting with one of ``prefixes`` may hold
    ``max_bytes`` (plus the multipart envelope) at most."""

    def __init__(self, app: ASGIApp, *, prefixes: Sequence[str], max_bytes: int) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.max_bytes = max_bytes
        self.cap = max_bytes + ENVELOPE_BYTES

    def _error(self) -> HTTPException:
        return HTTPException(
            413,
            detail=f"The upload exceeds {self.max_bytes} bytes, the most one run may read; "
            "split the files over several runs.",
            headers={"Connection": "close"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].startswith(self.prefixes)
        ):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        too_big = declared is not None and declared.isdigit() and int(declared) > self.cap
        size = 0

        async def counted() -> Message:
            nonlocal size
            if too_big:
                raise self._error()
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.cap:
                    raise self._error()
            return message

        await self.app(scope, counted, send)
