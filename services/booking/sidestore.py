"""A few plain SQL tables of the booking service beside its event store.

Personal data (personal.py) and the mail outbox (mail.py) are rows that are changed and
deleted, not events: they live in a SQLite file of their own under ``data_dir`` (0600),
or with ``BB_DATABASE_URL`` in the booking service's PostgreSQL schema (the one
``store_env(settings, "booking")`` makes). Statements are written with ``?``
placeholders and SQL both databases understand.

SQLite runs with ``secure_delete`` (deleted content is overwritten with zeros) and a
rollback journal rather than WAL: the journal is deleted at each commit, so no ``-wal``
file keeps old copies of rows after they are deleted.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Protocol

from services.common.eventstore import setup_lock, store_env
from services.common.files import PRIVATE_FILE, private_directory
from services.common.settings import Settings

Row = tuple[Any, ...]


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def fetchone(self) -> Row | None: ...
    def fetchall(self) -> list[Row]: ...
    @property
    def rowcount(self) -> int: ...


class SideStore:
    """One connection (shared by the threads of a process) to the booking service's tables."""

    def __init__(self, settings: Settings, sqlite_name: str) -> None:
        self._lock = threading.Lock()
        self.postgres = bool(settings.database_url)
        self._settings = settings
        self.name = sqlite_name
        if self.postgres:
            self._connection: Any = self._connect_postgres(settings)
        else:
            self.path = private_directory(settings.data_dir) / f"{sqlite_name}.sqlite"
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE))
            connection = sqlite3.connect(self.path, isolation_level=None,
                                         check_same_thread=False, timeout=10)
            connection.execute("PRAGMA journal_mode=DELETE")
            connection.execute("PRAGMA secure_delete=ON")
            self._connection = connection

    @staticmethod
    def _connect_postgres(settings: Settings) -> Any:
        import psycopg
        from psycopg import sql

        env = store_env(settings, "booking")  # creates the schema
        connection = psycopg.connect(
            dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
            port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"] or None, autocommit=True,
        )
        connection.execute(
            sql.SQL("SET search_path TO {}").format(sql.Identifier(env["POSTGRES_SCHEMA"]))
        )
        return connection

    def _reconnect_if_lost(self) -> None:
        """psycopg never reconnects by itself: after PostgreSQL dropped the connection (a
        restart, a failover) every mail and every erasure would fail from then on."""
        if self._connection.closed or self._connection.broken:
            with suppress(Exception):
                self._connection.close()
            self._connection = self._connect_postgres(self._settings)

    def create_tables(self, *statements: str) -> None:
        """CREATE … IF NOT EXISTS statements, one replica at a time (``setup_lock``)."""
        env = store_env(self._settings, "booking") if self.postgres else {}
        with setup_lock(env, self.name), self.transaction() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def blob(self) -> str:
        return "BYTEA" if self.postgres else "BLOB"

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One transaction; SQLite takes the write lock at its start (no upgrade deadlocks)."""
        with self._lock:
            if self.postgres:
                self._reconnect_if_lost()
                with self._connection.transaction():
                    yield _PostgresCursor(self._connection.cursor())
                return
            connection: sqlite3.Connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection.cursor()
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def scrub(self, *tables: str) -> None:
        """After deleting secrets: leave no copy of them in free pages or dead rows.

        SQLite's ``secure_delete`` already zeroed them; VACUUM also rebuilds the file so
        no page keeps a fragment. PostgreSQL's VACUUM frees the dead row versions (its
        write-ahead log keeps them until its next checkpoint recycles the segment).
        """
        with self._lock:
            if self.postgres:
                self._reconnect_if_lost()
                for table in tables:
                    self._connection.execute(f"VACUUM {table}")
            else:
                self._connection.execute("VACUUM")

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class _PostgresCursor:
    """psycopg's cursor, taking the ``?`` placeholders of the SQLite statements."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("?", "%s"), params)

    def fetchone(self) -> Row | None:
        row = self._cursor.fetchone()
        return tuple(row) if row is not None else None

    def fetchall(self) -> list[Row]:
        return [tuple(row) for row in self._cursor.fetchall()]

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)
