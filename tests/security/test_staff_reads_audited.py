"""A staff member's read of a consultation is on the audit record, like a DPO's read of the
log, and the DPO can ask "who looked at consultation X" (the newest first)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import StaffClient, department_id, eventually, knock

FAST = {"BB_AUDIT_CHECKPOINT_SECONDS": "1", "BB_AUDIT_GAP_CHECK_SECONDS": "1"}


def admitted_consultation(base: str, anna: StaffClient, dept: str) -> str:
    with httpx.Client(base_url=f"{base}/api/v1", timeout=10) as citizen:
        ticket = knock(citizen, dept, display_name="Erika Mustermann", language="de")
        tid = ticket["ticket_id"]
        eventually(lambda: anna.post(f"/tickets/{tid}/admit").status_code == 200)
        auth = {"Authorization": f"Bearer {ticket['token']}"}
        return str(eventually(
            lambda: citizen.get(f"/tickets/{tid}", headers=auth).json().get("consultation_id")))


def who_looked(dora: StaffClient, consultation: str, at_least: int) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        response = dora.get(f"/audit/views?consultation_id={consultation}")
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found if len(found) >= at_least else None

    return list(eventually(enough, timeout=30, interval=0.5))


def test_staff_reads_are_recorded_and_the_dpo_sees_who_looked(system_factory) -> None:  # type: ignore[no-untyped-def]
    system = system_factory(env=FAST)
    api = f"{system.base}/api/v1"
    anna, ben, dora = (StaffClient(api, name) for name in ("anna", "ben", "dora"))
    with system.client() as client:
        dept = department_id(client, "demo")
    consultation = admitted_consultation(system.base, anna, dept)
    other = admitted_consultation(system.base, anna, dept)

    def read(staff: StaffClient, which: str) -> None:
        response = eventually(lambda: (r := staff.get(f"/consultations/{which}"))
                              .status_code == 200 and r)
        assert response.json()["id"] == which

    read(anna, consultation)  # the one who admitted
    read(anna, other)
    read(ben, consultation)   # on the department's staff, never in this consultation
    # the DPO's own look at the consultation's timeline is a read of it too
    eventually(lambda: dora.get(f"/audit/consultations/{consultation}").status_code == 200,
               timeout=30)

    views = who_looked(dora, consultation, at_least=3)
    kinds = [(v["type"], v["staff_id"]) for v in views]
    assert kinds == [("AuditViewed", "dora"), ("ConsultationViewed", "ben"),
                     ("ConsultationViewed", "anna")], kinds
    times = [v["occurred_at"] for v in views]
    assert times == sorted(times, reverse=True)  # the newest first
    staff_read = views[1]
    assert staff_read["consultation_id"] == consultation and staff_read["read"] == "details"
    assert staff_read["service"] == "rooms"
    assert "Erika" not in str(views)  # ids only

    # the other consultation's read is not among this one's, but in the whole list
    assert all(v.get("consultation_id") in (None, consultation) for v in views)
    everything = dora.get("/audit/views?limit=1000").json()
    assert any(v["type"] == "ConsultationViewed" and v["consultation_id"] == other
               for v in everything)
    assert [v["occurred_at"] for v in everything] == sorted(
        (v["occurred_at"] for v in everything), reverse=True)

    # a read is not a step of the consultation: its timeline and staff are unchanged
    timeline = dora.get(f"/audit/consultations/{consultation}").json()
    assert "ConsultationViewed" not in {s["event"] for s in timeline["steps"]}
    assert "ben" not in {s.get("staff_id") for s in timeline["steps"]}

    assert dora.get("/audit/views?consultation_id=not-an-id").status_code == 422
    assert ben.get(f"/audit/views?consultation_id={consultation}").status_code == 403
