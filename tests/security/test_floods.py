"""Floods refused: one client's knocks and waiting tickets, a full line, many streams of
one ticket; and what staff see of it (the first of a long line, shared addresses, one
action to decline a flood).

A real `up` in both modes: with two queue processes sharing the port, consecutive
connections land on either, so every limit must hold across processes. The client
address is what the loopback forwarder (here: the test, on loopback too) says in
X-Forwarded-For; the limits are the defaults (10 knocks a minute, 3 waiting per client
and department, 5 streams per ticket) but a line limit of 60, quicker to fill than 500,
and 3 streams per staff member rather than 10.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import SystemProcess
from tests.helpers import StaffClient, eventually, open_department
from tests.security.limits_support import MODES, RawExchange, request_head, start_system

pytestmark = pytest.mark.timeout(300)

LINE_LIMIT = 60
LIMITS = {
    "BB_KNOCKS_PER_CLIENT_PER_MINUTE": "10",
    "BB_WAITING_TICKETS_PER_CLIENT": "3",
    "BB_STREAMS_PER_TICKET": "5",
    "BB_STREAMS_PER_STAFF": "3",
    "BB_LINE_LIMIT": str(LINE_LIMIT),
}


@pytest.fixture(scope="module", params=MODES, ids=lambda m: f"queue-processes-{m}")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SystemProcess]:
    yield from start_system(tmp_path_factory.mktemp("floods"), str(request.param), LIMITS)


@pytest.fixture(scope="module")
def dept(system: SystemProcess) -> str:
    with system.client() as client:
        return open_department(client, "demo")


@pytest.fixture
def staff(system: SystemProcess, dept: str) -> Iterator[StaffClient]:
    """Anna, who serves the demo line; whatever a test left waiting is declined after it.

    Each replica has its own view of the line, fed over NATS: the replica answering the
    clean-up may not yet have seen the test's last knock (answered by the other one), so
    declining and checking are one loop until a line read shows nobody waiting.
    """
    anna = StaffClient(f"{system.base}/api/v1", "anna")
    yield anna

    def line_cleared() -> bool:
        line = anna.get(f"/departments/{dept}/queue?limit=1000").json()
        for entry in line["waiting"]:
            anna.post(f"/tickets/{entry['ticket_id']}/decline", {"reason": "other"})
        return bool(line["total"] == 0)

    eventually(line_cleared)


def knock_from(system: SystemProcess, dept: str, address: str, name: str) -> httpx.Response:
    """A knock on a new connection (either queue process) from ``address``."""
    with httpx.Client(base_url=f"{system.base}/api/v1", timeout=10) as client:
        return client.post(
            f"/departments/{dept}/knock",
            json={"language": "de", "display_name": name},
            headers={"X-Forwarded-For": address},
        )


def withdraw(system: SystemProcess, ticket: dict[str, Any]) -> None:
    with httpx.Client(base_url=f"{system.base}/api/v1", timeout=10) as client:
        response = client.post(
            f"/tickets/{ticket['ticket_id']}/withdraw",
            headers={"Authorization": f"Bearer {ticket['token']}"},
        )
        assert response.status_code == 200, response.text


def assert_too_many(response: httpx.Response, reason: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    body: dict[str, Any] = response.json()
    assert body["reason"] == reason
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1 and body["retry_after_seconds"] == retry_after
    return body


def test_knocks_beyond_ten_a_minute_from_one_client_are_refused(
    system: SystemProcess, dept: str, staff: StaffClient
) -> None:
    # Knock and leave again, over and over: the line never grows, the count does.
    for n in range(10):
        response = knock_from(system, dept, "198.51.100.7", f"Bürger {n}")
        assert response.status_code == 201, (n, response.text)
        withdraw(system, response.json())
    refused = knock_from(system, dept, "198.51.100.7", "Bürger 10")
    body = assert_too_many(refused, "too_many_knocks")
    assert int(refused.headers["Retry-After"]) <= 60
    assert "Too many knocks" in body["detail"] and "try again in" in body["detail"]
    # Another client is not held up by it.
    assert knock_from(system, dept, "198.51.100.8", "Nachbarin").status_code == 201


def test_a_fourth_waiting_ticket_from_one_client_is_refused_and_staff_see_and_clear_them(
    system: SystemProcess, dept: str, staff: StaffClient
) -> None:
    mine = [knock_from(system, dept, "203.0.113.9", f"Flut {n}") for n in range(3)]
    assert [r.status_code for r in mine] == [201, 201, 201]
    body = assert_too_many(knock_from(system, dept, "203.0.113.9", "Flut 3"), "too_many_waiting")
    assert "already have 3 tickets waiting" in body["detail"]
    other = knock_from(system, dept, "203.0.113.10", "Jemand anderes")
    assert other.status_code == 201

    # Staff see the three as one client's, by a tag that is not the address.
    flood = {r.json()["ticket_id"] for r in mine}

    def marked() -> dict[str, Any] | None:
        line = staff.get(f"/departments/{dept}/queue").json()
        tagged = {e["ticket_id"] for e in line["waiting"] if e["client_tag"]}
        everyone = {e["ticket_id"] for e in line["waiting"]}
        return line if tagged == flood and other.json()["ticket_id"] in everyone else None

    line = eventually(marked)
    entries = {e["ticket_id"]: e for e in line["waiting"]}
    tags = {entries[t]["client_tag"] for t in flood}
    assert len(tags) == 1 and all(entries[t]["same_client"] == 3 for t in flood)
    (tag,) = tags
    assert entries[other.json()["ticket_id"]]["client_tag"] is None
    assert line["shared_addresses"] == [{"client_tag": tag, "waiting": 3}]
    assert "203.0.113" not in str(line)

    # One action declines them all, and nobody else.
    cleared = staff.post(
        f"/departments/{dept}/queue/decline-client", {"client_tag": tag, "reason": "other"}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() == {"declined": 3}

    def cleared_line() -> bool:
        line = staff.get(f"/departments/{dept}/queue").json()
        waiting = {e["ticket_id"] for e in line["waiting"]}
        return not waiting & flood and other.json()["ticket_id"] in waiting

    eventually(cleared_line)


def test_a_full_line_says_so_and_staff_get_its_first_and_a_count(
    system: SystemProcess, dept: str, staff: StaffClient
) -> None:
    for n in range(LINE_LIMIT):
        response = knock_from(system, dept, f"192.0.2.{n + 1}", f"Bürger {n}")
        assert response.status_code == 201, (n, response.text)

    def full() -> bool:
        with system.client() as client:
            return bool(client.get(f"/departments/{dept}").json()["line_full"])

    eventually(full)
    body = assert_too_many(knock_from(system, dept, "192.0.2.200", "Zu spät"), "line_full")
    assert body["detail"] == "The line is full at the moment. Please come back later."

    line = eventually(
        lambda: (v := staff.get(f"/departments/{dept}/queue").json())["total"] == LINE_LIMIT
        and v
    )
    assert len(line["waiting"]) == 50  # BB_STAFF_LINE_SHOWN: the first of the line
    assert [e["number"] for e in line["waiting"]] == sorted(e["number"] for e in line["waiting"])
    assert len(staff.get(f"/departments/{dept}/queue?limit=5").json()["waiting"]) == 5


def open_stream(system: SystemProcess, ticket: dict[str, Any]) -> tuple[int, RawExchange]:
    path = f"{ticket['stream']}?token={ticket['token']}"
    exchange = RawExchange(system.port, request_head("GET", path, system.port, {}))
    status, _, _ = exchange.answer()
    return status, exchange


def test_a_sixth_stream_of_one_ticket_is_refused(
    system: SystemProcess, dept: str, staff: StaffClient
) -> None:
    ticket = knock_from(system, dept, "198.51.100.99", "Viele Fenster").json()
    opened = [open_stream(system, ticket) for _ in range(5)]
    try:
        assert [status for status, _ in opened] == [200] * 5
        path = f"{ticket['stream']}?token={ticket['token']}"
        with httpx.Client(base_url=system.base, timeout=10) as client:
            refused = client.get(path)
        body = assert_too_many(refused, "too_many_streams")
        assert "too many windows" in body["detail"]

        # A window closed gives its stream back.
        opened.pop()[1].close()

        def reopened() -> bool:
            status, exchange = open_stream(system, ticket)
            if status == 200:
                opened.append((status, exchange))
            else:
                exchange.close()
            return status == 200

        eventually(reopened)
    finally:
        for _, exchange in opened:
            exchange.close()


def open_staff_stream(
    system: SystemProcess, staff: StaffClient, path: str
) -> tuple[int, RawExchange]:
    cookie = "; ".join(f"{name}={value}" for name, value in staff.http.cookies.items())
    head = request_head("GET", f"/api/v1{path}", system.port, {"Cookie": cookie})
    exchange = RawExchange(system.port, head)
    status, _, _ = exchange.answer()
    return status, exchange


def test_a_staff_members_fourth_stream_is_refused_whichever_line_it_follows(
    system: SystemProcess, dept: str, staff: StaffClient
) -> None:
    paths = ["/departments/queues/stream", f"/departments/{dept}/queue/stream"]
    opened = [open_staff_stream(system, staff, paths[n % 2]) for n in range(3)]
    try:
        assert [status for status, _ in opened] == [200] * 3
        for path in paths:
            body = assert_too_many(staff.get(path), "too_many_streams")
            assert "too many windows" in body["detail"]
        # Another staff member's streams are not counted with Anna's.
        ben = StaffClient(f"{system.base}/api/v1", "ben")
        status, other = open_staff_stream(system, ben, "/departments/queues/stream")
        other.close()
        assert status == 200

        opened.pop()[1].close()  # a window closed gives its stream back

        def reopened() -> bool:
            status, exchange = open_staff_stream(system, staff, paths[0])
            if status == 200:
                opened.append((status, exchange))
            else:
                exchange.close()
            return status == 200

        eventually(reopened)
    finally:
        for _, exchange in opened:
            exchange.close()
