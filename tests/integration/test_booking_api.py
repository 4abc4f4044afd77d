"""The booking API against the real system: what it answers, and every refusal of it
(no token or another's, wrong staff, malformed, oversized), with a readable ``detail``.

One system (``buergerbuero up`` on a real embedded NATS) serves the whole module; the
demo office takes appointments every 15 minutes around the clock (two places each).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count, pairwise
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
from icalendar import Calendar

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.helpers import StaffClient, eventually
from tests.integration.test_api_refusals import bearer, refused

_offsets = count(1)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def nats_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path_factory.mktemp("booking-nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory,
           nats_module: EmbeddedNats) -> Iterator[SystemProcess]:
    system = SystemProcess(Path(tmp_path_factory.mktemp("booking-data")), nats_module.url)
    system.start()
    yield system
    system.kill()


@pytest.fixture(scope="module")
def citizen(system: SystemProcess) -> Iterator[httpx.Client]:
    with system.client() as client:
        yield client


@pytest.fixture(scope="module")
def departments(citizen: httpx.Client) -> dict[str, str]:
    def listed() -> dict[str, str] | None:
        found = {d["slug"]: str(d["id"]) for d in citizen.get("/departments").json()}
        return found if len(found) >= 12 else None

    return dict(eventually(listed, timeout=20))


@pytest.fixture(scope="module")
def demo(citizen: httpx.Client, departments: dict[str, str]) -> str:
    """The demo office, once booking has its schedule (seeded after rooms' events came)."""
    path, params = slots_query(departments["demo"], 1)
    eventually(lambda: citizen.get(path, params=params).status_code == 200, timeout=20)
    return departments["demo"]


@pytest.fixture(scope="module")
def anna(system: SystemProcess) -> StaffClient:
    return StaffClient(f"{system.base}/api/v1", "anna")  # admin of demo and kataster


@pytest.fixture(scope="module")
def ben(system: SystemProcess) -> StaffClient:
    return StaffClient(f"{system.base}/api/v1", "ben")  # staff at demo, not its admin


def slots_query(department: str, days: int, hours: int = 2) -> tuple[str, dict[str, str]]:
    start = (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0,
                                                                microsecond=0)
    end = start + timedelta(hours=hours)
    return f"/departments/{department}/slots", {"from": start.isoformat(),
                                                 "to": end.isoformat()}


def a_free_slot(citizen: httpx.Client, demo: str) -> str:
    """A slot no other test of this module books: one hour apart, a day and more ahead."""
    offset = next(_offsets)
    path, params = slots_query(demo, 1, hours=72)
    slots = citizen.get(path, params=params).json()["slots"]
    return str(slots[offset * 4]["start"])


def booked(citizen: httpx.Client, demo: str, **body: Any) -> dict[str, Any]:
    response = citizen.post(f"/departments/{demo}/appointments",
                            json={"start": a_free_slot(citizen, demo), **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


# -- slots ------------------------------------------------------------------------------------

def test_free_slots_of_the_demo_office(citizen: httpx.Client, demo: str) -> None:
    path, params = slots_query(demo, 3)
    body = citizen.get(path, params=params).json()
    assert body["timezone"] == "Europe/Berlin" and body["slot_minutes"] == 15
    starts = [datetime.fromisoformat(s["start"]) for s in body["slots"]]
    assert len(starts) == 8 and all(s["remaining"] == 2 for s in body["slots"])
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(starts))


@pytest.mark.parametrize(("params", "phrases"), [
    ({"from": "tomorrow", "to": "2026-01-01T00:00:00Z"}, ["from"]),
    ({"from": "2026-01-01T00:00:00"}, ["to"]),
    ({"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00"}, ["time zone"]),
    ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, ["after"]),
    ({"from": "2026-01-01T00:00:00Z", "to": "2028-01-01T00:00:00Z"}, ["400 days"]),
])
def test_malformed_searches_are_422(citizen: httpx.Client, demo: str, params: dict[str, str],
                                    phrases: list[str]) -> None:
    refused(citizen.get(f"/departments/{demo}/slots", params=params), 422, *phrases)


def test_unknown_department_and_one_without_appointments(
        citizen: httpx.Client, departments: dict[str, str]) -> None:
    path, params = slots_query(str(uuid4()), 1)
    refused(citizen.get(path, params=params), 404, "no such department")
    path, params = slots_query(departments["einbuergerung"], 1)
    refused(citizen.get(path, params=params), 409, "does not take appointments")
    refused(citizen.post(f"/departments/{departments['einbuergerung']}/appointments",
                         json={"start": "2030-01-07T09:00:00+01:00"}), 409, "appointments")


# -- booking ----------------------------------------------------------------------------------

def test_booking_answers_the_appointment_its_token_and_link(citizen: httpx.Client,
                                                            demo: str) -> None:
    made = booked(citizen, demo, display_name="Erika Mustermann", email="erika@example.org",
                  language="en")
    appointment_id = made["appointment_id"]
    assert made["link"].endswith(f"/appointments/{appointment_id}#token={made['token']}")
    shown = citizen.get(f"/appointments/{appointment_id}", headers=bearer(made["token"]))
    assert shown.status_code == 200, shown.text
    view = shown.json()
    assert view["status"] == "booked" and view["language"] == "en"
    assert view["department_name"].startswith("Demo office")
    assert "Erika" not in shown.text


def test_the_same_booking_sent_again_is_the_same_appointment(citizen: httpx.Client,
                                                             demo: str) -> None:
    body = {"start": a_free_slot(citizen, demo), "request_id": str(uuid4())}
    first = citizen.post(f"/departments/{demo}/appointments", json=body)
    again = citizen.post(f"/departments/{demo}/appointments", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["appointment_id"] == again.json()["appointment_id"]


def test_the_calendar_file(citizen: httpx.Client, demo: str) -> None:
    made = booked(citizen, demo)
    appointment_id = made["appointment_id"]
    response = citizen.get(f"/appointments/{appointment_id}/calendar.ics",
                           params={"token": made["token"]})
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/calendar")
    event = next(c for c in Calendar.from_ical(response.content).walk("VEVENT"))
    assert str(event["uid"]) == f"{appointment_id}@buergerbuero"
    assert event.decoded("dtstart") == datetime.fromisoformat(made["appointment"]["start"])
    refused(citizen.get(f"/appointments/{appointment_id}/calendar.ics"), 401, "token")


@pytest.mark.parametrize(("body", "status", "phrases"), [
    ({"start": "2030-01-07T09:00:00"}, 422, ["time zone"]),
    ({"start": "yesterday"}, 422, ["start"]),
    ({"start": None}, 422, ["start"]),
    ({"start": "2020-01-06T09:00:00+01:00"}, 422, ["passed"]),
    ({"start": "2099-01-05T09:00:00+01:00"}, 422, ["ahead"]),
    ({"language": "fr"}, 422, ["language"]),
    ({"email": "not an address"}, 422, ["e-mail"]),
    ({"email": "a@b.org\r\nBcc: x@y.org"}, 422, ["e-mail"]),
    ({"display_name": "E" * 61}, 422, ["display_name"]),
    ({"topic": "astrology"}, 422, ["topics"]),
    ({"unexpected": 1}, 422, ["unexpected"]),
])
def test_malformed_bookings_are_refused(citizen: httpx.Client, demo: str, body: dict[str, Any],
                                        status: int, phrases: list[str]) -> None:
    full = {"start": a_free_slot(citizen, demo), **body}
    refused(citizen.post(f"/departments/{demo}/appointments", json=full), status, *phrases)


def test_a_start_between_slots_is_422(citizen: httpx.Client, demo: str) -> None:
    start = datetime.fromisoformat(a_free_slot(citizen, demo)) + timedelta(minutes=7)
    body = refused(citizen.post(f"/departments/{demo}/appointments",
                                json={"start": start.isoformat()}), 422, "not the start")
    assert body["reason"] == "not_a_slot"


def test_an_oversized_booking_is_413(citizen: httpx.Client, demo: str) -> None:
    response = citizen.post(f"/departments/{demo}/appointments",
                            json={"start": a_free_slot(citizen, demo), "topic": "x" * 40_000})
    assert response.status_code == 413, response.text


def test_anonymous_departments_take_no_name_and_no_email(
        citizen: httpx.Client, departments: dict[str, str]) -> None:
    anonymous = departments["hiv-beratung"]
    for given in ({"display_name": "Erika"}, {"email": "erika@example.org"}):
        refused(citizen.post(f"/departments/{anonymous}/appointments",
                             json={"start": "2030-01-07T09:00:00+01:00", **given}),
                422, "anonymous")


# -- the appointment's own link -----------------------------------------------------------------

def test_an_appointment_needs_its_own_token(citizen: httpx.Client, demo: str) -> None:
    mine, theirs = booked(citizen, demo), booked(citizen, demo)
    path = f"/appointments/{mine['appointment_id']}"
    refused(citizen.get(path), 401, "token")
    refused(citizen.get(path, headers=bearer(theirs["token"])), 401, "not valid")
    refused(citizen.get(path, headers=bearer("forged.token.value")), 401, "not valid")
    for action in ("cancel", "check-in"):
        refused(citizen.post(f"{path}/{action}", headers=bearer(theirs["token"])), 401)
    refused(citizen.post(f"{path}/reschedule", json={"start": a_free_slot(citizen, demo)},
                         headers=bearer(theirs["token"])), 401)
    refused(citizen.get(f"/appointments/{uuid4()}", headers=bearer(mine["token"])), 401)


def test_cancel_and_reschedule(citizen: httpx.Client, demo: str) -> None:
    made = booked(citizen, demo)
    path, auth = f"/appointments/{made['appointment_id']}", bearer(made["token"])
    later = a_free_slot(citizen, demo)
    moved = citizen.post(f"{path}/reschedule", json={"start": later}, headers=auth)
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["start"]) == datetime.fromisoformat(later)
    refused(citizen.post(f"{path}/reschedule", json={"start": later}, headers=auth), 409,
            "already at this time")
    refused(citizen.post(f"{path}/reschedule", json={"start": "soon"}, headers=auth), 422)
    cancelled = citizen.post(f"{path}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    refused(citizen.post(f"{path}/cancel", headers=auth), 409, "cancelled")


def test_check_in_outside_the_window_says_when(citizen: httpx.Client, demo: str) -> None:
    made = booked(citizen, demo)
    body = refused(citizen.post(f"/appointments/{made['appointment_id']}/check-in",
                                headers=bearer(made["token"])), 409, "check-in is possible")
    opens = datetime.fromisoformat(body["opens_at"])
    assert opens == datetime.fromisoformat(made["appointment"]["start"]) - timedelta(minutes=10)


# -- staff ----------------------------------------------------------------------------------

def test_staff_routes_need_a_session_and_the_department(
        citizen: httpx.Client, demo: str, departments: dict[str, str], ben: StaffClient,
        system: SystemProcess) -> None:
    path = f"/offices/{demo}/appointments"
    refused(citizen.get(path), 401)
    refused(citizen.put(f"/offices/{demo}/schedule", json={"hours": []}), 401)
    refused(ben.get(f"/offices/{departments['hiv-beratung']}/appointments"), 403, "staff")
    refused(ben.http.put(f"/offices/{demo}/schedule", json={"hours": []},
                         headers={"X-CSRF-Token": ben.csrf}), 403, "admins")
    dora = StaffClient(f"{system.base}/api/v1", "dora")
    refused(dora.get(path), 403, "staff")
    refused(ben.http.post(f"{path}", json={"start": a_free_slot(citizen, demo)}), 403, "csrf")


def test_staff_see_book_and_cancel_with_a_reason(citizen: httpx.Client, demo: str,
                                                 anna: StaffClient, ben: StaffClient) -> None:
    start = a_free_slot(citizen, demo)
    phoned = ben.post(f"/offices/{demo}/appointments", {"start": start, "language": "de"})
    assert phoned.status_code == 201, phoned.text
    appointment_id = phoned.json()["appointment_id"]
    # The office's day, not the test machine's (UTC: a slot at 00:30 in Berlin is the day before)
    day = datetime.fromisoformat(start).astimezone(BERLIN).date().isoformat()
    listed = anna.get(f"/offices/{demo}/appointments?day={day}&span=week").json()
    mine = next(a for a in listed["appointments"] if a["appointment_id"] == appointment_id)
    assert mine["booked_by_staff"] == "ben" and mine["status"] == "booked"
    assert listed["days"] == 7 and len(listed["no_shows"]) == 7
    cancel = f"/offices/{demo}/appointments/{appointment_id}/cancel"
    refused(ben.post(cancel, {"reason": "because"}), 422, "reason")
    done = ben.post(cancel, {"reason": "staff_unavailable"})
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    refused(anna.get(f"/offices/{demo}/appointments?span=month"), 422, "span")


def test_admins_set_the_schedule(anna: StaffClient, departments: dict[str, str],
                                 citizen: httpx.Client) -> None:
    kataster = departments["kataster"]
    put = anna.http.put
    headers = {"X-CSRF-Token": anna.csrf}
    # Each refusal names the field at fault, for the office page to point to it.
    assert refused(put(f"/offices/{kataster}/schedule",
                       json={"hours": [{"weekday": 0, "opens": "12:00", "closes": "08:00"}]},
                       headers=headers), 422, "end must come after")["field"] == "hours"
    assert refused(put(f"/offices/{kataster}/schedule", json={"hours": [], "state": "XX"},
                       headers=headers), 422, "federal state")["field"] == "state"
    assert refused(put(f"/offices/{kataster}/schedule", json={"hours": [], "capacity": 0},
                       headers=headers), 422, "places")["field"] == "capacity"
    assert refused(put(f"/offices/{kataster}/schedule",
                       json={"hours": [], "closed_days": ["soon"]},
                       headers=headers), 422, "dates")["field"] == "closed_days"
    hours = [{"weekday": d, "opens": "08:00", "closes": "10:00"} for d in range(5)]
    done = put(f"/offices/{kataster}/schedule", json={"hours": hours, "capacity": 3},
               headers=headers)
    assert done.status_code == 200, done.text
    assert anna.get(f"/offices/{kataster}/schedule").json()["capacity"] == 3
    path, params = slots_query(kataster, 7, hours=24 * 7)
    slots = citizen.get(path, params=params).json()["slots"]
    assert slots and all(s["remaining"] == 3 for s in slots)


def test_the_confirmation_is_mailed_from_the_outbox(citizen: httpx.Client, demo: str,
                                                   system: SystemProcess) -> None:
    """Booked with an e-mail address: the embedded default writes the mail as an .eml."""
    made = booked(citizen, demo, display_name="Erika Mustermann", email="erika@example.org")
    mail_dir = system.data_dir / "mail"
    mails = eventually(lambda: sorted(mail_dir.glob(f"{made['appointment_id']}*.eml")))
    text = mails[0].read_text()
    assert "erika@example.org" in text and "Demo-Sprechstunde" in text
    assert f"/appointments/{made['appointment_id']}#token=" in text


def test_a_flood_of_bookings_from_one_connection_is_429(system_factory: Any) -> None:
    """At most ``bookings_per_client_per_hour`` from one address; staff are not counted."""
    limited = system_factory(env={"BB_BOOKINGS_PER_CLIENT_PER_HOUR": "3"})
    with limited.client() as citizen:
        demo = department_of(citizen, "demo")
        path, params = slots_query(demo, 2, hours=4)
        eventually(lambda: citizen.get(path, params=params).status_code == 200, timeout=30)
        starts = [s["start"] for s in citizen.get(path, params=params).json()["slots"]]
        answers = [citizen.post(f"/departments/{demo}/appointments", json={"start": start})
                   for start in starts[:4]]
        assert [a.status_code for a in answers] == [201, 201, 201, 429]
        body = refused(answers[3], 429, "try again later")
        assert body["reason"] == "too_many_bookings" and body["retry_after_seconds"] > 0
        assert int(answers[3].headers["Retry-After"]) == body["retry_after_seconds"]
        anna = StaffClient(f"{limited.base}/api/v1", "anna")
        phoned = anna.post(f"/offices/{demo}/appointments", {"start": starts[5]})
        assert phoned.status_code == 201, phoned.text


def department_of(citizen: httpx.Client, slug: str) -> str:
    return str(eventually(lambda: next((d["id"] for d in citizen.get("/departments").json()
                                        if d["slug"] == slug), None), timeout=20))
