"""The audit service's own database for the Merkle log, chosen by the same settings as its
event store (``store_env``, so the one ``BB_DATABASE_URL`` switch applies).

PostgreSQL: plain tables in the audit service's schema, next to its eventsourcing tables.
SQLite: plain tables in a file of their own beside the event store (``audit-log.sqlite``
next to ``audit.sqlite``). SQLite admits one writer per file, and the log commits a batch
every few milliseconds under load; the event store (DPO views, checkpoints) must stay
writable meanwhile. Queries are written with ``?`` placeholders, adapted for psycopg.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from services.common.eventstore import setup_lock

LOG_FILE = "audit-log.sqlite"

_SQLITE_BLOB, _PG_BLOB = "BLOB", "BYTEA"

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_records (
    idx BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    service TEXT NOT NULL,
    position BIGINT NOT NULL,
    type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    department_id TEXT,
    consultation_id TEXT,
    ticket_id TEXT,
    appointment_id TEXT,
    leaf {blob} NOT NULL,
    data {blob}
);
CREATE INDEX IF NOT EXISTS audit_records_service ON audit_records (service, position);
CREATE INDEX IF NOT EXISTS audit_records_consultation ON audit_records (consultation_id);
CREATE INDEX IF NOT EXISTS audit_records_ticket ON audit_records (ticket_id);
CREATE INDEX IF NOT EXISTS audit_records_department
    ON audit_records (department_id, occurred_at);
CREATE INDEX IF NOT EXISTS audit_records_type ON audit_records (type, occurred_at);
CREATE TABLE IF NOT EXISTS audit_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash {blob} NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS audit_watermarks (
    service TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_consumer (
    name TEXT PRIMARY KEY,
    stream_sequence BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    size BIGINT NOT NULL,
    note TEXT NOT NULL,
    signed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_checkpoints_size ON audit_checkpoints (size);
CREATE TABLE IF NOT EXISTS audit_anchor (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL,
    pruned_at TEXT NOT NULL
);
"""


class Database:
    """One writing and one reading connection, each used by one thread at a time."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.postgres = env["PERSISTENCE_MODULE"].endswith("postgres")
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer = self._connect()
        self._reader = self._connect()
        blob = _PG_BLOB if self.postgres else _SQLITE_BLOB
        with setup_lock(env, "audit-log"), self.transaction() as cursor:
            for statement in SCHEMA.format(blob=blob).split(";"):
                if statement.strip():
                    cursor.execute(statement)
            self._add_appointment_column(cursor)

    def _add_appointment_column(self, cursor: Cursor) -> None:
        """A log created before appointments were indexed gets the column (its older records
        name no appointment) and its index."""
        if self.postgres:
            cursor.execute("ALTER TABLE audit_records ADD COLUMN IF NOT EXISTS appointment_id TEXT")
        elif not any(row[1] == "appointment_id" for row in
                     cursor.execute("PRAGMA table_info(audit_records)").fetchall()):
            cursor.execute("ALTER TABLE audit_records ADD COLUMN appointment_id TEXT")
        cursor.execute("CREATE INDEX IF NOT EXISTS audit_records_appointment"
                       " ON audit_records (appointment_id)")

    @property
    def location(self) -> str:
        if self.postgres:
            return f"postgresql schema {self.env['POSTGRES_SCHEMA']}"
        return str(Path(self.env["SQLITE_DBNAME"]).with_name(LOG_FILE))

    def _connect(self) -> Any:
        if self.postgres:
            import psycopg

            return psycopg.connect(
                dbname=self.env["POSTGRES_DBNAME"], host=self.env["POSTGRES_HOST"],
                port=int(self.env["POSTGRES_PORT"]), user=self.env["POSTGRES_USER"],
                password=self.env["POSTGRES_PASSWORD"] or None,
                options=f"-c search_path={self.env['POSTGRES_SCHEMA']}",
            )
        conn = sqlite3.connect(
            self.location, isolation_level=None, check_same_thread=False,
            timeout=float(self.env.get("SQLITE_LOCK_TIMEOUT", "10")),
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def sql(self, query: str) -> str:
        return query.replace("?", "%s") if self.postgres else query

    def _alive(self, conn: Any) -> Any:
        """The connection, or a new one where PostgreSQL dropped it (a restart, a failover,
        an administrator ending sessions): psycopg never reconnects by itself, and the log
        would refuse every batch from then on."""
        if self.postgres and (conn.closed or conn.broken):
            with suppress(Exception):
                conn.close()
            return self._connect()
        return conn

    def _end(self, conn: Any) -> None:
        """Roll back what a failed block left open (nothing to roll back on a lost one)."""
        if not self.postgres:
            conn.execute("ROLLBACK")
        elif not (conn.closed or conn.broken):
            conn.rollback()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """All or nothing: the writes in the block commit together or not at all."""
        with self._write_lock:
            self._writer = conn = self._alive(self._writer)
            if not self.postgres:
                conn.execute("BEGIN IMMEDIATE")
            cursor = Cursor(self, conn.cursor())
            try:
                yield cursor
            except BaseException:
                self._end(conn)
                raise
            conn.commit() if self.postgres else conn.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        with self._read_lock:
            self._reader = conn = self._alive(self._reader)
            cursor = Cursor(self, conn.cursor())
            try:
                yield cursor
            finally:
                if self.postgres:
                    self._end(conn)  # end the snapshot, so the next read sees new rows

    def close(self) -> None:
        for conn in (self._writer, self._reader):
            conn.close()


class Cursor:
    def __init__(self, db: Database, cursor: Any) -> None:
        self._db = db
        self._cursor = cursor

    def execute(self, query: str, args: Sequence[Any] = ()) -> Cursor:
        self._cursor.execute(self._db.sql(query), tuple(args))
        return self

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._db.sql(query), rows)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())

    def scalar(self, query: str, args: Sequence[Any] = ()) -> Any:
        row = self.execute(query, args).fetchone()
        return None if row is None else row[0]
