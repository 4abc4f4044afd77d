"""eventsourcing's SQLite persistence, for a file that several processes write at once.

SQLite serialises writers with its own file lock, but a writer that finds the lock
taken polls for it, sleeping 1, 2, 5, 10, ... ms between tries (its default busy
handler): two busy processes on one file (``buergerbuero up`` with several queue
processes) would spend their time asleep. Here a write transaction first takes a
blocking ``flock`` on a file beside the database, which the kernel hands over the
moment it is released; the process dying releases it too. Within one process the
connection pool already queues writers; reads take no lock at all (WAL mode).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing.sqlite import SQLiteConnection, SQLiteDatastore, SQLiteFactory
from eventsourcing.utils import Environment, EnvType


class SharedFileDatastore(SQLiteDatastore):
    def __init__(self, db_name: str, **kwargs: object) -> None:
        self._writers = os.open(f"{db_name}.writer-lock", os.O_CREAT | os.O_RDWR, 0o600)
        # Switching a new file to WAL mode fails at once ("database is locked") while
        # another process opens it too (two queue processes starting together): switch it
        # here, one process at a time; for the pool's connections it is then a no-op.
        fcntl.flock(self._writers, fcntl.LOCK_EX)
        try:
            with contextlib.closing(sqlite3.connect(db_name)) as connection:
                connection.execute("PRAGMA journal_mode=WAL;")
        finally:
            fcntl.flock(self._writers, fcntl.LOCK_UN)
        super().__init__(db_name, **kwargs)  # type: ignore[arg-type]

    @contextmanager
    def get_connection(self, *, commit: bool) -> Iterator[SQLiteConnection]:
        with super().get_connection(commit=commit) as connection:
            if not commit:
                yield connection
                return
            fcntl.flock(self._writers, fcntl.LOCK_EX)  # blocks without the GIL
            try:
                yield connection
            finally:
                fcntl.flock(self._writers, fcntl.LOCK_UN)

    def close(self) -> None:
        super().close()
        if getattr(self, "_writers", -1) >= 0:
            os.close(self._writers)
            self._writers = -1


class Factory(SQLiteFactory):
    """``PERSISTENCE_MODULE=services.common.sqlite_shared:Factory``: the SQLite factory, with the
    datastore above (same settings, e.g. ``SQLITE_DBNAME``, ``SQLITE_LOCK_TIMEOUT``)."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        plain = self.datastore
        if plain.pool.is_sqlite_memory_mode:
            return
        self.datastore = SharedFileDatastore(
            plain.pool.db_name,
            lock_timeout=plain.pool.lock_timeout,
            single_row_tracking=plain.single_row_tracking,
            originator_id_type=plain.originator_id_type,
        )
        plain.close()
