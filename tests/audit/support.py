"""Shared helpers for the audit tests: a log on a temporary SQLite store, made-up events."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.audit.canonical import LogEntry
from services.audit.database import Database
from services.audit.signing import Checkpointer, load_signer
from services.audit.store import LogStore
from services.common.contracts import IntegrationEvent
from services.common.contracts.queue import Admitted, Knocked
from services.common.eventstore import store_env
from services.common.settings import Settings

DEPARTMENT = uuid.UUID("33ee68e0-b68e-5a79-82fe-d256de0a16a8")


def knocked(position: int, at: datetime | None = None, service: str = "queue") -> Knocked:
    return Knocked(
        event_id=uuid.uuid4(), occurred_at=at or datetime.now(UTC), aggregate_id=uuid.uuid4(),
        aggregate_version=1, position=position, correlation_id="c", service=service,
        ticket_id=uuid.uuid4(), department_id=DEPARTMENT, priority="walk_in", number=position)


def admitted(of: Knocked, position: int, waited: float = 30.0) -> Admitted:
    return Admitted(
        event_id=uuid.uuid4(), occurred_at=of.occurred_at + timedelta(seconds=waited),
        aggregate_id=of.aggregate_id, aggregate_version=2, position=position,
        correlation_id="c", ticket_id=of.ticket_id, department_id=DEPARTMENT, staff_id="anna",
        waited_seconds=waited)


def entries(events: Sequence[IntegrationEvent]) -> list[LogEntry]:
    return [LogEntry.of(e) for e in events]


class ScratchLog:
    """A log store with its checkpointer in ``data_dir`` (SQLite, or PostgreSQL by URL)."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.settings = Settings(data_dir=data_dir, database_url=database_url)
        self.db = Database(store_env(self.settings, "audit"))
        self.store = LogStore(self.db)
        self.checkpointer = Checkpointer(self.store, load_signer(self.settings))
        self.key = self.checkpointer.verifier

    def fill(self, count: int, sign_every: int = 0, start_position: int = 1) -> list[Knocked]:
        events = [knocked(start_position + i) for i in range(count)]
        step = sign_every or count
        for first in range(0, count, step):
            self.store.append(entries(events[first:first + step]))
            self.checkpointer.sign_if_grown()
        return events

    def reopen(self) -> LogStore:
        self.db.close()
        self.db = Database(store_env(self.settings, "audit"))
        self.store = LogStore(self.db)
        self.checkpointer = Checkpointer(self.store, self.checkpointer.signer)
        return self.store

    def execute(self, query: str, args: tuple[object, ...] = ()) -> None:
        """Write to the store behind the log's back, as someone with database access could."""
        with self.db.transaction() as cur:
            cur.execute(query, args)
