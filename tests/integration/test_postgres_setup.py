"""Replicas of a service starting at the same moment on a fresh PostgreSQL database both
start: the tables are created under an advisory lock (eventstore.setup_lock). Without it,
CREATE TABLE IF NOT EXISTS failed one of two concurrent replicas on the catalogue's unique
index in 4 of 6 pairs, and `up` stopped the whole process tree."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import psycopg
import pytest

from services.booking.service import BookingService
from services.common.service import BaseService
from services.common.settings import Settings
from services.queue.service import QueueService
from services.rooms.service import RoomsService
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(120)

REPLICAS = 3


@pytest.mark.parametrize("service", [QueueService, RoomsService, BookingService])
def test_replicas_starting_together_on_a_fresh_database_all_start(
    service: type[BaseService], postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=postgres_url, data_dir=tmp_path)
    started = threading.Barrier(REPLICAS)
    made: list[BaseService] = []
    failures: list[BaseException] = []

    def replica() -> None:
        started.wait()
        try:
            made.append(service(settings))
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=replica) for _ in range(REPLICAS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not failures, failures
        assert len(made) == REPLICAS
    finally:
        for each in made:  # every pool and connection closed: the suite shares PostgreSQL
            asyncio.run(each.stop())
    eventually(lambda: connections_to(postgres_url) == 0, 10)


def connections_to(postgres_url: str) -> int:
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres") as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0
