"""The queue's other paths through the real system: decline, transfer, closing, privacy."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid

import nats
import pytest
from nats.js.errors import KeyNotFoundError

from tests.conftest import ROOT
from tests.helpers import StaffClient, StreamReader, eventually, knock, open_department


def _stream(system, ticket) -> StreamReader:  # type: ignore[no-untyped-def]
    return StreamReader(f"{system.base}{ticket['stream']}?token={ticket['token']}")


def test_decline_with_reason_and_message(system) -> None:  # type: ignore[no-untyped-def]
    citizen = system.client()
    dept = open_department(citizen, "demo")
    ticket = knock(citizen, dept, display_name="Paula")
    stream = _stream(system, ticket)
    stream.wait_for(lambda e, d: e == "status" and d["status"] == "waiting")
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    declined = staff.post(
        f"/tickets/{ticket['ticket_id']}/decline",
        {"reason": "appointment_required", "message": "Bitte buchen Sie einen Termin."},
    )
    assert declined.status_code == 200, declined.text
    status = stream.wait_for(lambda e, d: e == "status" and d["status"] == "declined")
    assert status["decline_reason"] == "appointment_required"
    message = stream.wait_for(lambda e, d: e == "message")
    assert message["text"] == "Bitte buchen Sie einen Termin."
    again = staff.post(f"/tickets/{ticket['ticket_id']}/admit")
    assert again.status_code == 409
    stream.close()


def test_transfer_and_note_to_the_line(system) -> None:  # type: ignore[no-untyped-def]
    citizen = system.client()
    demo = open_department(citizen, "demo")
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    kataster = next(d["id"] for d in citizen.get("/departments").json() if d["slug"] == "kataster")
    if not next(d for d in citizen.get("/departments").json() if d["slug"] == "kataster")["open"]:
        assert staff.post(f"/offices/{kataster}/open").status_code == 200
    open_department(citizen, "kataster")

    ticket = knock(citizen, demo, display_name="Tom")
    stream = _stream(system, ticket)
    stream.wait_for(lambda e, d: e == "status" and d["status"] == "waiting")
    assert (
        staff.post(
            f"/departments/{demo}/queue/message", {"text": "Noch etwa 10 Minuten."}
        ).status_code
        == 202
    )
    assert stream.wait_for(lambda e, d: e == "message")["text"] == "Noch etwa 10 Minuten."

    moved = staff.post(f"/tickets/{ticket['ticket_id']}/transfer", {"department_id": kataster})
    assert moved.status_code == 200, moved.text
    status = stream.wait_for(lambda e, d: e == "status" and d["department_id"] == kataster)
    assert status["status"] == "waiting" and status["place"] == 1
    line = staff.get(f"/departments/{kataster}/queue").json()
    assert [w["display_name"] for w in line["waiting"]] == ["Tom"]
    assert staff.get(f"/departments/{demo}/queue").json()["waiting"] == []
    stream.close()


def test_closing_early_expires_everyone_waiting(system) -> None:  # type: ignore[no-untyped-def]
    citizen = system.client()
    dept = open_department(citizen, "demo")
    tickets = [knock(citizen, dept, display_name=f"Gast {n}") for n in range(3)]
    streams = [_stream(system, t) for t in tickets]
    for stream in streams:
        stream.wait_for(lambda e, d: e == "status" and d["status"] == "waiting")

    staff = StaffClient(f"{system.base}/api/v1", "anna")
    closed = staff.post(f"/offices/{dept}/close")
    assert closed.status_code == 200 and closed.json()["open"] is False
    for stream in streams:
        status = stream.wait_for(lambda e, d: e == "status" and d["status"] == "expired")
        assert status["expiry_reason"] == "office_closed"
        assert "next_opening" in status

    refused = eventually(
        lambda: (
            (r := citizen.post(f"/departments/{dept}/knock", json={"language": "de"})).status_code
            == 409
            and r
        )
    )
    assert "closed" in refused.json()["detail"]
    assert "opens_at" in refused.json()
    assert staff.post(f"/offices/{dept}/open").status_code == 200
    open_department(citizen, "demo")
    for stream in streams:
        stream.close()


def test_what_a_citizen_typed_is_gone_after_its_retention(system_factory, nats_server) -> None:  # type: ignore[no-untyped-def]
    system = system_factory(env={"BB_VISIT_DATA_TTL_SECONDS": "2"})
    citizen = system.client()
    dept = open_department(citizen, "demo")
    ticket = knock(citizen, dept, display_name="Erika Geheim", topic="antrag")
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    first = staff.get(f"/departments/{dept}/queue").json()["waiting"][0]
    assert first["display_name"] == "Erika Geheim"

    async def stored() -> bytes | None:
        nc = await nats.connect(nats_server.url)
        try:
            kv = await nc.jetstream().key_value("bb_visits")
            try:
                return (await kv.get(ticket["ticket_id"])).value
            except KeyNotFoundError:
                return None
        finally:
            await nc.close()

    assert asyncio.run(stored()) is not None
    time.sleep(2)  # the retention time; expiry itself may take the server a moment longer
    eventually(lambda: asyncio.run(stored()) is None, timeout=20)

    def forgotten() -> bool:
        entry = staff.get(f"/departments/{dept}/queue").json()["waiting"][0]
        assert entry["ticket_id"] == ticket["ticket_id"]
        return entry["display_name"] is None and entry["topic"] is None

    eventually(forgotten, timeout=10)


def test_a_retried_knock_makes_no_second_ticket(system) -> None:  # type: ignore[no-untyped-def]
    citizen = system.client()
    dept = open_department(citizen, "demo")
    body = {"language": "de", "display_name": "Doppelt", "knock_id": str(uuid.uuid4())}
    first = citizen.post(f"/departments/{dept}/knock", json=body)
    again = citizen.post(f"/departments/{dept}/knock", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["ticket_id"] == again.json()["ticket_id"]
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    assert len(staff.get(f"/departments/{dept}/queue").json()["waiting"]) == 1


def test_anonymous_department_shows_a_pseudonym(system) -> None:  # type: ignore[no-untyped-def]
    citizen = system.client()
    staff = StaffClient(f"{system.base}/api/v1", "carla")
    hiv = next(d for d in citizen.get("/departments").json() if d["slug"] == "hiv-beratung")
    assert hiv["anonymous"] is True
    if not hiv["open"]:
        assert staff.post(f"/offices/{hiv['id']}/open").status_code == 200
    open_department(citizen, "hiv-beratung")
    ticket = knock(citizen, hiv["id"])
    # A pseudonym is data (no name, anonymous, the number): pages word it in their language.
    assert (ticket["display_name"], ticket["anonymous"]) == (None, True)
    line = staff.get(f"/departments/{hiv['id']}/queue").json()
    entry = line["waiting"][0]
    assert (entry["display_name"], entry["anonymous"]) == (None, True)
    assert entry["number"] == ticket["number"]


def test_services_in_separate_processes_talk_only_through_nats(system_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rooms = system_factory(args=["serve", "rooms"], data_dir=tmp_path / "rooms")
    queue = system_factory(args=["serve", "queue"], data_dir=tmp_path / "queue")
    citizen = queue.client()
    dept = open_department(citizen, "demo")
    ticket = knock(citizen, dept, display_name="Getrennt")
    # sign in at rooms; the signed session is honoured by queue without a call
    staff = StaffClient(f"{rooms.base}/api/v1", "anna")
    admitted = staff.http.post(
        f"{queue.base}/api/v1/tickets/{ticket['ticket_id']}/admit",
        headers={"X-CSRF-Token": staff.csrf},
    )
    assert admitted.status_code == 200, admitted.text
    auth = {"Authorization": f"Bearer {ticket['token']}"}
    consultation = eventually(
        lambda: citizen.get(f"/tickets/{ticket['ticket_id']}", headers=auth).json()[
            "consultation_id"
        ]
    )
    joined = rooms.client().post(f"/consultations/{consultation}/join", headers=auth)
    assert joined.status_code == 200, joined.text


def test_staff_cli_adds_an_account_and_puts_it_on_a_roster(system, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = system.env
    cli = [sys.executable, "-m", "services.cli", "staff"]
    added = subprocess.run(
        [
            *cli,
            "add",
            "erik",
            "--name",
            "Erik Neu",
            "--department",
            "demo",
            "--password",
            "ein-langes-passwort",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([*cli, "list"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert "erik\tErik Neu\tstaff" in listed.stdout
    short = subprocess.run(
        [*cli, "add", "kurz", "--name", "K", "--password", "kurz"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert short.returncode == 2 and "at least 10" in short.stderr

    citizen = system.client()
    dept = open_department(citizen, "demo")
    staff = StaffClient(f"{system.base}/api/v1", "erik", "ein-langes-passwort")
    # the roster change travels rooms → NATS → queue
    eventually(lambda: staff.get(f"/departments/{dept}/queue").status_code == 200)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_operations_endpoints(system, path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    response = httpx.get(f"{system.base}{path}")
    assert response.status_code == 200
    if path == "/metrics":
        assert "bb_relay_published_events_total" in response.text
        assert "bb_queue_knocks_total" in response.text or "bb_queue_open_streams" in response.text


def test_one_stream_for_all_my_lines_says_where_the_consultation_is(system) -> None:  # type: ignore[no-untyped-def]
    citizen = system.client()
    demo = open_department(citizen, "demo")
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    lines = StreamReader(
        f"{system.base}/api/v1/departments/queues/stream", cookies=staff.http.cookies
    )
    snapshot = lines.wait_for(lambda e, d: e == "snapshot" and d["department_id"] == demo)
    assert snapshot["waiting"] == []
    ticket = knock(citizen, demo, display_name="Überall")
    knocked = lines.wait_for(lambda e, d: e == "knocked")
    assert (knocked["ticket_id"], knocked["department_id"]) == (ticket["ticket_id"], demo)
    assert staff.post(f"/tickets/{ticket['ticket_id']}/admit").status_code == 200
    ready = lines.wait_for(lambda e, d: e == "consultation")
    assert ready["ticket_id"] == ticket["ticket_id"] and ready["staff_id"] == "anna"
    joined = staff.post(f"/consultations/{ready['consultation_id']}/join")
    assert joined.status_code == 200, joined.text

    carla = StaffClient(f"{system.base}/api/v1", "carla")
    kataster = next(d["id"] for d in citizen.get("/departments").json() if d["slug"] == "kataster")
    refused = carla.get(f"/departments/queues/stream?department={kataster}")
    assert refused.status_code == 403
    lines.close()


def test_an_admin_changes_languages_and_topics(system) -> None:  # type: ignore[no-untyped-def]
    citizen = system.client()
    demo = open_department(citizen, "demo")
    admin = StaffClient(f"{system.base}/api/v1", "anna")  # admin of demo
    offer = {
        "languages": ["de", "en", "pl"],
        "topics": [{"id": "wohnsitz", "de": "Wohnsitz anmelden", "en": "Register an address"}],
    }
    changed = admin.http.put(
        f"/offices/{demo}/offer", json=offer, headers={"X-CSRF-Token": admin.csrf}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["languages"] == ["de", "en", "pl"]

    # rooms → NATS → queue: the door now offers Polish and the new topic only
    eventually(
        lambda: (
            next(d for d in citizen.get("/departments").json() if d["id"] == demo)["languages"]
            == ["de", "en", "pl"]
        )
    )
    assert knock(citizen, demo, language="pl", topic="wohnsitz")["place"] >= 1
    old_topic = citizen.post(
        f"/departments/{demo}/knock", json={"language": "de", "topic": "antrag"}
    )
    assert old_topic.status_code == 422

    ben = StaffClient(f"{system.base}/api/v1", "ben")  # staff, not admin, of demo
    refused = ben.http.put(f"/offices/{demo}/offer", json=offer, headers={"X-CSRF-Token": ben.csrf})
    assert refused.status_code == 403
    bad = admin.http.put(
        f"/offices/{demo}/offer",
        json={"languages": ["Deutsch"], "topics": []},
        headers={"X-CSRF-Token": admin.csrf},
    )
    assert bad.status_code == 422 and "language code" in bad.json()["detail"]
