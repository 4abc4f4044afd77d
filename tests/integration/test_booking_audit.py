"""The DPO's timeline of a consultation that began with an appointment shows the booking
("booked for 10:15") and the check-in ("checked in 10:09"), on a real ``buergerbuero up``:
booking -> NATS -> audit, and the queue's Knocked naming the appointment it knocked with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import SystemProcess
from tests.helpers import StaffClient, eventually, open_department

DEMO_HOURS = [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]
PLANTED_NAME = "Wilhelmine Zettelkasten"
PLANTED_EMAIL = "wilhelmine@example.org"


def test_a_consultation_admitted_from_an_appointment_shows_booking_and_check_in(
    system: SystemProcess,
) -> None:
    citizen = system.client()
    demo = open_department(citizen, "demo")
    anna = StaffClient(f"{system.base}/api/v1", "anna")
    # Check-in opens 20 minutes before: the next slot (at most 15 minutes away) is open now.
    terms = {"hours": DEMO_HOURS, "capacity": 2, "notice_minutes": 0, "days_ahead": 14,
             "state": None, "check_in_before_minutes": 20}
    eventually(lambda: anna.http.put(f"/offices/{demo}/schedule", json=terms,
                                     headers={"X-CSRF-Token": anna.csrf}).status_code == 200,
               timeout=30)
    now = datetime.now(UTC)
    params = {"from": now.isoformat(), "to": (now + timedelta(minutes=30)).isoformat()}
    start = citizen.get(f"/departments/{demo}/slots", params=params).json()["slots"][0]["start"]
    made = citizen.post(f"/departments/{demo}/appointments", json={
        "start": start, "display_name": PLANTED_NAME, "email": PLANTED_EMAIL})
    assert made.status_code == 201, made.text
    appointment_id = made.json()["appointment_id"]
    checked_in = citizen.post(f"/appointments/{appointment_id}/check-in",
                              headers={"Authorization": f"Bearer {made.json()['token']}"})
    assert checked_in.status_code == 200, checked_in.text
    knocked = citizen.post(
        f"/departments/{demo}/knock", json={"language": "de"},
        headers={"Authorization": f"Bearer {checked_in.json()['knock_token']}"})
    assert knocked.status_code == 201, knocked.text
    ticket_id = knocked.json()["ticket_id"]
    admitted = anna.post(f"/departments/{demo}/queue/admit-next")
    assert admitted.status_code == 200, admitted.text
    assert admitted.json()["ticket_id"] == ticket_id

    dora = StaffClient(f"{system.base}/api/v1", "dora")

    def consultation_with_appointment() -> dict[str, Any] | None:
        # The ticket leads to its consultation once rooms has opened it.
        consultation = dora.get(f"/audit/search?id={ticket_id}").json().get("consultation_id")
        if consultation is None:
            return None
        view = dora.get(f"/audit/consultations/{consultation}").json()
        events = {s["event"] for s in view["steps"]}
        wanted = {"AppointmentBooked", "AppointmentCheckedIn", "ConsultationOpened"}
        return dict(view) if wanted <= events else None

    view = eventually(consultation_with_appointment, timeout=30)
    steps = view["steps"]
    booked = next(s for s in steps if s["event"] == "AppointmentBooked")
    checked = next(s for s in steps if s["event"] == "AppointmentCheckedIn")
    knock = next(s for s in steps if s["event"] == "Knocked")
    assert booked["appointment_id"] == checked["appointment_id"] == appointment_id
    assert knock["appointment_id"] == appointment_id and knock["priority"] == "appointment"
    assert datetime.fromisoformat(booked["slot_start"]) == datetime.fromisoformat(start)
    assert datetime.fromisoformat(checked["slot_start"]) == datetime.fromisoformat(start)
    assert checked["checked_in_at"] and booked["booked_by"] == "citizen"
    # In the order they happened: booked, checked in, knocked, then the consultation.
    order = [s["event"] for s in steps]
    assert order.index("AppointmentBooked") < order.index("AppointmentCheckedIn") \
        < order.index("Knocked") < order.index("ConsultationOpened")
    # Each appointment event once (the Knocked also names the appointment).
    assert sum(1 for s in steps if s["event"] == "AppointmentBooked") == 1
    assert PLANTED_NAME not in str(view) and PLANTED_EMAIL not in str(view)
