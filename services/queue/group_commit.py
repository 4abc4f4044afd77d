"""Group commit: knocks that arrive while a save is on its way are saved together.

Every save to the queue's store is a transaction that ends with an fsync of the
SQLite log (about half a millisecond alone, several under load, one after another
for one file). Saved one by one, knocks cap the queue at a few hundred a second,
however fast everything else is. Here whatever queued up during one save is saved
in the next, in one transaction: a burst costs one fsync, a lone knock waits no
longer than before, and each caller still gets its own answer or refusal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

SaveAll = Callable[[list[Item]], list[Result | Exception]]


class GroupCommit(Generic[Item, Result]):
    def __init__(self, save_all: SaveAll[Item, Result], max_group: int = 256) -> None:
        """``save_all`` runs in a worker thread and answers each item in order:
        its result, or the exception refusing it alone."""
        self._save_all = save_all
        self._max_group = max_group
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._saving: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._saving is None:
            self._saving = asyncio.create_task(self._save_while_waiting())
        return await future

    async def _save_while_waiting(self) -> None:
        try:
            while self._waiting:
                group = self._waiting[: self._max_group]
                del self._waiting[: self._max_group]
                try:
                    results = await asyncio.to_thread(self._save_all, [i for i, _ in group])
                except Exception as error:  # the group as a whole failed: each caller hears
                    results = [error] * len(group)
                for (_, future), result in zip(group, results, strict=True):
                    if future.done():  # the caller went away
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._saving = None
