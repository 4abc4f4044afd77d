"""Each request is answered as exactly its own caller, however it travels.

Under ``buergerbuero up`` with queue processes, every route the queue does not serve is
passed on to the core process by a forwarder. A forwarder that kept cookies would answer
an anonymous caller as whoever signed in last through it. Here two people sign in through
both queue processes (a fresh connection each time: the kernel picks the process), and
every request is checked against who sent it; the same in one process.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.forward import Forwarder
from tests.conftest import SystemProcess
from tests.helpers import DEMO_PASSWORD, department_id

pytestmark = pytest.mark.timeout(240)

ROUNDS = 12


@pytest.fixture(params=["2", "0"], ids=["queue-processes-2", "queue-processes-0"])
def system(request: pytest.FixtureRequest, system_factory) -> SystemProcess:  # type: ignore[no-untyped-def]
    return system_factory(args=["up", "--queue-processes", request.param])  # type: ignore[no-any-return]


def _fresh(system: SystemProcess, cookie: str | None = None) -> httpx.Client:
    """A new client: a new connection (either queue process may take it), no cookie jar
    shared with anyone; the session cookie, if any, sent as the browser would."""
    headers = {"Cookie": f"bb_session={cookie}"} if cookie else {}
    return httpx.Client(base_url=f"{system.base}/api/v1", timeout=10, headers=headers)


def _sign_in(system: SystemProcess, username: str) -> tuple[str, str]:
    with _fresh(system) as client:
        response = client.post(
            "/auth/login", json={"username": username, "password": DEMO_PASSWORD}
        )
        assert response.status_code == 200, response.text
        return response.cookies["bb_session"], response.json()["csrf_token"]


def test_every_request_is_answered_as_its_own_caller(system: SystemProcess) -> None:
    with _fresh(system) as anyone:
        kataster = department_id(anyone, "kataster")
    # Several sign-ins each, on fresh connections: through both queue processes.
    sessions = {name: [_sign_in(system, name) for _ in range(3)] for name in ("anna", "dora")}

    for round_ in range(ROUNDS):
        for name, held in sessions.items():
            cookie, _ = held[round_ % len(held)]
            with _fresh(system, cookie) as client:
                me = client.get("/auth/me")
                assert me.status_code == 200, me.text
                assert me.json()["staff_id"] == name
        # Nobody: nothing of the others' sessions rubs off, on any process.
        with _fresh(system) as nobody:
            assert nobody.get("/auth/me").status_code == 401
            assert nobody.get("/audit/records").status_code == 401
            assert nobody.get("/audit/export").status_code == 401
            # Even with a CSRF token that belongs to a signed-in person.
            _, annas_csrf = sessions["anna"][0]
            opened = nobody.post(f"/offices/{kataster}/open", headers={"X-CSRF-Token": annas_csrf})
            assert opened.status_code == 401, opened.text
            assert "bb_session" not in opened.cookies

    # The DPO's reads are hers; anna (staff, not DPO) is refused the audit log.
    dora_cookie, _ = sessions["dora"][0]
    anna_cookie, _ = sessions["anna"][0]
    for _ in range(4):
        with _fresh(system, dora_cookie) as dora, _fresh(system, anna_cookie) as anna:
            assert dora.get("/audit/records").status_code == 200
            assert anna.get("/audit/records").status_code == 403


# -- the forwarder alone, between two real servers ---------------------------------------------


def _serve(app: object, proxy_headers: bool = True) -> tuple[str, uvicorn.Server]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_config=None, access_log=False, proxy_headers=proxy_headers  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


def _upstream() -> Starlette:
    async def headers(request: Request) -> JSONResponse:
        return JSONResponse(
            {"headers": {k: v for k, v in request.headers.items()}},
            headers={"Set-Cookie": "bb_session=someone-elses; Path=/; HttpOnly"},
        )

    return Starlette(routes=[Route("/headers", headers)])


@pytest.fixture
def front() -> Iterator[str]:
    """A forwarder on a public port that trusts no client's proxy headers (as behind no proxy)."""
    upstream_url, upstream_server = _serve(_upstream())
    front_url, front_server = _serve(Forwarder(upstream_url), proxy_headers=False)
    yield front_url
    front_server.should_exit = upstream_server.should_exit = True


def test_the_forwarder_keeps_no_cookie_and_writes_who_asked_itself(front: str) -> None:
    with httpx.Client(timeout=10) as first:
        answered = first.get(f"{front}/headers")
        # The upstream's cookie reaches the client that caused it ...
        assert answered.cookies["bb_session"] == "someone-elses"
    # ... and nobody else: a client without cookies sends none upstream.
    for _ in range(3):
        seen = httpx.get(f"{front}/headers", timeout=10).json()["headers"]
        assert "cookie" not in seen
    # A client's own cookie header passes as it was sent.
    seen = httpx.get(f"{front}/headers", headers={"Cookie": "bb_session=mine"}, timeout=10)
    assert seen.json()["headers"]["cookie"] == "bb_session=mine"

    claimed = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "Forwarded": "for=203.0.113.9;proto=https",
        "X-Real-IP": "203.0.113.9",
        "Connection": "keep-alive, X-Hop-Secret",
        "X-Hop-Secret": "for this connection only",
        "Proxy-Connection": "keep-alive",
    }
    seen = httpx.get(f"{front}/headers", headers=claimed, timeout=10).json()["headers"]
    # Who asked, as the forwarder saw the connection; nothing a client claimed.
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == front.removeprefix("http://")
    for hop_or_claim in ("forwarded", "x-real-ip", "x-hop-secret", "proxy-connection"):
        assert hop_or_claim not in seen
