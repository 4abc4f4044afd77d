"""A staff session ends when it should, in every process: at sign-out, when its account's
password changes or the account is disabled, and when it has not been used for a while.

A copied cookie is what is tried here: the browser forgets it at sign-out, an attacker
who took it does not. Each request goes on a fresh connection, so under the process tree
either queue process answers (and passes /auth and the audit routes to the core process).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx
import pytest

from services.common.natsserver import EmbeddedNats
from tests.conftest import ROOT, SystemProcess
from tests.helpers import DEMO_PASSWORD, department_id, eventually

pytestmark = pytest.mark.timeout(240)

NEW_PASSWORD = "a new and long password"
TRIES = 8  # fresh connections per check: both queue processes answer some


def _fresh(system: SystemProcess, cookie: str | None = None) -> httpx.Client:
    headers = {"Cookie": f"bb_session={cookie}"} if cookie else {}
    return httpx.Client(base_url=f"{system.base}/api/v1", timeout=10, headers=headers)


def _sign_in(system: SystemProcess, username: str, password: str = DEMO_PASSWORD) -> httpx.Response:
    with _fresh(system) as client:
        return client.post("/auth/login", json={"username": username, "password": password})


def _session(
    system: SystemProcess, username: str, password: str = DEMO_PASSWORD
) -> tuple[str, str]:
    response = _sign_in(system, username, password)
    assert response.status_code == 200, response.text
    return response.cookies["bb_session"], response.json()["csrf_token"]


def _statuses(system: SystemProcess, cookie: str, paths: list[str]) -> set[int]:
    """What the routes answer this cookie, over several fresh connections."""
    found = set()
    for _ in range(TRIES):
        with _fresh(system, cookie) as client:
            found |= {client.get(path).status_code for path in paths}
    return found


class LiveStream:
    """A staff member's live stream on its own connection, read until the server ends it."""

    def __init__(self, system: SystemProcess, cookie: str, path: str) -> None:
        self.lines: list[str] = []
        self.ended = threading.Event()
        url = f"{system.base}/api/v1{path}"
        self._thread = threading.Thread(target=self._read, args=(url, cookie), daemon=True)
        self._thread.start()

    def _read(self, url: str, cookie: str) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=None)) as client, client.stream(
                "GET", url, headers={"Cookie": f"bb_session={cookie}"}
            ) as response:
                for line in response.iter_lines():
                    self.lines.append(line)
        except httpx.HTTPError:
            pass
        self.ended.set()


def _staff_cli(system: SystemProcess, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "staff", *args, "--data-dir", str(system.data_dir)],
        cwd=ROOT, env=system.env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(params=["2", "0"], ids=["queue-processes-2", "queue-processes-0"])
def any_system(request: pytest.FixtureRequest, system_factory) -> SystemProcess:  # type: ignore[no-untyped-def]
    return system_factory(args=["up", "--queue-processes", request.param])  # type: ignore[no-any-return]


@pytest.fixture
def tree(system_factory) -> SystemProcess:  # type: ignore[no-untyped-def]
    return system_factory(args=["up", "--queue-processes", "2"])  # type: ignore[no-any-return]


def test_after_sign_out_the_same_cookie_is_refused_everywhere(any_system: SystemProcess) -> None:
    system = any_system
    with _fresh(system) as anyone:
        demo = department_id(anyone, "demo")
    routes = ["/auth/me", f"/departments/{demo}/queue"]
    cookie, csrf = _session(system, "anna")
    other_cookie, _ = _session(system, "anna")  # anna on another device
    assert _statuses(system, cookie, routes) == {200}

    with _fresh(system, cookie) as client:
        signed_out = client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    assert signed_out.status_code == 204

    eventually(lambda: _statuses(system, cookie, routes) == {401}, timeout=5)
    with _fresh(system, cookie) as client:
        refused = client.get("/auth/me")
        assert "session has ended" in refused.json()["detail"]
        # Nor can it sign out again or act: the session is gone, not just its cookie.
        assert client.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 401
        closed = client.post(f"/offices/{demo}/close", headers={"X-CSRF-Token": csrf})
        assert closed.status_code == 401
    # Signing out ends that session only: anna's other one goes on.
    assert _statuses(system, other_cookie, routes) == {200}


def test_a_live_stream_ends_with_its_session(any_system: SystemProcess) -> None:
    system = any_system
    cookie, csrf = _session(system, "anna")
    other_cookie, _ = _session(system, "anna")
    stream = LiveStream(system, cookie, "/departments/queues/stream")
    other = LiveStream(system, other_cookie, "/departments/queues/stream")
    eventually(lambda: "event: snapshot" in stream.lines and "event: snapshot" in other.lines)

    with _fresh(system, cookie) as client:  # signed out elsewhere (the copied cookie's owner)
        assert client.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert stream.ended.wait(10), "the stream of a session that ended goes on"
    assert not other.ended.is_set()  # anna's other session streams on


def test_a_password_change_ends_every_session_of_the_account(tree: SystemProcess) -> None:
    with _fresh(tree) as anyone:
        demo = department_id(anyone, "demo")
    routes = ["/auth/me", f"/departments/{demo}/queue"]
    sessions = [_session(tree, "anna")[0] for _ in range(2)]
    bens, _ = _session(tree, "ben")
    stream = LiveStream(tree, sessions[0], "/departments/queues/stream")
    eventually(lambda: "event: snapshot" in stream.lines)

    _staff_cli(tree, "password", "anna", "--password", NEW_PASSWORD)

    assert stream.ended.wait(10), "the stream of a voided session goes on"
    for cookie in sessions:
        eventually(lambda cookie=cookie: _statuses(tree, cookie, routes) == {401}, timeout=10)
    assert _sign_in(tree, "anna").status_code == 401  # the old password
    fresh, _ = _session(tree, "anna", NEW_PASSWORD)
    assert _statuses(tree, fresh, routes) == {200}
    assert _statuses(tree, bens, routes) == {200}  # nobody else's


def test_disabling_an_account_ends_its_sessions(tree: SystemProcess) -> None:
    routes = ["/auth/me", "/audit/records"]
    doras, _ = _session(tree, "dora")
    assert _statuses(tree, doras, routes) == {200}

    _staff_cli(tree, "disable", "dora")

    eventually(lambda: _statuses(tree, doras, routes) == {401}, timeout=10)
    assert _sign_in(tree, "dora").status_code == 401

    _staff_cli(tree, "enable", "dora")
    again, _ = eventually(lambda: (r := _sign_in(tree, "dora")).status_code == 200 and (
        r.cookies["bb_session"], r.json()["csrf_token"]))
    assert _statuses(tree, again, routes) == {200}
    assert _statuses(tree, doras, routes) == {401}  # the old session stays ended


def test_an_idle_session_expires_and_a_used_one_is_renewed(system_factory) -> None:  # type: ignore[no-untyped-def]
    idle_seconds = 4.0  # tokens count whole seconds
    system = system_factory(
        args=["up", "--queue-processes", "2"],
        env={"BB_SESSION_IDLE_MINUTES": str(idle_seconds / 60)},
    )
    cookie, _ = _session(system, "anna")
    first = cookie
    # Used every 1.5 s, it lives well past its idle time: an answer after half of it
    # brings a fresh cookie for the same session.
    started = time.monotonic()
    while time.monotonic() - started < 3 * idle_seconds:
        time.sleep(1.5)
        with _fresh(system, cookie) as client:
            me = client.get("/auth/me")
            assert me.status_code == 200, me.text
            cookie = me.cookies.get("bb_session", cookie)
    assert cookie != first

    # Left alone longer than the idle time, it is over.
    time.sleep(idle_seconds + 1)
    with _fresh(system, cookie) as client:
        expired = client.get("/auth/me")
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]
    # The first token too, of course.
    with _fresh(system, first) as client:
        assert client.get("/auth/me").status_code == 401


def test_sign_out_reaches_every_process_after_nats_was_restarted(
    tree: SystemProcess, nats_server: EmbeddedNats
) -> None:
    """The processes' watches of the sessions' bucket survive a restart of NATS."""
    with _fresh(tree) as anyone:
        demo = department_id(anyone, "demo")
    routes = ["/auth/me", f"/departments/{demo}/queue"]
    cookie, csrf = _session(tree, "anna")

    nats_server.restart()
    eventually(lambda: httpx.get(f"{tree.base}/readyz", timeout=5).status_code == 200, timeout=30)
    assert _statuses(tree, cookie, routes) == {200}  # what was watched still applies

    def signed_out() -> bool:
        with _fresh(tree, cookie) as client:
            return client.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204

    eventually(signed_out, timeout=30)
    eventually(lambda: _statuses(tree, cookie, routes) == {401}, timeout=10)
