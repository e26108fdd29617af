"""ASGI middleware that refuses request bodies over a limit with 413 ``too_large``,
whether or not the client sent a Content-Length."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


def _too_large_response(limit: int) -> tuple[dict[str, Any], bytes]:
    body = json.dumps(
        {"error": {"code": "too_large", "message": "request body is too large", "limit": limit}}
    ).encode()
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, body


class BodySizeLimit:
    """``max_bytes`` for every request, except paths matching one of ``exceptions``
    (pattern, limit): file chunks are a little over a mebibyte."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, exceptions: Sequence[tuple[re.Pattern[str], int]] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exceptions = tuple(exceptions)

    def _limit(self, path: str) -> int:
        for pattern, limit in self.exceptions:
            if pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope.get("path", ""))
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > max_bytes):
                await self._refuse(send, max_bytes)
                return
        received = 0
        exceeded = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if exceeded and not response_started:
                # The app may catch BodyTooLarge and answer by itself: FastAPI turns any
                # error while reading a body into 400 "error parsing the body". That
                # answer is dropped; the 413 below replaces it.
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, limited_receive, tracking_send)
        if exceeded and not response_started:
            await self._refuse(send, max_bytes)

    async def _refuse(self, send: Send, max_bytes: int) -> None:
        start, body = _too_large_response(max_bytes)
        await send(start)
        await send({"type": "http.response.body", "body": body})
