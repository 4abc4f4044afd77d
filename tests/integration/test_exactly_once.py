"""Exactly once at the consumers, not only on the stream.

JetStream drops a re-sent event only within its duplicate window. A relay that re-sends
after it (here: every confirmed position lost, the window shortened to a second) puts
each event on the stream a second time, under a new stream sequence; queue, rooms, media
and audit must still apply each event once (services/common/tracked.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import StorageType, StreamConfig

from services.common.bus import STREAM_SUBJECTS
from tests.helpers import StaffClient, eventually, knock, open_department
from tests.integration.projections import assert_each_event_applied_once
from tests.integration.stream import count_of, duplicates, stream_messages

pytestmark = pytest.mark.timeout(180)

DUPLICATE_WINDOW = 1.0  # seconds; the services' own streams keep it for two minutes


async def _create_stream(url: str) -> None:
    """The stream before any service starts: a service keeps an existing stream's settings."""
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(StreamConfig(
            name="BB", subjects=STREAM_SUBJECTS, storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW,
        ))
    finally:
        await nc.close()


def _stored_events(data_dir: Path, service: str) -> int:
    with sqlite3.connect(f"file:{data_dir / f'{service}.sqlite'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])


def _forget_relay_positions(data_dir: Path) -> None:
    for store in data_dir.glob("*.sqlite"):
        with sqlite3.connect(store) as db:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'tracking'").fetchone():
                db.execute("DELETE FROM tracking WHERE application_name LIKE 'outbox:%'")


def test_events_resent_after_the_duplicate_window_are_applied_once(
    system_factory, nats_server, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(_create_stream(nats_server.url))
    data_dir = tmp_path / "data"
    system = system_factory(data_dir=data_dir)
    citizen = system.client()
    dept = open_department(citizen, "demo")
    tickets = [knock(citizen, dept, display_name=f"Bürgerin {n}") for n in range(3)]
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    for ticket in tickets[:2]:
        assert staff.post(f"/tickets/{ticket['ticket_id']}/admit").status_code == 200
    eventually(lambda: count_of(nats_server.url, "bb.rooms.consultation_opened") == 2)
    opened = [e for s, e, _ in stream_messages(nats_server.url)
              if s == "bb.rooms.consultation_opened"]
    # An ended consultation counts into the door's expected wait: twice would be wrong.
    ended = staff.post(f"/consultations/{opened[0]['consultation_id']}/end")
    assert ended.status_code == 200, ended.text
    eventually(lambda: count_of(nats_server.url, "bb.rooms.consultation_ended") == 1)
    assert_each_event_applied_once(nats_server.url, data_dir)
    before = {service: _stored_events(data_dir, service) for service in ("queue", "rooms")}
    published = {e["event_id"] for s, e, _ in stream_messages(nats_server.url)
                 if s.startswith(("bb.queue.", "bb.rooms."))}
    system.kill()

    time.sleep(DUPLICATE_WINDOW * 1.5)  # the stream forgets the ids it saw
    _forget_relay_positions(data_dir)  # every relay re-sends its whole log
    restarted = system_factory(data_dir=data_dir)

    eventually(lambda: published <= set(duplicates(nats_server.url)), 30)
    assert_each_event_applied_once(nats_server.url, data_dir)
    assert {service: _stored_events(data_dir, service) for service in before} == before
    waiting = StaffClient(f"{restarted.base}/api/v1", "anna").get(f"/departments/{dept}/queue")
    assert [w["ticket_id"] for w in waiting.json()["waiting"]] == [tickets[2]["ticket_id"]]
