"""Event stores: SQLite files by default, PostgreSQL (one schema per service) by setting.

Every service application is an eventsourcing ``EventSourcedProjection``: its
own commands save aggregates as usual, and the upstream events it consumes
are processed with a ``Tracking`` record written in the same transaction as
its new events, so a redelivered message changes nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from functools import singledispatchmethod
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Recording, Tracking
from eventsourcing.projection import EventSourcedProjection

from services.common.contracts import IntegrationEvent
from services.common.errors import RetryLater
from services.common.settings import Settings

CommitListener = Callable[[list[Recording[UUID]]], None]


def store_env(settings: Settings, service: str) -> dict[str, str]:
    """The eventsourcing environment for one service's own store."""
    common = {"SINGLE_ROW_TRACKING": "n", "CREATE_TABLE": "y"}
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            **common,
            "PERSISTENCE_MODULE": "services.common.sqlite_shared:Factory",
            "SQLITE_DBNAME": str(settings.data_dir / f"{service}.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    url = urlparse(settings.database_url)
    if url.scheme not in ("postgres", "postgresql"):
        raise ValueError("BB_DATABASE_URL must be a postgresql:// URL")
    env = {
        **common,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_SCHEMA": service,
        # Connections kept open (eventsourcing opens them all at start) and added under
        # load: 10 kept per store made one `up` hold 60 of PostgreSQL's default 100, and a
        # second replica or system was refused ('too many clients').
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "18",
    }
    ensure_postgres_schema(env)
    return env


def connect_postgres(env: dict[str, str]) -> Any:
    import psycopg

    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=int(env["POSTGRES_PORT"]),
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        autocommit=True,
    )


def ensure_postgres_schema(env: dict[str, str]) -> None:
    import psycopg
    from psycopg import sql

    # Replicas starting together race here: IF NOT EXISTS does not stop the loser from
    # failing on the catalogue's unique index (measured: 17 of 20 concurrent pairs).
    created_meanwhile = (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema)
    with connect_postgres(env) as conn, contextlib.suppress(*created_meanwhile):
        schema = sql.Identifier(env["POSTGRES_SCHEMA"])
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))


@contextlib.contextmanager
def setup_lock(env: dict[str, str], tables: str = "events") -> Iterator[None]:
    """Hold a PostgreSQL advisory lock of the schema while its tables are created.

    eventsourcing creates its tables with CREATE TABLE IF NOT EXISTS, which does not keep
    two replicas starting at the same moment on a fresh database from failing one of them
    on the catalogue's unique index (seen in 4 of 6 concurrent pairs; `up` then stops the
    whole tree). The lock lets one create while the other waits, then finds them made.
    Each group of ``tables`` has a lock of its own, so one group may be created while
    another's lock is held. SQLite needs none: its own write lock serialises the creation."""
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
        yield
        return
    with connect_postgres(env) as conn:
        key = f"bb-setup:{env['POSTGRES_SCHEMA']}:{tables}"
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


class ServiceApplication(EventSourcedProjection[UUID]):
    """Base of every service's application: its own store, its outbox and its inbox."""

    log_section_size = 1000

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._commit_listeners: list[CommitListener] = []
        self._listeners_lock = threading.Lock()

    def on_commit(self, listener: CommitListener) -> None:
        """Call ``listener`` in the committing thread after each commit (wakes the relay)."""
        with self._listeners_lock:
            self._commit_listeners.append(listener)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        for listener in list(self._commit_listeners):
            listener(recordings)

    def handle_upstream(self, event: IntegrationEvent, tracking: Tracking) -> bool:
        """Process one upstream event exactly once; False when it was processed before.

        ``RetryLater`` when it cannot be processed yet (the bus redelivers it later).
        Tracking is multi-row, so events may arrive in any order (a JetStream
        redelivery comes after later messages) and each is still recognised.
        """
        if self.was_processed(tracking):
            return False
        try:
            self.process_event(event, tracking)  # type: ignore[arg-type]
        except IntegrityError as error:
            if self.was_processed(tracking):  # a concurrent replica got there first
                return False
            # A replica changed the same aggregate a moment ago: read it again next time.
            raise RetryLater("another writer changed the aggregate first") from error
        return True

    def was_processed(self, tracking: Tracking) -> bool:
        recorder: Any = self.recorder
        args = (tracking.application_name, tracking.notification_id)
        if hasattr(recorder, "tracking_table_name"):  # PostgreSQL
            from psycopg import sql

            query = sql.SQL(
                "SELECT 1 FROM {}.{} WHERE application_name = %s AND notification_id = %s"
            ).format(
                sql.Identifier(recorder.datastore.schema),
                sql.Identifier(recorder.tracking_table_name),
            )
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(query, args)
                return cursor.fetchone() is not None
        if hasattr(recorder, "datastore"):  # SQLite
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(
                    "SELECT 1 FROM tracking WHERE application_name = ? AND notification_id = ?",
                    args,
                )
                return cursor.fetchone() is not None
        # In-memory (unit tests): single-row semantics, in order.
        return bool(self.recorder.has_tracking_id(*args))

    @singledispatchmethod
    def policy(
        self,
        domain_event: DomainEventProtocol[UUID],
        processing_event: ProcessingEvent[UUID],
    ) -> None:
        """Events a service does not react to are tracked and otherwise ignored."""
