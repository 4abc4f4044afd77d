"""Replicas take waiting numbers in turn: the lock they share holds across processes'
connections (PostgreSQL) and file handles (SQLite), and two queue replicas knocking at
full speed never pick the same number, so no knock waits for rounds of retries."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from services.common.eventstore import store_env
from services.common.replicalock import ReplicaLock
from services.common.settings import Settings
from services.queue.application import Knock, Queue
from tests.unit.support import CID, Upstream, berlin

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield store_env(Settings(data_dir=tmp_path), "queue")
    else:
        url = request.getfixturevalue("postgres_url")
        yield store_env(Settings(data_dir=tmp_path, database_url=url), "queue")


def test_a_second_replica_waits_until_the_first_lets_go(env: dict[str, str]) -> None:
    first, second = ReplicaLock(env, "numbers"), ReplicaLock(env, "numbers")
    order: list[str] = []
    entered = threading.Event()

    def take_second() -> None:
        with second.held():
            order.append("second")

    with first.held():
        waiter = threading.Thread(target=take_second)
        waiter.start()
        entered.wait(0.5)  # time for the second to (wrongly) get in
        order.append("first done")
    waiter.join(10)
    assert order == ["first done", "second"]
    with ReplicaLock(env, "other").held(), first.held():  # another name is another lock
        pass
    first.close()
    second.close()


def test_a_dropped_connection_releases_the_lock_and_is_made_again(postgres_url: str,
                                                                   tmp_path: Path) -> None:
    env = store_env(Settings(data_dir=tmp_path, database_url=postgres_url), "queue")
    lock, other = ReplicaLock(env, "numbers"), ReplicaLock(env, "numbers")
    with lock.held():
        pid = lock._conn.info.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with other.held():  # the dead connection's lock went with it
            pass
    with lock.held():  # a new connection
        assert lock._conn.info.backend_pid != pid
    lock.close()
    other.close()


def test_two_replicas_knocking_at_once_never_pick_the_same_number(env: dict[str, str]) -> None:
    replicas = [Queue(env, 0, 2), Queue(env, 1, 2)]
    upstream = Upstream()
    upstream.queue = replicas[0]
    dept = upstream.register("demo")
    upstream.clock(berlin(2025, 1, 6, 10, 0))
    upstream.pump()
    replicas[1].catch_up()
    conflicts = []
    for replica in replicas:
        give_back = replica.waiting.give_back

        def counted(*args: Any, give_back: Any = give_back) -> None:
            conflicts.append(args)
            give_back(*args)

        replica.waiting.give_back = counted  # type: ignore[method-assign,assignment]

    def knock_group(i: int) -> list[int]:
        """Groups of 1–4, as the group commit hands them over under load."""
        knocks = [Knock(dept, "walk_in", uuid4(), CID) for _ in range(1 + i % 4)]
        answers = replicas[i % 2].knock_all(knocks)
        return [answer[0].number for answer in answers if isinstance(answer, tuple)]

    with ThreadPoolExecutor(8) as pool:
        numbers = [n for group in pool.map(knock_group, range(80)) for n in group]
    assert sorted(numbers) == list(range(1, 201))  # 80 groups of 1–4 knocks: none twice
    assert conflicts == []  # no replica ever picked a number the other had saved
    for replica in replicas:
        replica.close()
