"""How much a request may send: a body-size limit on every HTTP route.

A body over the limit is refused with 413 before it is read any further: at once when
``Content-Length`` says so, and as soon as the bytes received (a chunked body, or one
that sends more than it announced) pass the limit. The connection is closed after the
answer, so the rest of the body is never read. Nothing of it is kept meanwhile: the
server holds at most the limit plus one chunk of a body in memory.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024

# The routes that legitimately take more than the default (method, path pattern):
# a department's offer lists up to 50 topics, each with two translated names.
LARGER_BODIES: dict[tuple[str, re.Pattern[str]], int] = {
    ("PUT", re.compile(r"^/api/v1/offices/[^/]+/offer$")): 64 * KIB,
}


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body passes its limit; the app stops reading."""


class BodySizeLimit:
    """An ASGI middleware: every HTTP request's body at most ``default_limit`` bytes,
    or what ``LARGER_BODIES`` allows its route. WebSocket messages are limited by the
    server (``ws_max_size``)."""

    def __init__(
        self,
        app: ASGIApp,
        default_limit: int,
        larger: dict[tuple[str, re.Pattern[str]], int] | None = None,
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.larger = LARGER_BODIES if larger is None else larger

    def limit_for(self, method: str, path: str) -> int:
        for (route_method, pattern), limit in self.larger.items():
            if method == route_method and pattern.match(path):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        announced = _content_length(scope)
        if announced is not None and announced > limit:
            await _refuse(send, limit)  # nothing of the body is read
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The app answered a body it could not read (400 from FastAPI, 502 from
                # the forwarder): the client hears why instead.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _refuse(send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


def describe_size(limit: int) -> str:
    return f"{limit // KIB} KiB" if limit >= KIB else f"{limit} bytes"


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({
        "detail": f"The request is too large: at most {describe_size(limit)} are accepted here.",
        "max_body_bytes": limit,
    }).encode()
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),  # the rest of the body is never read
        ],
    })
    await send({"type": "http.response.body", "body": body})
