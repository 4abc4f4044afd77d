"""The outbox relay: publishes a service's stored events from its notification log.

Right after each commit the relay is woken; on start it resumes from its last
confirmed position, which it records in the service's own store only after
the stream acknowledged every event before it. A crash anywhere in between
means a re-send with the same ``Nats-Msg-Id``, which the stream drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, Tracking

from services.common import metrics
from services.common.bus import Bus
from services.common.contracts import IntegrationEvent
from services.common.eventstore import ServiceApplication
from services.common.logging import get_logger

log = get_logger(__name__)

# Maps one stored domain event (with its notification id) to its contract, or
# None for events that stay inside the service.
ToContract = Callable[[Any, int], IntegrationEvent | None]

BATCH = 500
CONFIRM_SECONDS = 0.5  # well inside the stream's two-minute duplicate window


class OutboxRelay:
    def __init__(
        self,
        app: ServiceApplication,
        bus: Bus,
        to_contract: ToContract,
        service: str,
        poll_seconds: float = 1.0,
    ) -> None:
        self.app = app
        self.bus = bus
        self.to_contract = to_contract
        self.service = service
        self.poll_seconds = poll_seconds
        self.tracking_name = f"outbox:{service}"
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.position = 0
        self._confirmed = 0
        self._confirmed_at = 0.0
        self.healthy = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.app.on_commit(self._on_commit)
        self._task = asyncio.create_task(self._run())

    async def serve_reads(self) -> None:
        """Answer ``bbx.outbox.<service>.read`` requests from the log itself.

        Request ``{"after": n, "limit": m}``; reply ``{"events": [...], "through": p}``:
        every integration event stored after position n up to and including p.
        A consumer that noticed a gap (e.g. the audit log) fills it from here,
        without a re-publish that other consumers would see twice.
        """
        assert self.bus.nc is not None

        async def answer(msg: Any) -> None:
            request = json.loads(msg.data or b"{}")
            after = int(request.get("after", 0))
            limit = max(1, min(int(request.get("limit", BATCH)), BATCH))
            notifications = await asyncio.to_thread(self._select, after, limit)
            events = [e for e in (self._contract(n) for n in notifications) if e is not None]
            reply = {
                "events": [json.loads(e.to_wire()) for e in events],
                "through": notifications[-1].id if notifications else after,
            }
            await msg.respond(json.dumps(reply).encode())

        await self.bus.nc.subscribe(read_subject(self.service), cb=answer)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._confirm(force=True)

    def _on_commit(self, _recordings: object) -> None:
        # Called in the committing thread; also picks up commits by other
        # processes (a CLI, another replica) through the periodic poll.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        self.position = self._confirmed = await asyncio.to_thread(self._load_position)
        while True:
            try:
                published = await self.relay_pending()
                self.healthy = True
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.healthy = False
                metrics.RELAY_FAILURES.labels(self.service).inc()
                log.warning("relay_publish_failed", error=repr(error), position=self.position)
                await asyncio.sleep(0.5)
                continue
            if published:
                continue
            await self._confirm(force=True)  # idle: write down how far we got
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def relay_pending(self) -> int:
        """Publish one batch after the confirmed position; returns how many were stored events."""
        notifications = await asyncio.to_thread(self._select, self.position)
        if not notifications:
            metrics.RELAY_LAG.labels(self.service).set(0)
            return 0
        if len(notifications) == BATCH:  # behind by more than a batch: measure how far
            newest = await asyncio.to_thread(self.app.recorder.max_notification_id)
            metrics.RELAY_LAG.labels(self.service).set((newest or 0) - self.position)
        events = [e for e in (self._contract(n) for n in notifications) if e is not None]
        if events:
            duplicates = await self.bus.publish(events)
            metrics.RELAY_PUBLISHED.labels(self.service).inc(len(events) - duplicates)
            metrics.RELAY_DUPLICATES.labels(self.service).inc(duplicates)
        self.position = notifications[-1].id
        await self._confirm()
        return len(notifications)

    async def _confirm(self, force: bool = False) -> None:
        """Record the published position, at most every ``CONFIRM_SECONDS`` under load:
        after a crash the relay re-sends from there, and the stream drops the repeats."""
        due = time.monotonic() - self._confirmed_at >= CONFIRM_SECONDS
        if self.position != self._confirmed and (force or due):
            await asyncio.to_thread(self._save_position, self.position)
            self._confirmed, self._confirmed_at = self.position, time.monotonic()

    def _select(self, after: int, limit: int = BATCH) -> list[Notification]:
        return list(self.app.notification_log.select(start=after + 1, limit=limit))

    def _contract(self, notification: Notification) -> IntegrationEvent | None:
        domain_event = self.app.mapper.to_domain_event(notification)
        return self.to_contract(domain_event, notification.id)

    def _load_position(self) -> int:
        return self.app.recorder.max_tracking_id(self.tracking_name) or 0

    def _save_position(self, position: int) -> None:
        # Another replica's relay may have confirmed the same position already.
        with contextlib.suppress(IntegrityError):
            self.app.recorder.insert_tracking(Tracking(self.tracking_name, position))


def read_subject(service: str) -> str:
    """Where a service answers reads of its outbox (outside ``bb.>``: never stored)."""
    return f"bbx.outbox.{service}.read"


def envelope(domain_event: Any, position: int, aggregate_id: UUID | None = None) -> dict[str, Any]:
    """The envelope fields of a contract, derived from the stored event itself."""
    from services.common.contracts import event_id_for

    return {
        "event_id": event_id_for(domain_event.originator_id, domain_event.originator_version),
        "occurred_at": domain_event.timestamp,
        "aggregate_id": aggregate_id or domain_event.originator_id,
        "aggregate_version": domain_event.originator_version,
        "position": position,
        "correlation_id": getattr(domain_event, "correlation_id", None) or "none",
    }
