"""The forwarder between real uvicorn servers: streams pass through and end with the client."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from services.common.forward import Forwarder
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(60)


class Upstream:
    def __init__(self) -> None:
        self.streams_open = 0
        self.streams_ended = 0

    def app(self) -> Starlette:
        async def endless(_: Request) -> StreamingResponse:
            async def events() -> AsyncIterator[bytes]:
                self.streams_open += 1
                try:
                    while True:
                        yield b"event: tick\ndata: {}\n\n"
                        await asyncio.sleep(0.05)
                finally:
                    self.streams_ended += 1

            return StreamingResponse(events(), media_type="text/event-stream")

        async def echo(request: Request) -> JSONResponse:
            body = (await request.body()).decode()
            return JSONResponse(
                {"body": body, "for": request.headers.get("x-forwarded-for")},
                status_code=201,
                headers={"X-Upstream": "yes"},
            )

        return Starlette(
            routes=[Route("/endless", endless), Route("/echo", echo, methods=["POST"])]
        )


def _serve(app: object) -> tuple[str, uvicorn.Server]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


@pytest.fixture
def chain() -> Iterator[tuple[str, Upstream]]:
    upstream = Upstream()
    upstream_url, upstream_server = _serve(upstream.app())
    front_url, front_server = _serve(Forwarder(upstream_url))
    yield front_url, upstream
    front_server.should_exit = upstream_server.should_exit = True


def test_a_request_and_its_answer_pass_whole(chain) -> None:  # type: ignore[no-untyped-def]
    front, _ = chain
    response = httpx.post(f"{front}/echo", content=b"hello", timeout=10)
    assert response.status_code == 201
    assert response.json() == {"body": "hello", "for": "127.0.0.1"}
    assert response.headers["x-upstream"] == "yes"
    assert len(response.headers.get_list("date")) == 1  # the front's own, not two


def test_a_stream_ends_upstream_when_the_client_leaves(chain) -> None:  # type: ignore[no-untyped-def]
    front, upstream = chain
    with httpx.Client(timeout=10) as client, client.stream("GET", f"{front}/endless") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: tick"
    eventually(lambda: upstream.streams_ended == upstream.streams_open == 1, timeout=10)


def test_an_unreachable_upstream_is_a_clear_502() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    front, server = _serve(Forwarder(dead))
    try:
        response = httpx.get(f"{front}/anything", timeout=10)
        assert response.status_code == 502
        assert "not reachable" in response.json()["detail"]
    finally:
        server.should_exit = True
