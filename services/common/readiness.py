"""Whether a service is ready to answer: caught up with the stream, its store and NATS reachable.

A fresh process knows only what its store holds: its views are complete once its outbox
relay has published what the store held at start (so the stream has it) and each of its
durable consumers has processed what the stream held by then. Both are checked when
``/readyz`` asks and are remembered once true: a consumer that falls behind under load
later does not make a replica unready (that would take capacity away exactly when it is
needed). What can come and go, NATS and the database, is checked on every probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.common.eventstore import ServiceApplication
from services.common.logging import get_logger

log = get_logger(__name__)

PROBE_TIMEOUT = 2.0  # seconds a readiness probe waits for NATS or the database
PING_FRESH = 1.0  # seconds a database ping's answer is reused


class CatchUp:
    """The start-up catch-up of one service's relay and consumers, remembered once done."""

    def __init__(self, app: ServiceApplication, stream: str) -> None:
        self.app = app
        self.stream = stream
        self.relay_done = False
        self.consumers_done = False
        self._store_target: int | None = None  # the store's newest notification at start
        self._stream_target: int | None = None  # the stream's last sequence when first asked
        self._consumers_done: set[str] = set()

    async def relay(self, held: bool, position: int, tracking_name: str) -> bool:
        """The relay has published what the store held when first asked (by this replica
        if it leads, else as the leader confirmed it in the shared store)."""
        if self.relay_done:
            return True
        if self._store_target is None:
            newest = await asyncio.to_thread(self.app.recorder.max_notification_id)
            self._store_target = newest or 0
        target = self._store_target
        if not (held and position >= target):
            confirmed = await asyncio.to_thread(self.app.recorder.max_tracking_id, tracking_name)
            if (confirmed or 0) < target:
                return False
        self.relay_done = True
        log.info("relay_caught_up", application=self.app.name, position=target)
        return True

    async def consumers(self, js: JetStreamContext, durables: list[str]) -> bool:
        """Each durable consumer has processed what the stream held when first asked: nothing
        pending, or its acknowledged floor past that point (a consumer of busy subjects
        may never be idle)."""
        if self.consumers_done:
            return True
        if self._stream_target is None:
            self._stream_target = (await js.stream_info(self.stream)).state.last_seq
        for durable in durables:
            if durable in self._consumers_done:
                continue
            try:
                info = await js.consumer_info(self.stream, durable)
            except NotFoundError:  # not created yet: its task is still starting
                return False
            idle = not info.num_pending and not info.num_ack_pending
            past = info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= (
                self._stream_target
            )
            if not (idle or past):
                return False
            self._consumers_done.add(durable)
        self.consumers_done = True
        log.info("consumers_caught_up", application=self.app.name, durables=durables)
        return True


class StorePing:
    """Whether the store answers ``SELECT 1``: one ping in flight at a time, its answer
    reused for ``PING_FRESH`` seconds, at most ``PROBE_TIMEOUT`` seconds waited for it."""

    def __init__(self, app: ServiceApplication) -> None:
        self._ping: Callable[[], None] = _ping_for(app)
        self._task: asyncio.Task[bool] | None = None
        self._answer = False
        self._answered_at = -PING_FRESH

    async def reachable(self) -> bool:
        if time.monotonic() - self._answered_at < PING_FRESH:
            return self._answer
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            return await asyncio.wait_for(asyncio.shield(self._task), PROBE_TIMEOUT)
        except TimeoutError:
            return False

    async def _run(self) -> bool:
        try:
            await asyncio.to_thread(self._ping)
            answer = True
        except Exception as error:
            log.warning("store_unreachable", error=repr(error))
            answer = False
        self._answer, self._answered_at = answer, time.monotonic()
        return answer

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def _ping_for(app: ServiceApplication) -> Callable[[], None]:
    datastore: Any = getattr(app.recorder, "datastore", None)
    if datastore is None:  # in memory (unit tests): always there

        def nothing() -> None:
            return None

        return nothing

    def ping() -> None:
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return ping
