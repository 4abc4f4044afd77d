"""Staff's live stream of a department's appointments, on a real ``buergerbuero up``:
each booking, move, cancellation and check-in arrives as it happens (ids, times and the
status, nothing personal); refused without a session, for a department one does not
serve, for an unknown one, and beyond ``BB_STREAMS_PER_STAFF`` at once (a flood)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.helpers import StaffClient, StreamReader, eventually, open_department
from tests.integration.test_api_refusals import refused
from tests.security.limits_support import RawExchange, request_head

STREAMS_PER_STAFF = 3
PLANTED_NAME = "Ottokar Pfefferminz"
PLANTED_EMAIL = "ottokar.pfefferminz@example.org"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    base = tmp_path_factory.mktemp("booking-stream")
    nats = EmbeddedNats(base / "nats")
    nats.start()
    system = SystemProcess(base / "data", nats.url,
                           env={"BB_STREAMS_PER_STAFF": str(STREAMS_PER_STAFF)})
    system.start(timeout=60)
    yield system
    system.kill()
    nats.stop()


@pytest.fixture(scope="module")
def citizen(system: SystemProcess) -> Iterator[httpx.Client]:
    with system.client() as client:
        yield client


@pytest.fixture(scope="module")
def demo(citizen: httpx.Client) -> str:
    demo = open_department(citizen, "demo")
    eventually(lambda: free_slots(citizen, demo), timeout=30)
    return demo


def free_slots(citizen: httpx.Client, demo: str, days: int = 2) -> list[str]:
    start = datetime.now(UTC) + timedelta(days=days)
    params = {"from": start.isoformat(), "to": (start + timedelta(hours=3)).isoformat()}
    return [s["start"] for s in citizen.get(f"/departments/{demo}/slots", params=params)
            .json()["slots"]]


def stream_path(department: str) -> str:
    return f"/api/v1/offices/{department}/appointments/stream"


def test_staff_follow_bookings_moves_cancellations_live(
    system: SystemProcess, citizen: httpx.Client, demo: str
) -> None:
    anna = StaffClient(f"{system.base}/api/v1", "anna")
    stream = StreamReader(f"{system.base}{stream_path(demo)}", cookies=anna.http.cookies)
    try:
        stream.wait_for(lambda name, data: name == "ready" and data["department_id"] == demo)
        first, later = free_slots(citizen, demo)[:2]
        made = citizen.post(f"/departments/{demo}/appointments", json={
            "start": first, "display_name": PLANTED_NAME, "email": PLANTED_EMAIL})
        assert made.status_code == 201, made.text
        appointment_id = made.json()["appointment_id"]
        holder = {"Authorization": f"Bearer {made.json()['token']}"}

        def seen(status: str, start: str):  # type: ignore[no-untyped-def]
            return stream.wait_for(lambda name, data: name == "appointment"
                                   and data["appointment_id"] == appointment_id
                                   and data["status"] == status
                                   and datetime.fromisoformat(data["start"])
                                   == datetime.fromisoformat(start))

        booked = seen("booked", first)
        assert booked["department_id"] == demo
        moved = citizen.post(f"/appointments/{appointment_id}/reschedule",
                             json={"start": later}, headers=holder)
        assert moved.status_code == 200, moved.text
        seen("booked", later)
        cancelled = citizen.post(f"/appointments/{appointment_id}/cancel", headers=holder)
        assert cancelled.status_code == 200, cancelled.text
        seen("cancelled", later)
        assert PLANTED_NAME not in str(stream.events) and "pfefferminz" not in str(stream.events)
    finally:
        stream.close()


def test_the_stream_is_refused_without_a_session_elsewhere_and_for_nothing(
    system: SystemProcess, citizen: httpx.Client, demo: str
) -> None:
    with httpx.Client(base_url=system.base, timeout=10) as anonymous:
        refused(anonymous.get(stream_path(demo)), 401)
    ben = StaffClient(f"{system.base}/api/v1", "ben")  # not on the cadastre office's staff
    kataster = next(d["id"] for d in citizen.get("/departments").json()
                    if d["slug"] == "kataster")
    refused(ben.http.get(stream_path(kataster).removeprefix("/api/v1")), 403, "staff")
    refused(ben.http.get(stream_path("00000000-0000-4000-8000-000000000000")
                         .removeprefix("/api/v1")), 404, "department")
    refused(ben.http.get(stream_path("not-an-id").removeprefix("/api/v1")), 422)


def open_stream(system: SystemProcess, staff: StaffClient, department: str) -> RawExchange:
    cookie = "; ".join(f"{name}={value}" for name, value in staff.http.cookies.items())
    exchange = RawExchange(system.port, request_head("GET", stream_path(department),
                                                     system.port, {"Cookie": cookie}))
    status, _, _ = exchange.answer()
    assert status == 200
    return exchange


def test_a_flood_of_streams_from_one_staff_member_is_429(
    system: SystemProcess, demo: str
) -> None:
    carla = StaffClient(f"{system.base}/api/v1", "carla")  # demo's staff, streams of her own
    opened = [open_stream(system, carla, demo) for _ in range(STREAMS_PER_STAFF)]
    try:
        path = stream_path(demo).removeprefix("/api/v1")
        body = refused(carla.http.get(path), 429, "too many windows")
        assert body["reason"] == "too_many_streams" and body["retry_after_seconds"] > 0
        # Another staff member's are not counted with hers.
        opened.append(open_stream(system, StaffClient(f"{system.base}/api/v1", "ben"), demo))
        opened.pop(0).close()  # a window closed gives its stream back

        def reopened() -> bool:
            exchange = RawExchange(system.port, request_head(
                "GET", stream_path(demo), system.port,
                {"Cookie": "; ".join(f"{n}={v}" for n, v in carla.http.cookies.items())}))
            status, _, _ = exchange.answer()
            if status == 200:
                opened.append(exchange)
            else:
                exchange.close()
            return status == 200

        eventually(reopened)
    finally:
        for exchange in opened:
            exchange.close()

