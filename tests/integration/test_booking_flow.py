"""Booking end to end, on a real ``buergerbuero up`` over NATS: an appointment is let in
first at its time, and no slot is ever given to more people than its places, however many
book at once and however many booking replicas there are (SQLite, and PostgreSQL with two
``buergerbuero serve booking`` processes on one schema)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SystemProcess
from tests.helpers import StaffClient, eventually, knock, open_department

CLIENTS = 50
DEMO_HOURS = [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]


def demo_schedule_known(citizen: httpx.Client, demo: str) -> None:
    now = datetime.now(UTC)
    params = {"from": now.isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    eventually(lambda: citizen.get(f"/departments/{demo}/slots", params=params).status_code
               == 200, timeout=30)


def slot_days_ahead(citizen: httpx.Client, demo: str, days: int) -> str:
    start = datetime.now(UTC) + timedelta(days=days)
    params = {"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat()}
    slots = citizen.get(f"/departments/{demo}/slots", params=params).json()["slots"]
    assert slots[0]["remaining"] == 2
    return str(slots[0]["start"])


def race(bases: list[str], demo: str, start: str) -> list[httpx.Response]:
    """CLIENTS citizens book ``start`` at the same moment, spread over ``bases``."""
    barrier = threading.Barrier(CLIENTS)

    def book(index: int) -> httpx.Response:
        with httpx.Client(base_url=f"{bases[index % len(bases)]}/api/v1", timeout=60) as client:
            barrier.wait()
            return client.post(f"/departments/{demo}/appointments",
                               json={"start": start, "language": "de"})

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(book, range(CLIENTS)))


def assert_two_places_given(answers: list[httpx.Response], start: str) -> None:
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 2, 409: CLIENTS - 2}, [a.text for a in answers if a.status_code
                                                   not in (201, 409)][:3]
    booked_ids = {a.json()["appointment_id"] for a in answers if a.status_code == 201}
    assert len(booked_ids) == 2
    for refused in (a.json() for a in answers if a.status_code == 409):
        assert "fully booked" in refused["detail"]
        nearest = [datetime.fromisoformat(s["start"]) for s in refused["nearest"]]
        assert len(nearest) == 3 and datetime.fromisoformat(start) not in nearest
        assert all(abs(n - datetime.fromisoformat(start)) <= timedelta(minutes=30)
                   for n in nearest)


def test_fifty_citizens_race_for_two_places(system: SystemProcess) -> None:
    citizen = system.client()
    demo = open_department(citizen, "demo")
    demo_schedule_known(citizen, demo)
    start = slot_days_ahead(citizen, demo, 3)
    assert_two_places_given(race([system.base], demo, start), start)
    params = {"from": start, "to": (datetime.fromisoformat(start)
                                   + timedelta(minutes=15)).isoformat()}
    assert citizen.get(f"/departments/{demo}/slots", params=params).json()["slots"] == []


@pytest.mark.postgres
def test_two_booking_replicas_on_postgresql_give_two_places(
        system_factory: Any, postgres_url: str, tmp_path: Path) -> None:
    env = {"BB_DATABASE_URL": postgres_url}
    system = system_factory(env=env)
    citizen = system.client()
    demo = open_department(citizen, "demo")
    demo_schedule_known(citizen, demo)
    replica = system_factory(env=env, args=["serve", "booking"], data_dir=tmp_path / "replica")
    demo_schedule_known(replica.client(), demo)
    start = slot_days_ahead(citizen, demo, 4)
    answers = race([system.base, replica.base], demo, start)
    assert_two_places_given(answers, start)
    by_replica = Counter(a.url.port for a in answers if a.status_code == 409)
    assert len(by_replica) == 2  # both replicas refused some: they really raced


def test_an_appointment_checking_in_goes_before_earlier_walk_ins(system: SystemProcess) -> None:
    citizen = system.client()
    demo = open_department(citizen, "demo")
    demo_schedule_known(citizen, demo)
    anna = StaffClient(f"{system.base}/api/v1", "anna")
    # Check-in opens 20 minutes before: the next slot (at most 15 minutes away) is open now.
    terms = {"hours": DEMO_HOURS, "capacity": 2, "notice_minutes": 0, "days_ahead": 14,
             "state": None, "check_in_before_minutes": 20}
    set_schedule = anna.http.put(f"/offices/{demo}/schedule", json=terms,
                                 headers={"X-CSRF-Token": anna.csrf})
    assert set_schedule.status_code == 200, set_schedule.text
    now = datetime.now(UTC)
    params = {"from": now.isoformat(), "to": (now + timedelta(minutes=30)).isoformat()}
    start = citizen.get(f"/departments/{demo}/slots", params=params).json()["slots"][0]["start"]
    made = citizen.post(f"/departments/{demo}/appointments", json={"start": start})
    assert made.status_code == 201, made.text

    walk_ins = [knock(citizen, demo, display_name=name) for name in ("Erste", "Zweite")]
    auth = {"Authorization": f"Bearer {made.json()['token']}"}
    checked_in = citizen.post(f"/appointments/{made.json()['appointment_id']}/check-in",
                              headers=auth)
    assert checked_in.status_code == 200, checked_in.text
    knock_token = checked_in.json()["knock_token"]
    elsewhere = next(d["id"] for d in citizen.get("/departments").json()
                     if d["slug"] == "einbuergerung")
    wrong_door = citizen.post(f"/departments/{elsewhere}/knock", json={"language": "de"},
                              headers={"Authorization": f"Bearer {knock_token}"})
    assert wrong_door.status_code == 403, wrong_door.text
    forged = citizen.post(f"/departments/{demo}/knock", json={"language": "de"},
                          headers={"Authorization": "Bearer not.a.token"})
    assert forged.status_code == 401, forged.text
    knocked = citizen.post(checked_in.json()["knock"].removeprefix("/api/v1"),
                           json={"language": "de"},
                           headers={"Authorization": f"Bearer {knock_token}"})
    assert knocked.status_code == 201, knocked.text
    ticket_id = knocked.json()["ticket_id"]

    line = anna.get(f"/departments/{demo}/queue").json()["waiting"]
    mine = next(e for e in line if e["ticket_id"] == ticket_id)
    assert mine["priority"] == "appointment"
    assert datetime.fromisoformat(mine["appointment_at"]) == datetime.fromisoformat(start)
    admitted = anna.post(f"/departments/{demo}/queue/admit-next")
    assert admitted.status_code == 200, admitted.text
    assert admitted.json()["ticket_id"] == ticket_id
    assert all(w["ticket_id"] != ticket_id for w in walk_ins)
    assert {e["ticket_id"] for e in anna.get(f"/departments/{demo}/queue").json()["waiting"]} \
        >= {w["ticket_id"] for w in walk_ins}
