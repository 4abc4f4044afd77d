"""Helpers for the unit tests: in-memory applications and hand-made integration events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Tracking

from services.common.contracts import IntegrationEvent, event_id_for
from services.queue.application import Queue
from services.rooms import seed
from services.rooms.application import Rooms
from services.rooms.application import to_contract as rooms_contract

BERLIN = ZoneInfo("Europe/Berlin")
CID = "test-correlation"


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in Berlin, as an aware datetime in UTC (as services see it)."""
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def seeded(slug: str) -> dict[str, Any]:
    for department in seed.DEPARTMENTS:
        if department["slug"] == slug:
            return department
    raise KeyError(slug)


def contract(cls: type[IntegrationEvent], aggregate_id: UUID, version: int,
             occurred_at: datetime, position: int | None = None,
             **fields: Any) -> IntegrationEvent:
    """An integration event as a publisher would derive it from its stored event."""
    return cls(
        event_id=event_id_for(aggregate_id, version),
        occurred_at=occurred_at,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        position=position if position is not None else version,
        correlation_id=CID,
        **fields,
    )


class Upstream:
    """Rooms feeding the queue in memory, the way the bus does: contract + Tracking."""

    tracking_name = "BB/queue"

    def __init__(self) -> None:
        self.rooms = Rooms()
        self.queue = Queue()
        self.position = 0
        self.ids: dict[str, UUID] = {}
        self.delivered: list[tuple[IntegrationEvent, Tracking]] = []

    def register(self, slug: str, weekly: list[dict[str, Any]] | None = None,
                 closed_days: list[str] | None = None) -> UUID:
        department = seeded(slug)
        department_id = self.rooms.register_department(
            slug, department["profile"], department["weekly"] if weekly is None else weekly,
            closed_days or [], CID)
        for username, _, _, memberships in seed.STAFF:
            if slug in memberships:
                self.rooms.assign_staff(department_id, username, memberships[slug], CID)
        self.ids[slug] = department_id
        return department_id

    def clock(self, at: datetime) -> None:
        self.rooms.follow_schedules(at, CID)

    def pump(self) -> list[tuple[IntegrationEvent, Tracking]]:
        """Deliver every rooms event stored since the last pump to the queue."""
        delivered = []
        for notification in self.rooms.notification_log.select(start=self.position + 1,
                                                                limit=1000):
            event = rooms_contract(self.rooms.mapper.to_domain_event(notification),
                                   notification.id)
            self.position = notification.id
            if event is None:
                continue
            tracking = Tracking(self.tracking_name, notification.id)
            assert self.queue.handle_upstream(event, tracking)
            delivered.append((event, tracking))
        self.delivered.extend(delivered)
        return delivered


def notification_count(app: Any) -> int:
    return int(app.recorder.max_notification_id() or 0)
