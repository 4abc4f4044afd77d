"""Stores of their own beside the event stores reconnect after PostgreSQL dropped their
connections (a restart, a failover, sessions ended by an administrator): psycopg never
reconnects by itself, so booking's mail outbox and personal data would fail from then on."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from services.booking.sidestore import SideStore
from services.common.settings import Settings

pytestmark = [pytest.mark.timeout(60), pytest.mark.postgres]


def drop_connections(postgres_url: str) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    admin_url = postgres_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


def test_bookings_side_store_works_again_after_its_connection_was_dropped(
    postgres_url: str, tmp_path: Path
) -> None:
    store = SideStore(Settings(database_url=postgres_url, data_dir=tmp_path), "unused")
    try:
        with store.transaction() as cursor:
            cursor.execute("CREATE TABLE kept (n INTEGER)")
            cursor.execute("INSERT INTO kept VALUES (1)")
        drop_connections(postgres_url)
        lost = pytest.raises(psycopg.OperationalError)  # the one in flight is lost
        with lost, store.transaction() as cursor:
            cursor.execute("SELECT n FROM kept")
        with store.transaction() as cursor:
            cursor.execute("INSERT INTO kept VALUES (2)")
            cursor.execute("SELECT count(*) FROM kept")
            assert cursor.fetchone() == (2,)
        store.scrub("kept")
    finally:
        store.close()
