"""Passing a request on, as it came, to the process that serves its route.

Under ``buergerbuero up`` several processes answer the public port: the queue
replicas serve the citizens' busiest routes themselves and pass everything else
(rooms, audit, media signalling) to the process that runs those services, the way
the Ingress does in Kubernetes. Responses stream through unbuffered (server-sent
events, exports); WebSockets are joined end to end.

The forwarder holds nothing of one request for another: its HTTP client has a cookie
jar that never stores (a ``Set-Cookie`` goes to the browser only; each request carries
only the ``Cookie`` header its own client sent). Hop-by-hop headers, and those the
``Connection`` header names, stay on their own connection. Who asked is told upstream in
``X-Forwarded-For``/``-Proto``/``-Host``, written here from the connection itself;
any such header a client sent is dropped, never passed on (the upstream trusts these
headers from a loopback proxy, i.e. from us).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from http.cookiejar import Cookie, CookieJar
from typing import Any

import httpx
import websockets
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection

from services.common.logging import CORRELATION_HEADER, current_correlation_id, get_logger

log = get_logger(__name__)

# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection, never passed on;
# so does every header the Connection header names.
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
}
# Who asked: written by this forwarder alone, from the connection it serves.
FORWARDED = {b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
             b"x-forwarded-port", b"x-forwarded-prefix", b"x-real-ip"}
# Written by the server that answers the client (uvicorn adds its own).
SERVER_OWN = {b"date", b"server"}
# Set by the WebSocket handshake on each leg itself.
WEBSOCKET_OWN = {b"host", b"sec-websocket-key", b"sec-websocket-version",
                 b"sec-websocket-extensions", b"sec-websocket-accept"}
UNREACHABLE = (
    b'{"detail": "This part of the service is not reachable right now. '
    b'Please try again in a moment."}'
)
_CORRELATION = CORRELATION_HEADER.lower().encode()


class NoCookies(CookieJar):
    """A cookie jar that never keeps a cookie: the forwarder serves many people."""

    def set_cookie(self, cookie: Cookie) -> None:
        pass

    def extract_cookies(self, response: Any, request: Any) -> None:
        pass


class Forwarder:
    """An ASGI app that passes HTTP requests and WebSockets on to ``upstream``, a server
    that closes connections idle for ``upstream_keep_alive`` seconds."""

    def __init__(self, upstream: str, upstream_keep_alive: float = 5.0) -> None:
        self.upstream = upstream.rstrip("/")
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, read=None),  # a stream may stay quiet for long
            # A pooled connection is reused only while the upstream surely keeps it open.
            # Its idle timer starts when it has sent an answer, ours a moment later when we
            # have read it: with the same timeout on both sides a request sent in the
            # upstream's last milliseconds met a connection being closed, and the citizen
            # got a 502 (3 of 120 requests sent 4.97-5.03 s after the previous one).
            limits=httpx.Limits(
                max_connections=None,
                max_keepalive_connections=64,
                keepalive_expiry=upstream_keep_alive / 2,
            ),
            follow_redirects=False,
            cookies=NoCookies(),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["forwarded"] = True  # for the request's log line and metrics
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Built alone, not by the client: nothing of the client's (cookies) is merged in.
        request = httpx.Request(
            scope["method"],
            self.upstream + _target(scope),
            headers=_headers(scope, skip=HOP_BY_HOP),
            content=_body(receive) if _has_body(scope) else None,
            extensions={"timeout": self._client.timeout.as_dict()},
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as error:
            log.warning("forward_failed", upstream=self.upstream, error=repr(error))
            await _answer(send, 502, UNREACHABLE)
            return
        # A client that goes away ends the upstream request too (a stream may be endless).
        copying = asyncio.create_task(_copy(response, send))
        gone = asyncio.create_task(_client_gone(receive))
        try:
            await asyncio.wait({copying, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (copying, gone):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await response.aclose()


    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        url = "ws" + self.upstream.removeprefix("http") + _target(scope)
        try:
            upstream = await websockets.connect(
                url,
                additional_headers=_headers(scope, skip=HOP_BY_HOP | WEBSOCKET_OWN),
                subprotocols=scope.get("subprotocols") or None,  # type: ignore[arg-type]
                open_timeout=10,
                max_size=None,
            )
        except (OSError, websockets.WebSocketException, TimeoutError) as error:
            log.warning("forward_failed", upstream=self.upstream, error=repr(error))
            await send({"type": "websocket.close", "code": 1011})
            return
        async with upstream:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            to_upstream = asyncio.create_task(_client_to_upstream(receive, upstream))
            try:
                await _upstream_to_client(upstream, send)
            finally:
                to_upstream.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await to_upstream


async def _client_to_upstream(receive: Receive, upstream: ClientConnection) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            await upstream.close(message.get("code", 1000))
            return
        if message.get("text") is not None:
            await upstream.send(message["text"])
        elif message.get("bytes") is not None:
            await upstream.send(message["bytes"])


async def _upstream_to_client(upstream: ClientConnection, send: Send) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for data in upstream:
            key = "text" if isinstance(data, str) else "bytes"
            await send({"type": "websocket.send", key: data})
    code = upstream.close_code or 1000
    with contextlib.suppress(OSError, RuntimeError):  # the client may be gone already
        await send({"type": "websocket.close", "code": code, "reason": upstream.close_reason or ""})


def _target(scope: Scope) -> str:
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    return (path + (b"?" + query if query else b"")).decode("latin-1")


def _headers(scope: Scope, skip: set[bytes]) -> list[tuple[str, str]]:
    """The request's own end-to-end headers, plus who asked (the upstream trusts loopback
    proxies: only what this forwarder writes, never what a client claims)."""
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    dropped = skip | FORWARDED | _named_in_connection(raw) | {_CORRELATION}
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in raw
        if name not in dropped
    ]
    client = scope.get("client")
    if client:
        headers.append(("x-forwarded-for", client[0]))
    secure = scope.get("scheme") in ("https", "wss")
    headers.append(("x-forwarded-proto", "https" if secure else "http"))
    host = next((value for name, value in raw if name == b"host"), None)
    if host:
        headers.append(("x-forwarded-host", host.decode("latin-1")))
    headers.append((CORRELATION_HEADER, current_correlation_id()))
    return headers


def _named_in_connection(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """Headers a ``Connection`` header declares hop-by-hop (RFC 9110 7.6.1)."""
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
        if token.strip()
    }


def _has_body(scope: Scope) -> bool:
    names = {name for name, _ in scope["headers"]}
    return b"content-length" in names or b"transfer-encoding" in names


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def _copy(response: httpx.Response, send: Send) -> None:
    dropped = HOP_BY_HOP | SERVER_OWN | _named_in_connection(response.headers.raw)
    try:
        await send({
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [
                (name.lower(), value)
                for name, value in response.headers.raw
                if name.lower() not in dropped
            ],
        })
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except (httpx.HTTPError, httpx.StreamError, OSError) as error:  # upstream went away
        log.info("forward_interrupted", error=repr(error))


async def _client_gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
