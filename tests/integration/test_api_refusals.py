"""Every refusal of the API, against the real system: status, a readable `detail`, no trace.

One system (``buergerbuero up`` on a real embedded NATS) serves the whole module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import nats
import pytest

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.helpers import DEMO_PASSWORD, StaffClient, eventually, knock

STREAM = "BB"
KNOCKED = "bb.queue.knocked"


# -- one system for the module --------------------------------------------------------------

@pytest.fixture(scope="module")
def nats_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path_factory.mktemp("refusals-nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory,
           nats_module: EmbeddedNats) -> Iterator[SystemProcess]:
    system = SystemProcess(Path(tmp_path_factory.mktemp("refusals-data")), nats_module.url)
    system.start()
    yield system
    system.kill()  # its data dies with the module; a clean stop is tested elsewhere


@pytest.fixture(scope="module")
def citizen(system: SystemProcess) -> Iterator[httpx.Client]:
    with system.client() as client:
        yield client


@pytest.fixture(scope="module")
def departments(citizen: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every seeded department once the office clock has run: open, or closed with a time."""
    def settled() -> dict[str, dict[str, Any]] | None:
        found = {d["slug"]: d for d in citizen.get("/departments").json()}
        if len(found) < 12 or not found["demo"]["open"]:
            return None
        if any(not d["open"] and d["opens_at"] is None for d in found.values()):
            return None
        return found

    return dict(eventually(settled, timeout=20))


@pytest.fixture(scope="module")
def demo(departments: dict[str, dict[str, Any]]) -> str:
    return str(departments["demo"]["id"])


@pytest.fixture(scope="module")
def anna(system: SystemProcess) -> StaffClient:
    return StaffClient(f"{system.base}/api/v1", "anna")


@pytest.fixture
def ticket(citizen: httpx.Client, demo: str) -> Iterator[dict[str, Any]]:
    """A citizen waiting at the demo office; withdrawn afterwards if still waiting."""
    made = knock(citizen, demo, display_name="Erika Mustermann", topic="antrag")
    yield made
    citizen.post(f"/tickets/{made['ticket_id']}/withdraw", headers=bearer(made["token"]))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(response: httpx.Response, status: int, *phrases: str) -> dict[str, Any]:
    """The response is the given refusal with a sentence a person can read."""
    assert response.status_code == status, _text(response)
    body = dict(response.json())
    detail = body["detail"]
    assert isinstance(detail, str) and len(detail) > 10 and detail[0].isupper(), body
    for phrase in phrases:
        assert phrase.lower() in detail.lower(), (phrase, detail)
    return body


def _text(response: httpx.Response) -> str:
    try:
        return response.text
    except httpx.ResponseNotRead:
        return f"(a stream: {response.headers.get('content-type')})"


def open_stream(client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
    """GET a live stream; the body is read only when it is a refusal, never waited for."""
    with client.stream("GET", path, **kwargs) as response:
        if response.status_code != 200:
            response.read()
    return response


def status_of(citizen: httpx.Client, made: dict[str, Any]) -> dict[str, Any]:
    response = citizen.get(f"/tickets/{made['ticket_id']}", headers=bearer(made["token"]))
    assert response.status_code == 200, response.text
    return dict(response.json())


# -- unknown things: 404 ----------------------------------------------------------------------

def test_unknown_department_is_404(citizen: httpx.Client, anna: StaffClient,
                                   departments: dict[str, Any]) -> None:
    nowhere = uuid4()
    refused(citizen.post(f"/departments/{nowhere}/knock", json={"language": "de"}), 404,
            "no such department")
    refused(citizen.get(f"/departments/{nowhere}"), 404, "no such department")
    refused(anna.get(f"/departments/{nowhere}/queue"), 404, "no such department")
    refused(anna.post(f"/departments/{nowhere}/queue/admit-next"), 404, "no such department")
    refused(open_stream(anna.http, f"/departments/{nowhere}/queue/stream"), 404,
            "no such department")


def test_a_malformed_department_id_is_422(citizen: httpx.Client) -> None:
    refused(citizen.post("/departments/kataster/knock", json={"language": "de"}), 422,
            "department_id", "uuid")


# -- the closed office: 409 with the next opening ---------------------------------------------

def test_closed_office_is_409_with_the_next_opening(
        citizen: httpx.Client, departments: dict[str, dict[str, Any]]) -> None:
    # hiv-beratung (Wed afternoon) and sexarbeit (Mon morning) are never open together.
    closed = next(d for d in departments.values() if not d["open"])
    body = refused(citizen.post(f"/departments/{closed['id']}/knock", json={"language": "de"}),
                   409, "closed", "opens next")
    opens_at = datetime.fromisoformat(body["opens_at"])
    assert opens_at == datetime.fromisoformat(closed["opens_at"])
    assert opens_at > datetime.now(UTC)
    assert opens_at.isoformat(timespec="minutes") in body["detail"]


# -- what a citizen types: 422 ----------------------------------------------------------------

def test_a_display_name_of_61_characters_is_422(citizen: httpx.Client, demo: str) -> None:
    body = refused(citizen.post(f"/departments/{demo}/knock",
                                json={"language": "de", "display_name": "E" * 61}),
                   422, "display_name", "too long", "60")
    assert body["errors"]


def test_a_display_name_of_60_characters_is_accepted(citizen: httpx.Client, demo: str) -> None:
    made = knock(citizen, demo, display_name="E" * 60)
    assert made["display_name"] == "E" * 60
    withdrawn = citizen.post(f"/tickets/{made['ticket_id']}/withdraw",
                             headers=bearer(made["token"]))
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"


@pytest.mark.parametrize(("body", "phrases"), [
    ({"language": "x"}, ["language"]),
    ({"language": "DE"}, ["language"]),
    ({"language": "de; DROP"}, ["language"]),
    ({"language": "fr"}, ["languages", "de"]),  # well-formed, but not offered here
    ({"language": "de", "topic": "astrology"}, ["topics", "antrag"]),
    ({"language": "de", "topic": "t" * 41}, ["topic", "too long"]),
    ({"language": "de", "display_name": ""}, ["display_name"]),
    ({"language": "de", "display_name": ["Erika"]}, ["display_name"]),
    (["de"], ["request"]),
])
def test_malformed_fields_are_422(citizen: httpx.Client, demo: str, body: Any,
                                  phrases: list[str]) -> None:
    refused(citizen.post(f"/departments/{demo}/knock", json=body), 422, *phrases)


def test_a_body_that_is_not_json_is_422(citizen: httpx.Client, demo: str) -> None:
    response = citizen.post(f"/departments/{demo}/knock", content="not json at all",
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], str)


def test_a_body_that_is_not_json_gets_a_readable_detail(citizen: httpx.Client,
                                                        demo: str) -> None:
    response = citizen.post(f"/departments/{demo}/knock", content="not json at all",
                            headers={"Content-Type": "application/json"})
    refused(response, 422, "json")
    assert "'0'" not in response.json()["detail"] and "jSON" not in response.json()["detail"]


def test_a_name_at_an_anonymous_department_is_422(
        citizen: httpx.Client, departments: dict[str, dict[str, Any]]) -> None:
    counselling = departments["hiv-beratung"]
    assert counselling["anonymous"]
    # Refused whether the counselling is open or not: the name is the problem.
    refused(citizen.post(f"/departments/{counselling['id']}/knock",
                         json={"language": "de", "display_name": "Erika"}),
            422, "anonymous", "name")


# -- the ticket's token: 401 -------------------------------------------------------------------

def test_missing_token_is_401(citizen: httpx.Client, ticket: dict[str, Any]) -> None:
    ticket_id = ticket["ticket_id"]
    refused(citizen.get(f"/tickets/{ticket_id}"), 401, "token")
    refused(citizen.post(f"/tickets/{ticket_id}/withdraw"), 401, "token")
    refused(open_stream(citizen, f"/tickets/{ticket_id}/stream"), 401, "token")
    assert status_of(citizen, ticket)["status"] == "waiting"


@pytest.mark.parametrize("token", ["nonsense", "a.b.c", "Bearer", "eyJhbGciOiJIUzI1NiJ9.e30."])
def test_wrong_token_is_401(citizen: httpx.Client, ticket: dict[str, Any], token: str) -> None:
    ticket_id = ticket["ticket_id"]
    refused(citizen.get(f"/tickets/{ticket_id}", headers=bearer(token)), 401, "not valid")
    refused(citizen.post(f"/tickets/{ticket_id}/withdraw", headers=bearer(token)), 401,
            "not valid")
    refused(open_stream(citizen, f"/tickets/{ticket_id}/stream", params={"token": token}), 401,
            "not valid")
    assert status_of(citizen, ticket)["status"] == "waiting"


def test_a_token_for_another_ticket_is_401(citizen: httpx.Client, demo: str,
                                           ticket: dict[str, Any]) -> None:
    other = knock(citizen, demo)
    try:
        for victim, token in ((ticket, other["token"]), (other, ticket["token"])):
            ticket_id = victim["ticket_id"]
            refused(citizen.get(f"/tickets/{ticket_id}", headers=bearer(token)), 401,
                    "not valid")
            refused(citizen.post(f"/tickets/{ticket_id}/withdraw", headers=bearer(token)),
                    401, "not valid")
            refused(open_stream(citizen, f"/tickets/{ticket_id}/stream",
                                params={"token": token}), 401, "not valid")
        assert status_of(citizen, ticket)["status"] == "waiting"
        assert status_of(citizen, other)["status"] == "waiting"
    finally:
        citizen.post(f"/tickets/{other['ticket_id']}/withdraw", headers=bearer(other["token"]))


# -- staff actions: 401 / 403 ------------------------------------------------------------------

def test_a_citizens_ticket_token_on_a_staff_action_is_403(
        citizen: httpx.Client, demo: str, ticket: dict[str, Any]) -> None:
    auth = bearer(ticket["token"])
    ticket_id = ticket["ticket_id"]
    for method, path, body in [
        ("POST", f"/tickets/{ticket_id}/admit", None),
        ("POST", f"/departments/{demo}/queue/admit-next", None),
        ("POST", f"/tickets/{ticket_id}/decline", {"reason": "other"}),
        ("POST", f"/tickets/{ticket_id}/transfer", {"department_id": demo}),
        ("GET", f"/departments/{demo}/queue", None),
        ("POST", f"/offices/{demo}/close", None),
    ]:
        response = citizen.request(method, path, json=body, headers=auth)
        refused(response, 403, "staff")
    refused(open_stream(citizen, f"/departments/{demo}/queue/stream", headers=auth), 403,
            "staff")
    assert status_of(citizen, ticket)["status"] == "waiting"


def test_a_staff_action_without_signing_in_is_401(citizen: httpx.Client, demo: str,
                                                  ticket: dict[str, Any]) -> None:
    refused(citizen.post(f"/tickets/{ticket['ticket_id']}/admit"), 401, "sign in")
    refused(citizen.post(f"/departments/{demo}/queue/admit-next"), 401, "sign in")
    refused(citizen.get(f"/departments/{demo}/queue"), 401, "sign in")
    refused(open_stream(citizen, f"/departments/{demo}/queue/stream"), 401, "sign in")
    refused(citizen.get("/auth/me"), 401, "sign in")
    assert status_of(citizen, ticket)["status"] == "waiting"


def test_another_departments_staff_is_403(system: SystemProcess, citizen: httpx.Client,
                                          departments: dict[str, dict[str, Any]],
                                          ticket: dict[str, Any]) -> None:
    demo, kataster = departments["demo"]["id"], departments["kataster"]["id"]
    api = f"{system.base}/api/v1"
    dora = StaffClient(api, "dora")  # data protection officer: on no department's staff
    carla = StaffClient(api, "carla")  # demo and the health office, not the land registry
    refused(dora.post(f"/tickets/{ticket['ticket_id']}/admit"), 403, "not on this department")
    refused(dora.post(f"/departments/{demo}/queue/admit-next"), 403, "not on this department")
    refused(dora.get(f"/departments/{demo}/queue"), 403, "not on this department")
    refused(open_stream(dora.http, f"/departments/{demo}/queue/stream"), 403,
            "not on this department")
    refused(dora.post(f"/offices/{demo}/close"), 403, "not on this department")
    refused(carla.get(f"/departments/{kataster}/queue"), 403, "not on this department")
    refused(open_stream(carla.http, f"/departments/{kataster}/queue/stream"), 403,
            "not on this department")
    refused(carla.post(f"/departments/{kataster}/queue/admit-next"), 403,
            "not on this department")
    refused(carla.post(f"/offices/{kataster}/close"), 403, "not on this department")
    refused(carla.post(f"/offices/{kataster}/open"), 403, "not on this department")
    # carla serves demo but administers only the health office
    refused(carla.http.put(f"/offices/{demo}/hours", json={"weekly": []},
                           headers={"X-CSRF-Token": carla.csrf}), 403, "admins")
    assert status_of(citizen, ticket)["status"] == "waiting"
    # ... and the queue is served by the right person
    assert carla.get(f"/departments/{demo}/queue").status_code == 200


def test_an_already_admitted_ticket_is_409(citizen: httpx.Client, anna: StaffClient,
                                           system: SystemProcess,
                                           ticket: dict[str, Any]) -> None:
    ticket_id = ticket["ticket_id"]
    first = anna.post(f"/tickets/{ticket_id}/admit")
    assert first.status_code == 200, first.text
    body = refused(anna.post(f"/tickets/{ticket_id}/admit"), 409, "no longer waiting",
                   "admitted")
    assert body["ticket_status"] == "admitted"
    ben = StaffClient(f"{system.base}/api/v1", "ben")  # a colleague, a moment too late
    refused(ben.post(f"/tickets/{ticket_id}/admit"), 409, "no longer waiting")
    refused(ben.post(f"/tickets/{ticket_id}/decline", {"reason": "other"}), 409,
            "no longer waiting")
    refused(citizen.post(f"/tickets/{ticket_id}/withdraw", headers=bearer(ticket["token"])),
            409, "no longer waiting")
    assert status_of(citizen, ticket)["status"] == "admitted"


def test_nobody_waiting_is_409(anna: StaffClient, departments: dict[str, dict[str, Any]]) -> None:
    refused(anna.post(f"/departments/{departments['kataster']['id']}/queue/admit-next"), 409,
            "nobody is waiting")


def test_a_staff_post_without_csrf_token_is_403(citizen: httpx.Client, anna: StaffClient,
                                                demo: str, ticket: dict[str, Any]) -> None:
    for headers in ({}, {"X-CSRF-Token": "guessed"}, {"X-CSRF-Token": ""}):
        refused(anna.http.post(f"/tickets/{ticket['ticket_id']}/admit", headers=headers), 403,
                "csrf")
        refused(anna.http.post(f"/departments/{demo}/queue/admit-next", headers=headers), 403,
                "csrf")
        refused(anna.http.post(f"/offices/{demo}/close", headers=headers), 403, "csrf")
    # Reading needs no CSRF token: the session itself is fine.
    assert anna.get(f"/departments/{demo}/queue").status_code == 200
    assert status_of(citizen, ticket)["status"] == "waiting"


@pytest.mark.parametrize(("username", "password"), [
    ("anna", "wrong password"),
    ("anna", DEMO_PASSWORD.upper()),
    ("nobody", DEMO_PASSWORD),
])
def test_wrong_password_is_401(citizen: httpx.Client, username: str, password: str) -> None:
    response = citizen.post("/auth/login", json={"username": username, "password": password})
    refused(response, 401, "user name or password is wrong")
    assert "bb_session" not in response.cookies


def test_an_empty_sign_in_is_422(citizen: httpx.Client) -> None:
    refused(citizen.post("/auth/login", json={"username": "anna", "password": ""}), 422,
            "password")


# -- nothing half-written remains ---------------------------------------------------------------

async def _knocks_in_stream(url: str) -> tuple[int, str | None]:
    """How many Knocked events the stream holds, and the ticket of the newest."""
    connection = await nats.connect(url)
    try:
        js = connection.jetstream()
        info = await js.stream_info(STREAM, subjects_filter=KNOCKED)
        count = (info.state.subjects or {}).get(KNOCKED, 0)
        if not count:
            return 0, None
        last = await js.get_last_msg(STREAM, KNOCKED)
        return count, json.loads(last.data or b"{}")["ticket_id"]
    finally:
        await connection.close()


def knocks_in_stream(url: str) -> tuple[int, str | None]:
    return asyncio.run(_knocks_in_stream(url))


def test_nothing_half_written_remains_after_refusals(
        system: SystemProcess, nats_module: EmbeddedNats, citizen: httpx.Client,
        anna: StaffClient, departments: dict[str, dict[str, Any]]) -> None:
    demo = departments["demo"]["id"]
    closed = next(d for d in departments.values() if not d["open"])
    counselling = departments["hiv-beratung"]["id"]

    def waiting_counts() -> dict[str, int]:
        return {d["slug"]: d["waiting"] for d in citizen.get("/departments").json()}

    def staff_line() -> list[str]:
        response = anna.get(f"/departments/{demo}/queue")
        assert response.status_code == 200, response.text
        return [w["ticket_id"] for w in response.json()["waiting"]]

    stored_before, _ = knocks_in_stream(nats_module.url)
    counts_before, line_before = waiting_counts(), staff_line()

    refusals = [
        citizen.post(f"/departments/{uuid4()}/knock", json={"language": "de"}),
        citizen.post(f"/departments/{closed['id']}/knock", json={"language": "de"}),
        citizen.post(f"/departments/{demo}/knock", json={"display_name": "E" * 61}),
        citizen.post(f"/departments/{demo}/knock", json={"language": "x"}),
        citizen.post(f"/departments/{demo}/knock", json={"language": "fr"}),
        citizen.post(f"/departments/{demo}/knock", json={"topic": "astrology"}),
        citizen.post(f"/departments/{counselling}/knock", json={"display_name": "Erika"}),
        anna.http.post(f"/departments/{demo}/queue/admit-next"),  # no CSRF token
    ]
    assert [r.status_code for r in refusals] == [404, 409, 422, 422, 422, 422, 422, 403]

    # A knock that is let in, as a barrier: the outbox publishes in order, so once it is in
    # the stream, anything a refused request had stored would be there before it.
    sentinel = knock(citizen, demo)
    try:
        eventually(lambda: knocks_in_stream(nats_module.url)[1] == sentinel["ticket_id"])
        stored_after, _ = knocks_in_stream(nats_module.url)
        assert stored_after == stored_before + 1
        assert staff_line() == [*line_before, sentinel["ticket_id"]]
        assert waiting_counts() == {**counts_before, "demo": counts_before["demo"] + 1}
    finally:
        citizen.post(f"/tickets/{sentinel['ticket_id']}/withdraw",
                     headers=bearer(sentinel["token"]))


# -- last, because it closes the demo office for a moment ----------------------------------------

def test_closing_early_expires_the_waiting_and_refuses_knocks_until_reopened(
        citizen: httpx.Client, anna: StaffClient, demo: str) -> None:
    waiting = knock(citizen, demo)
    closed = anna.post(f"/offices/{demo}/close")
    assert closed.status_code == 200, closed.text
    try:
        assert closed.json()["open"] is False
        refused(anna.post(f"/offices/{demo}/close"), 409, "already closed")
        expired = eventually(lambda: status_of(citizen, waiting)["status"] == "expired"
                             and status_of(citizen, waiting))
        assert expired["expiry_reason"] == "office_closed"

        def refused_as_closed() -> dict[str, Any] | None:
            response = citizen.post(f"/departments/{demo}/knock", json={"language": "de"})
            if response.status_code == 201:  # the door's state had not arrived yet
                made = response.json()
                citizen.post(f"/tickets/{made['ticket_id']}/withdraw",
                             headers=bearer(made["token"]))
                return None
            return refused(response, 409, "closed")

        body = eventually(refused_as_closed)
        assert "opens_at" in body
    finally:
        reopened = anna.post(f"/offices/{demo}/open")
    assert reopened.status_code == 200, reopened.text
    again = eventually(lambda: citizen.post(f"/departments/{demo}/knock",
                                            json={"language": "de"}).status_code == 201)
    assert again
