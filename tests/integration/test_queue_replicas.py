"""Two queue processes on one store and one NATS behave as one queue.

Each replica is ``buergerbuero serve queue`` on the same data dir (the same SQLite
file), as the queue's replicas share one PostgreSQL schema in Kubernetes; rooms runs
on its own. The queues start first, so the departments rooms registers afterwards
reach each replica either through the durable consumer or from the shared store.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.conftest import SystemProcess
from tests.helpers import StaffClient, StreamReader, eventually, knock, open_department

WAIT = 40.0  # generous: a replica that died is forgotten after three missed heartbeats


def _replicas(
    system_factory: Any, tmp_path: Path
) -> tuple[SystemProcess, SystemProcess, SystemProcess]:
    queues = tuple(
        system_factory(
            args=["serve", "queue"],
            data_dir=tmp_path / "queue",
            env={"BB_QUEUE_REPLICA_INDEX": str(index), "BB_QUEUE_REPLICA_COUNT": "2"},
        )
        for index in range(2)
    )
    rooms = system_factory(args=["serve", "rooms"], data_dir=tmp_path / "rooms")
    return queues[0], queues[1], rooms


def _staff_on_duty(system: SystemProcess, dept: str) -> int:
    view = system.client().get(f"/departments/{dept}").json()
    return int(view["expected_wait"]["staff_on_duty"])


def _staff_stream(system: SystemProcess, staff: StaffClient, dept: str) -> StreamReader:
    # The roster travels rooms → NATS → queue; a stream opened before it arrived is refused.
    queue = f"{system.base}/api/v1/departments/{dept}/queue"
    eventually(lambda: staff.http.get(queue).status_code == 200, WAIT)
    stream = StreamReader(
        f"{system.base}/api/v1/departments/{dept}/queue/stream", cookies=staff.http.cookies
    )
    stream.wait_for(lambda e, d: e == "snapshot")  # registered on that replica
    return stream


def test_staff_on_one_replica_count_in_the_expected_wait_on_another(
    system_factory: Any, tmp_path: Path
) -> None:
    a, b, rooms = _replicas(system_factory, tmp_path)
    dept = open_department(b.client(), "demo")
    open_department(a.client(), "demo")
    ticket = knock(b.client(), dept, display_name="Wartend")
    status = StreamReader(f"{b.base}{ticket['stream']}?token={ticket['token']}")
    first = status.wait_for(lambda e, d: e == "status")
    assert first["expected_wait"]["staff_on_duty"] == 0  # nobody yet
    assert not first["expected_wait"]["staff_free"]

    login = f"{rooms.base}/api/v1"
    anna, ben, carla = (StaffClient(login, name) for name in ("anna", "ben", "carla"))
    streams = [_staff_stream(a, anna, dept), _staff_stream(a, ben, dept)]
    # Anna and Ben follow the line on A only; the citizen waits on B.
    eventually(lambda: _staff_on_duty(b, dept) == 2, WAIT)
    free = status.wait_for(lambda e, d: e == "status" and d["expected_wait"]["staff_on_duty"] == 2)
    assert free["expected_wait"]["staff_free"] and free["expected_wait"]["seconds"] == 0

    # Carla on B, and Anna in a second tab that happens to reach B: distinct staff count.
    streams += [_staff_stream(b, carla, dept), _staff_stream(b, anna, dept)]
    eventually(lambda: _staff_on_duty(b, dept) == 3, WAIT)
    eventually(lambda: _staff_on_duty(a, dept) == 3, WAIT)
    status.wait_for(lambda e, d: e == "status" and d["expected_wait"]["staff_on_duty"] == 3)

    # A dies without a word: after a few missed heartbeats Ben no longer counts on B.
    before = len(status.events)
    a.kill()
    eventually(lambda: _staff_on_duty(b, dept) == 2, WAIT)
    eventually(
        lambda: any(
            e == "status" and d["expected_wait"]["staff_on_duty"] == 2
            for e, d in status.events[before:]
        ),
        WAIT,
    )
    for stream in [status, *streams]:
        stream.close()


def test_concurrent_knocks_on_two_replicas_get_consecutive_numbers(
    system_factory: Any, tmp_path: Path
) -> None:
    a, b, rooms = _replicas(system_factory, tmp_path)
    dept = open_department(a.client(), "demo")
    open_department(b.client(), "demo")
    replicas = [a, b]
    knocks = 60

    def knock_at(n: int) -> tuple[int, dict[str, Any]]:
        with replicas[n % 2].client() as citizen:
            return n % 2, knock(citizen, dept, display_name=f"Gast {n}")

    with ThreadPoolExecutor(12) as pool:
        issued = list(pool.map(knock_at, range(knocks)))
    numbers = [ticket["number"] for _, ticket in issued]
    # Per department and day 1, 2, 3, …: none twice, none skipped, whichever replica.
    assert sorted(numbers) == list(range(1, knocks + 1)), sorted(numbers)

    # Both replicas see the whole line, with the same numbers.
    expected = {ticket["ticket_id"]: ticket["number"] for _, ticket in issued}
    staff = StaffClient(f"{rooms.base}/api/v1", "anna")

    def line(system: SystemProcess) -> dict[str, int]:
        # All of the line (a dashboard is sent only its first 50 unless it asks for more).
        response = staff.http.get(f"{system.base}/api/v1/departments/{dept}/queue?limit=100")
        return {w["ticket_id"]: w["number"] for w in response.json()["waiting"]}

    eventually(lambda: line(a) == expected, WAIT)
    eventually(lambda: line(b) == expected, WAIT)
