"""Replicas of a service starting at the same moment on a fresh PostgreSQL database both
start: the tables are created under an advisory lock (eventstore.setup_lock). Without it,
CREATE TABLE IF NOT EXISTS failed one of two concurrent replicas on the catalogue's unique
index in 4 of 6 pairs, and `up` stopped the whole process tree."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from services.audit.service import AuditService
from services.booking.mail import MailOutbox
from services.booking.personal import PersonalData
from services.booking.service import BookingService
from services.common.service import BaseService
from services.common.settings import Settings
from services.queue.service import QueueService
from services.rooms.service import RoomsService
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(120)

REPLICAS = 3
T = TypeVar("T")


def together(make: Callable[[], T]) -> tuple[list[T], list[BaseException]]:
    """``make()`` in REPLICAS threads released at the same moment: what each made or raised."""
    started = threading.Barrier(REPLICAS)
    made: list[T] = []
    failures: list[BaseException] = []

    def replica() -> None:
        started.wait()
        try:
            made.append(make())
        except BaseException as error:  # reported by the caller
            failures.append(error)

    threads = [threading.Thread(target=replica) for _ in range(REPLICAS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return made, failures


@pytest.mark.parametrize("service", [QueueService, RoomsService, BookingService, AuditService])
def test_replicas_starting_together_on_a_fresh_database_all_start(
    service: type[BaseService], postgres_url: str, tmp_path: Path
) -> None:
    """The booking service's personal-data tables and the audit log's own tables too."""
    settings = Settings(database_url=postgres_url, data_dir=tmp_path)
    made, failures = together(lambda: service(settings))
    try:
        assert not failures, failures
        assert len(made) == REPLICAS
    finally:
        for each in made:  # every pool and connection closed: the suite shares PostgreSQL
            asyncio.run(each.stop())
    eventually(lambda: connections_to(postgres_url) == 0, 10)


def test_booking_mail_outboxes_starting_together_all_start(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=postgres_url, data_dir=tmp_path)
    personal = PersonalData(settings)
    made, failures = together(lambda: MailOutbox(settings, personal, describe=_unused))
    assert not failures, failures
    assert len(made) == REPLICAS
    for outbox in made:
        outbox.close()
    personal.close()
    eventually(lambda: connections_to(postgres_url) == 0, 10)


def _unused(*_: object) -> Any:
    raise AssertionError("no mail is written here")


def connections_to(postgres_url: str) -> int:
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres") as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0
