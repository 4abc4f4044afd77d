"""An event that arrives before the one it depends on waits for it, on a real NATS.

Queue replicas share one durable consumer: a department's opening hours may reach a
replica while another one is still registering the department. The hours are deferred
(a delayed redelivery, logged as ``event_deferred``) and applied once the registration
is there: exactly once, and without an error in the log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Tracking
from structlog.testing import capture_logs

from services.common.bus import Bus
from services.common.contracts import IntegrationEvent
from services.common.contracts import rooms as rooms_events
from services.common.eventstore import store_env
from services.common.natsserver import EmbeddedNats
from services.common.settings import Settings
from services.queue.application import Queue, UnknownDepartment
from services.rooms.application import Rooms
from services.rooms.application import to_contract as rooms_contract
from tests.unit.support import CID, seeded

pytestmark = pytest.mark.timeout(60)

DURABLE = "queue"


def _department_events() -> tuple[UUID, rooms_events.DepartmentRegistered, IntegrationEvent]:
    """What rooms publishes when it registers a department: the registration, the hours."""
    rooms = Rooms()
    demo = seeded("demo")
    department_id = rooms.register_department("demo", demo["profile"], demo["weekly"], [], CID)
    registered, hours, *_ = (
        rooms_contract(rooms.mapper.to_domain_event(n), n.id)
        for n in rooms.notification_log.select(start=1, limit=10)
    )
    assert isinstance(registered, rooms_events.DepartmentRegistered)
    assert isinstance(hours, rooms_events.OpeningHoursSet)
    return department_id, registered, hours


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    bus = Bus(nats_server.url, name="queue")
    await bus.connect()
    yield bus
    await bus.close()


def _consume_into(bus: Bus, queue: Queue) -> None:
    """As the queue's ``IntoApplication`` reaction does (services/common/reactions.py)."""

    async def handle(event: IntegrationEvent, sequence: int) -> None:
        await asyncio.to_thread(queue.handle_upstream, event, Tracking(f"BB/{DURABLE}", sequence))

    bus.consume(DURABLE, ["bb.rooms.>"], handle)


async def _until(check: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _has_hours(queue: Queue, department_id: UUID) -> bool:
    try:
        return bool(queue.door(department_id).weekly)
    except UnknownDepartment:
        return False


def _lines(logs: list[dict[str, Any]], name: str, event: IntegrationEvent) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name and e.get("event_id") == str(event.event_id)]


async def test_an_event_before_its_precondition_is_deferred_then_applied_once(
    bus: Bus, tmp_path: Path
) -> None:
    department_id, registered, hours = _department_events()
    queue = Queue(store_env(Settings(data_dir=tmp_path), "queue"))
    with capture_logs() as logs:
        await bus.publish([hours])  # the hours first: their department is not known yet
        _consume_into(bus, queue)
        await _until(lambda: _lines(logs, "event_deferred", hours))

        await bus.publish([registered])
        await _until(lambda: _has_hours(queue, department_id))
        await asyncio.sleep(0.5)  # time for a second, wrong application to show

    deferred = _lines(logs, "event_deferred", hours)
    assert deferred[0]["log_level"] == "info" and deferred[0]["attempt"] == 1
    assert deferred[0]["type"] == "OpeningHoursSet" and "exc_info" not in deferred[0]
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    # Applied exactly once: one door, one change of hours, and the hours' delivery tracked.
    topics = [n.topic for n in queue.notification_log.select(start=1, limit=100)]
    assert sum(t.endswith("Door.HoursSet") for t in topics) == 1, topics
    assert queue.door(department_id).weekly
    assert queue.was_processed(Tracking(f"BB/{DURABLE}", 1))
    info = await bus.js.consumer_info(bus.stream, DURABLE)
    assert info.num_pending == 0 and info.num_ack_pending == 0
    queue.close()


async def test_an_event_deferred_too_often_is_logged_as_a_failure(
    bus: Bus, tmp_path: Path
) -> None:
    _, _, hours = _department_events()
    queue = Queue(store_env(Settings(data_dir=tmp_path), "queue"))
    bus.defer_limit = 2
    with capture_logs() as logs:
        await bus.publish([hours])  # its department never comes
        _consume_into(bus, queue)
        await _until(lambda: _lines(logs, "event_handling_failed", hours))

    deferred = _lines(logs, "event_deferred", hours)
    failed = _lines(logs, "event_handling_failed", hours)[0]
    assert [e["attempt"] for e in deferred] == [1]
    assert failed["log_level"] == "error" and failed["attempt"] == 2
    assert "not registered yet" in str(failed["exc_info"])  # with its traceback
    queue.close()
