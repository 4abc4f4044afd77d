"""The same ``knock_id`` again: its ticket back while it waits (a retried request), and
nothing once the ticket has left the line. A knock answered again after admission would
hand out a fresh ticket token, and with it the way into the live consultation."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.natsserver import EmbeddedNats
from services.queue.application import Knock
from services.queue.domain import KnockAlreadyAnswered
from tests.conftest import SystemProcess
from tests.helpers import StaffClient, eventually, open_department
from tests.unit.support import CID, Upstream, berlin, notification_count


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    nats = EmbeddedNats(tmp_path_factory.mktemp("reknock-nats"))
    nats.start()
    system = SystemProcess(Path(tmp_path_factory.mktemp("reknock-data")), nats.url)
    try:
        system.start()
        yield system
    finally:
        system.stop()
        nats.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def knock_with(citizen: httpx.Client, department: str, knock_id: str, name: str) -> httpx.Response:
    return citizen.post(
        f"/departments/{department}/knock",
        json={"language": "de", "display_name": name, "knock_id": knock_id},
    )


def ticket_status(citizen: httpx.Client, ticket: dict[str, Any]) -> dict[str, Any]:
    response = citizen.get(f"/tickets/{ticket['ticket_id']}", headers=bearer(ticket["token"]))
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_repeated_knock_gets_its_waiting_ticket_back_unchanged(system: SystemProcess) -> None:
    citizen = system.client()
    demo = open_department(citizen, "demo")
    knock_id = str(uuid.uuid4())
    first = knock_with(citizen, demo, knock_id, "Erste")
    again = knock_with(citizen, demo, knock_id, "Zweite")
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["ticket_id"] == first.json()["ticket_id"]
    assert again.json()["number"] == first.json()["number"]
    assert again.json()["display_name"] == "Erste"
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    line = staff.get(f"/departments/{demo}/queue").json()["waiting"]
    mine = [entry for entry in line if entry["ticket_id"] == first.json()["ticket_id"]]
    assert [entry["display_name"] for entry in mine] == ["Erste"]


def admit(system: SystemProcess, citizen: httpx.Client, ticket: dict[str, Any]) -> None:
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    assert staff.post(f"/tickets/{ticket['ticket_id']}/admit").status_code == 200
    eventually(lambda: ticket_status(citizen, ticket)["consultation_id"])


def withdraw(system: SystemProcess, citizen: httpx.Client, ticket: dict[str, Any]) -> None:
    withdrawn = citizen.post(
        f"/tickets/{ticket['ticket_id']}/withdraw", headers=bearer(ticket["token"])
    )
    assert withdrawn.status_code == 200, withdrawn.text


def decline(system: SystemProcess, citizen: httpx.Client, ticket: dict[str, Any]) -> None:
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    declined = staff.post(f"/tickets/{ticket['ticket_id']}/decline", {"reason": "other"})
    assert declined.status_code == 200, declined.text


def expire(system: SystemProcess, citizen: httpx.Client, ticket: dict[str, Any]) -> None:
    """The office closes (the ticket expires) and opens again: the knock meets an open door."""
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    demo = ticket["department_id"]
    assert staff.post(f"/offices/{demo}/close").status_code == 200
    eventually(lambda: ticket_status(citizen, ticket)["status"] == "expired")
    assert staff.post(f"/offices/{demo}/open").status_code == 200
    open_department(citizen, "demo")


ENDINGS: dict[str, Callable[[SystemProcess, httpx.Client, dict[str, Any]], None]] = {
    "admitted": admit,
    "withdrawn": withdraw,
    "declined": decline,
    "expired": expire,
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_knock_is_spent_once_its_ticket_has_left_the_line(
    system: SystemProcess, ending: str
) -> None:
    citizen = system.client()
    demo = open_department(citizen, "demo")
    knock_id = str(uuid.uuid4())
    first = knock_with(citizen, demo, knock_id, "Anna Bürger")
    assert first.status_code == 201, first.text
    ticket = {**first.json(), "department_id": demo}
    ENDINGS[ending](system, citizen, ticket)
    before = ticket_status(citizen, ticket)
    assert before["status"] == ending

    again = knock_with(citizen, demo, knock_id, "Mallory")
    assert again.status_code == 409, again.text
    answer = again.json()
    assert "answered already" in answer["detail"]
    assert f"its ticket is {ending}" in answer["detail"]
    assert answer["ticket_status"] == ending
    assert "token" not in answer and "ticket_id" not in answer
    assert ticket_status(citizen, ticket) == before


# -- the rule, in the queue's domain ----------------------------------------------------------


def test_the_queue_answers_a_spent_knock_with_a_refusal_alone() -> None:
    upstream = Upstream()
    upstream.register("demo")
    upstream.clock(berlin(2025, 1, 6, 10, 0))
    upstream.pump()
    queue, demo = upstream.queue, upstream.ids["demo"]
    spent = uuid.uuid4()
    ticket, _ = queue.knock(demo, "walk_in", spent, CID)
    queue.admit(ticket.id, "anna", CID)
    stored = notification_count(queue)

    with pytest.raises(KnockAlreadyAnswered) as refused:
        queue.knock(demo, "walk_in", spent, CID)
    assert refused.value.status == "admitted"
    fresh, again, other = queue.knock_all(
        [Knock(demo, "walk_in", uuid.uuid4(), CID), Knock(demo, "walk_in", spent, CID),
         Knock(demo, "walk_in", uuid.uuid4(), CID)]
    )
    assert isinstance(again, KnockAlreadyAnswered)
    assert not isinstance(fresh, Exception) and not isinstance(other, Exception)
    # The two new knocks (each stores its ticket and its waiting number), nothing else.
    assert notification_count(queue) == stored + 2 * 2
    assert queue.ticket(ticket.id).status == "admitted"
