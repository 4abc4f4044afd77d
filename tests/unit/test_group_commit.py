"""Group commit: what queues up during one save is saved together, each caller answered."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.queue.group_commit import GroupCommit


def test_what_arrives_during_a_save_goes_into_the_next_one() -> None:
    groups: list[list[int]] = []
    first_save_started = threading.Event()
    release_first_save = threading.Event()

    def save_all(items: list[int]) -> list[int | Exception]:
        groups.append(items)
        if len(groups) == 1:
            first_save_started.set()
            release_first_save.wait(5)
        return [i * 10 for i in items]

    async def scenario() -> list[int]:
        commit: GroupCommit[int, int] = GroupCommit(save_all)
        first = asyncio.create_task(commit.submit(1))
        await asyncio.to_thread(first_save_started.wait, 5)
        later = [asyncio.create_task(commit.submit(n)) for n in (2, 3, 4)]
        await asyncio.sleep(0.05)
        release_first_save.set()
        return await asyncio.gather(first, *later)

    assert asyncio.run(scenario()) == [10, 20, 30, 40]
    assert groups == [[1], [2, 3, 4]]


def test_a_refusal_reaches_only_its_own_caller() -> None:
    def save_all(items: list[int]) -> list[int | Exception]:
        return [ValueError(f"no {i}") if i % 2 else i for i in items]

    async def scenario() -> list[object]:
        commit: GroupCommit[int, int] = GroupCommit(save_all)
        return await asyncio.gather(*(commit.submit(n) for n in range(4)), return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], ValueError) and str(results[1]) == "no 1"
    assert isinstance(results[3], ValueError)


def test_a_failed_save_fails_its_whole_group_and_the_next_group_still_runs() -> None:
    calls = 0

    def save_all(items: list[int]) -> list[int | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk gone")
        return list(items)

    async def scenario() -> None:
        commit: GroupCommit[int, int] = GroupCommit(save_all)
        with pytest.raises(OSError, match="disk gone"):
            await commit.submit(1)
        assert await commit.submit(2) == 2

    asyncio.run(scenario())


def test_groups_are_bounded() -> None:
    sizes: list[int] = []

    def save_all(items: list[int]) -> list[int | Exception]:
        sizes.append(len(items))
        return list(items)

    async def scenario() -> None:
        commit: GroupCommit[int, int] = GroupCommit(save_all, max_group=3)
        await asyncio.gather(*(commit.submit(n) for n in range(7)))

    asyncio.run(scenario())
    assert sum(sizes) == 7 and max(sizes) <= 3
