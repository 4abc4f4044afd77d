"""A request body is at most a few KiB (BB_MAX_BODY_BYTES, 16 KiB): a bigger one is
refused with 413 before it is read any further, on every route, in both of `up`'s modes
(the knock is served by the queue processes, the sign-in passed on to the core process).

Measured by memory, not time: a 100 MB chunked body must not raise the peak resident
memory of the system's processes by more than a few MiB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import SystemProcess
from tests.helpers import open_department
from tests.security.limits_support import (
    MODES,
    RawExchange,
    peak_memory_kib,
    request_head,
    start_system,
)

pytestmark = pytest.mark.timeout(240)

HUNDRED_MB = 100 * 1024 * 1024
FEW_MIB = 8 * 1024  # KiB


@pytest.fixture(scope="module", params=MODES, ids=lambda m: f"queue-processes-{m}")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SystemProcess]:
    yield from start_system(tmp_path_factory.mktemp("bodies"), str(request.param))


@pytest.fixture(scope="module")
def knock_path(system: SystemProcess) -> str:
    with system.client() as client:
        return f"/api/v1/departments/{open_department(client, 'demo')}/knock"


def _routes(knock_path: str) -> list[str]:
    return [knock_path, "/api/v1/auth/login"]


def test_an_announced_length_over_the_limit_is_refused_unread(
    system: SystemProcess, knock_path: str
) -> None:
    for path in _routes(knock_path):
        head = request_head("POST", path, system.port, {
            "Content-Type": "application/json", "Content-Length": str(HUNDRED_MB),
        })
        exchange = RawExchange(system.port, head)  # not one byte of the body is sent
        try:
            status, headers, body = exchange.answer()
        finally:
            exchange.close()
        assert status == 413, (path, status, body)
        answer = json.loads(body)
        assert "too large" in answer["detail"] and "16 KiB" in answer["detail"]
        assert answer["max_body_bytes"] == 16 * 1024
        assert headers.get("connection") == "close"


def test_a_hundred_megabyte_chunked_body_is_refused_without_being_kept(
    system: SystemProcess, knock_path: str
) -> None:
    assert system.process is not None
    for path in _routes(knock_path):
        before = peak_memory_kib(system.process.pid)
        head = request_head("POST", path, system.port, {
            "Content-Type": "application/json", "Transfer-Encoding": "chunked",
        })
        exchange = RawExchange(system.port, head)
        exchange.send_chunked(HUNDRED_MB)
        try:
            status, _, body = exchange.answer()
        finally:
            exchange.close()
        grown = peak_memory_kib(system.process.pid) - before
        assert status == 413, (path, status, body)
        assert "too large" in json.loads(body)["detail"]
        assert exchange.sent < HUNDRED_MB, "the server read the whole body"
        assert grown < FEW_MIB, f"{path}: peak memory grew by {grown} KiB"


def test_a_body_within_the_limit_is_served(system: SystemProcess, knock_path: str) -> None:
    with system.client() as client:
        padded = {"language": "de", "display_name": "Ada", "note": "x" * 12_000}
        response = client.post(knock_path.removeprefix("/api/v1"), json=padded)
        assert response.status_code == 201, response.text
        too_big = {"language": "de", "display_name": "Ada", "note": "x" * 17_000}
        response = client.post(knock_path.removeprefix("/api/v1"), json=too_big)
        assert response.status_code == 413
        assert "at most 16 KiB" in response.json()["detail"]
