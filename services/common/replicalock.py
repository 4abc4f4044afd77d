"""A lock that the replicas of one service sharing one store hold in turn.

PostgreSQL: an advisory lock of the store's database (replicas on any machine). SQLite: a
file lock beside the database file (replicas are processes on one machine). A store in
memory (unit tests) has one process: a thread lock is enough.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from filelock import FileLock

log = structlog.get_logger(__name__)


class ReplicaLock:
    """``with lock.held(): ...`` runs while no other replica (and no other thread of this
    one) holds the lock of the same name. Not re-entrant."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self._threads = threading.Lock()
        self._env = env
        self._key = f"bb-{name}:{env.get('POSTGRES_SCHEMA', '')}"
        self._conn: Any = None
        module = env.get("PERSISTENCE_MODULE", "")
        self._postgres = module.endswith("postgres")
        dbname = env.get("SQLITE_DBNAME", "")
        on_disk = "sqlite" in module and dbname and ":memory:" not in dbname
        self._file = FileLock(f"{dbname}.{name}.lock") if on_disk else None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            if self._file is not None:
                with self._file:
                    yield
            elif self._postgres:
                conn = self._lock_postgres()
                try:
                    yield
                finally:
                    self._unlock_postgres(conn)
            else:
                yield

    def _lock_postgres(self) -> Any:
        """Lock on this replica's own connection, made again once if it was dropped (a
        dropped connection has released its locks with it)."""
        import psycopg

        from services.common.eventstore import connect_postgres

        for attempt in (1, 2):
            if self._conn is None or self._conn.closed:
                self._conn = connect_postgres(self._env)
            try:
                self._conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (self._key,))
                return self._conn
            except psycopg.OperationalError:
                log.warning("replica_lock_reconnect", key=self._key, attempt=attempt)
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _unlock_postgres(self, conn: Any) -> None:
        import psycopg

        try:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self._key,))
        except psycopg.OperationalError:  # the connection is gone, and its lock with it
            conn.close()
            self._conn = None

    def close(self) -> None:
        with self._threads:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
