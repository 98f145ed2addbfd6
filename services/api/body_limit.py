"""Refuse request bodies over ``max_body_bytes`` with the API's JSON error shape (413) before reading them.

A declared ``Content-Length`` is checked here; bodies streamed without one are cut off by FastAPI's own
``max_body_size`` while they are read, which ends in the same 413 through the error handlers.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(send, declared)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, send: Send, declared: bytes) -> None:
        size = declared.decode("latin-1")
        body = json.dumps(
            {
                "error": "TooLarge",
                "detail": f"request body of {size} bytes is over this server's limit of {self.max_bytes} "
                "(PALAVRA_MAX_BODY_BYTES)",
                "limit": self.max_bytes,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
