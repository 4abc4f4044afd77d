"""``buergerbuero up --queue-processes 2``: one origin served by a tree of processes.

Two queue processes share the public port and pass every other route on to the
core process. Citizens' connections land on either queue process (the kernel picks),
so each test opens many connections and checks that the system behaves as one.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from tests.helpers import StaffClient, StreamReader, eventually, open_department

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def tree(system_factory):  # type: ignore[no-untyped-def]
    return system_factory(args=["up", "--queue-processes", "2"])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _python_children(pid: int) -> list[int]:
    return [c for c in _children(pid) if b"services.cli" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _knock_on_fresh_connection(base: str, dept: str, name: str) -> dict:  # type: ignore[type-arg]
    # A new client each time: a new connection, so the kernel may pick either process.
    with httpx.Client(base_url=f"{base}/api/v1", timeout=10) as client:
        response = client.post(
            f"/departments/{dept}/knock", json={"language": "de", "display_name": name}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


def test_one_system_behind_one_port(tree) -> None:  # type: ignore[no-untyped-def]
    assert len(_python_children(tree.process.pid)) == 3  # core and two queue processes
    citizen = tree.client()
    dept = open_department(citizen, "demo")

    # Every process knows every department, whichever one answers.
    for _ in range(10):
        with httpx.Client(base_url=f"{tree.base}/api/v1", timeout=10) as fresh:
            slugs = {d["slug"] for d in fresh.get("/departments").json()}
            assert {"demo", "kataster", "hiv-beratung"} <= slugs

    # Sign-in is the rooms service's, passed on to the core process; the cookie works
    # on the queue's routes in every process.
    staff = StaffClient(f"{tree.base}/api/v1", "anna")
    stream = StreamReader(
        f"{tree.base}/api/v1/departments/queues/stream", cookies=staff.http.cookies
    )
    stream.wait_for(lambda e, d: e == "snapshot" and d.get("department_id") == dept)

    tickets = [_knock_on_fresh_connection(tree.base, dept, f"Bürger {n}") for n in range(20)]
    ids = {t["ticket_id"] for t in tickets}
    # Ticket numbers stay unique although two processes issue them.
    assert len({t["number"] for t in tickets}) == len(tickets)

    # The staff stream (on one process) sees every knock (taken by either process).
    def all_seen() -> bool:
        seen = {d.get("ticket_id") for e, d in stream.events if e == "knocked"}
        return ids <= seen

    eventually(all_seen, timeout=30)
    line = eventually(
        lambda: (v := staff.get(f"/departments/{dept}/queue").json())
        and ids <= {w["ticket_id"] for w in v["waiting"]}
        and v
    )
    assert {w["display_name"] for w in line["waiting"]} >= {f"Bürger {n}" for n in range(20)}

    # Admitting goes through the queue process that holds the staff connection; the
    # consultation is opened by rooms in the core process; the citizen (on either
    # queue process) sees it.
    first = tickets[0]
    ticket_stream = StreamReader(f"{tree.base}{first['stream']}?token={first['token']}")
    assert staff.post(f"/tickets/{first['ticket_id']}/admit").status_code == 200
    ready = ticket_stream.wait_for(lambda e, d: e == "status" and d.get("consultation_id"))
    joined = httpx.post(
        f"{tree.base}/api/v1/consultations/{ready['consultation_id']}/join",
        headers={"Authorization": f"Bearer {first['token']}"},
        timeout=10,
    )
    assert joined.status_code == 200, joined.text
    ticket_stream.close()
    stream.close()

    # One /metrics for the whole tree: the knocks of both queue processes add up.
    def knocks_counted() -> float:
        text = httpx.get(f"{tree.base}/metrics", timeout=10).text
        pattern = rf'bb_queue_knocks_total{{department="{dept}"}} ([0-9.e+]+)'
        return sum(float(v) for v in re.findall(pattern, text))

    assert eventually(lambda: knocks_counted() >= 20) and knocks_counted() == 20


def test_passed_on_streams_and_websockets(tree) -> None:  # type: ignore[no-untyped-def]
    dora = StaffClient(f"{tree.base}/api/v1", "dora")
    # A streamed answer of the audit service, passed through unbuffered and whole.
    exported = eventually(
        lambda: (r := dora.get("/audit/export")).status_code == 200 and r.text.strip() and r
    )
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert lines and all(isinstance(line, dict) for line in lines)
    assert exported.headers["content-type"].startswith("application/x-ndjson")

    # A refusal keeps its status and message through the hop.
    assert dora.get("/audit/export?start=99999999").status_code == 409

    # The media signalling socket: joined end to end, close code included.
    ws_url = tree.base.replace("http", "ws") + (
        f"/api/v1/media/consultations/{uuid.uuid4()}/signal"
    )

    async def signal_with_a_forged_token() -> int | None:
        async with websockets.connect(ws_url, open_timeout=10) as socket:
            await socket.send(json.dumps({"type": "auth", "token": "forged"}))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(socket.recv(), 10)
            return socket.close_code

    assert asyncio.run(signal_with_a_forged_token()) == 4401


def test_a_crash_of_up_takes_every_process_with_it(tree) -> None:  # type: ignore[no-untyped-def]
    children = _python_children(tree.process.pid)
    assert len(children) == 3  # core and two queue processes (NATS is the test's own)
    tree.kill()

    def all_gone() -> bool:
        return not any(_alive(pid) for pid in children)

    eventually(all_gone, timeout=20)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    if state == "Z":  # a zombie has exited; only its parent has not reaped it
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stopping_up_stops_every_process(tree) -> None:  # type: ignore[no-untyped-def]
    children = _children(tree.process.pid)
    tree.process.send_signal(signal.SIGTERM)
    assert tree.process.wait(30) == 0
    eventually(lambda: not any(_alive(pid) for pid in children), timeout=20)


@pytest.mark.parametrize("processes", ["0", "2"])
def test_a_taken_port_is_a_clear_error(nats_server, tmp_path, processes) -> None:  # type: ignore[no-untyped-def]
    # Queue processes share their port (SO_REUSEPORT): without this check a second system
    # would silently share it with the first.
    import subprocess
    import sys

    from tests.conftest import ROOT

    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "services.cli", "up", "--port", str(port),
             "--queue-processes", processes, "--data-dir", str(tmp_path)],
            cwd=ROOT,
            env={**os.environ, "BB_NATS_URL": nats_server.url, "BB_LOG_LEVEL": "WARNING"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
