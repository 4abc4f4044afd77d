"""Whole consultations through the real services' HTTP APIs, and reading back the log."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import StaffClient, eventually
from tests.integration.stream import stream_messages

NOT_LOGGED = {"AuditCheckpointSigned"}
# What a citizen may type: a name and, say, an e-mail address in the name field (topics are
# chosen from the department's list, so there is no free text to plant there).
PLANTED = ("Zacharias Quellenhuber", "z.quellenhuber@example.org", "Quellenhuber")


class Visits:
    """Drives visits against a queue base URL and a rooms base URL (the same for ``up``)."""

    def __init__(self, queue_base: str, rooms_base: str, staff: str = "anna") -> None:
        self.queue = f"{queue_base}/api/v1"
        self.rooms = f"{rooms_base}/api/v1"
        self.staff_name = staff

    def staff(self) -> StaffClient:
        return StaffClient(self.rooms, self.staff_name)

    def open_office(self, slug: str) -> str:
        staff = self.staff()
        with httpx.Client(timeout=10) as citizen:
            dept = next(d["id"] for d in eventually(
                lambda: citizen.get(f"{self.queue}/departments").json())
                if d["slug"] == slug)
            if slug != "demo":
                eventually(lambda: staff.post(f"/offices/{dept}/open").status_code == 200)
            eventually(lambda: citizen.get(f"{self.queue}/departments/{dept}").json()["open"])
        return str(dept)

    def consultation(self, dept: str, n: int, interpreter: bool = False) -> str:
        """Knock (with planted personal data), admit, join, maybe interpret, leave, end."""
        staff = self.staff()
        csrf = {"X-CSRF-Token": staff.csrf}
        with httpx.Client(timeout=15) as citizen:
            body = {"language": "de", "display_name": f"{PLANTED[0]} {n} {PLANTED[1]}"}
            ticket = eventually(lambda: _ok(citizen.post(
                f"{self.queue}/departments/{dept}/knock", json=body)), timeout=30)
            tid = ticket["ticket_id"]
            auth = {"Authorization": f"Bearer {ticket['token']}"}
            eventually(lambda: _ok(staff.http.post(f"{self.queue}/tickets/{tid}/admit",
                                                   headers=csrf)), timeout=30)
            consultation = eventually(lambda: citizen.get(
                f"{self.queue}/tickets/{tid}", headers=auth).json()["consultation_id"], 30)
            base = f"{self.rooms}/consultations/{consultation}"
            joined = eventually(lambda: _ok(citizen.post(f"{base}/join", headers=auth)), 30)
            eventually(lambda: _ok(staff.http.post(f"{base}/join", headers=csrf)), 30)
            if interpreter:
                invitation = _ok(staff.http.post(f"{base}/invitations", headers=csrf))
                _ok(citizen.post(f"{base}/interpreter-join",
                                 headers={"Authorization": f"Bearer {invitation['token']}"}))
            leave = {"Authorization": f"Bearer {joined['participant_token']}"}
            eventually(lambda: citizen.post(f"{base}/leave", headers=leave).status_code == 204,
                       30)
            eventually(lambda: _ok(staff.http.post(f"{base}/end", headers=csrf)), 30)
        staff.http.close()
        return str(consultation)


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise AssertionError(f"{response.status_code}: {response.text}")
    return response.json() if response.content else True


def published_event_ids(nats_url: str) -> list[str]:
    """Every event on the stream that belongs in the log."""
    return [event["event_id"] for _, event, _ in stream_messages(nats_url)
            if event.get("type") not in NOT_LOGGED]


def logged_events(audit_data_dir: Path) -> list[dict[str, Any]]:
    """The log's records, read straight from its SQLite file, in log order."""
    with sqlite3.connect(audit_data_dir / "audit-log.sqlite", timeout=10) as db:
        rows = db.execute("SELECT idx, event_id, data FROM audit_records ORDER BY idx").fetchall()
    events = []
    for index, event_id, data in rows:
        event = json.loads(data)
        assert event["event_id"] == event_id
        events.append({"index": index, **event})
    assert [e["index"] for e in events] == list(range(len(events)))
    return events


def assert_exactly_once(nats_url: str, audit_data_dir: Path, timeout: float = 40) -> int:
    """Wait until every published event is in the log; each must be there once."""
    def complete() -> bool:
        missing = set(published_event_ids(nats_url)) - {
            e["event_id"] for e in logged_events(audit_data_dir)}
        return not missing or (_ for _ in ()).throw(AssertionError(f"missing {len(missing)}"))

    eventually(complete, timeout=timeout, interval=0.5)
    logged = [e["event_id"] for e in logged_events(audit_data_dir)]
    assert len(logged) == len(set(logged)), "an event is in the log twice"
    published = set(published_event_ids(nats_url))
    assert published <= set(logged)
    return len(published)
