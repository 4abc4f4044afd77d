"""The outbox relay: publishes a service's stored events from its notification log.

Right after each commit the relay is woken; on start it resumes from its last
confirmed position, which it records in the service's own store only after
the stream acknowledged every event before it. A crash anywhere in between
means a re-send with the same ``Nats-Msg-Id``, which the stream drops.

Replicas of a service share its store, so only one relays: the holder of the
lease ``outbox.<service>``. A follower's commits wake the leader with a core
message on ``bbx.outbox.<service>.wake``; the leader also polls, for commits
by processes that could not reach NATS. Each new leader resumes from the
position confirmed in the shared store.
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
from services.common.lease import Lease
from services.common.logging import get_logger

log = get_logger(__name__)

# Maps one stored domain event (with its notification id) to its contract, or
# None for events that stay inside the service.
ToContract = Callable[[Any, int], IntegrationEvent | None]

BATCH = 500
CONFIRM_SECONDS = 0.5  # well inside the stream's two-minute duplicate window


class LeaseNotFresh(Exception):
    """Not renewed for a while (this process was stalled?): another may relay by now, and
    what it published longer ago than the stream's duplicate window would be doubled."""


class OutboxRelay:
    def __init__(
        self,
        app: ServiceApplication,
        bus: Bus,
        to_contract: ToContract,
        service: str,
        poll_seconds: float = 1.0,
        lease_ttl_seconds: float = 5.0,
    ) -> None:
        self.app = app
        self.bus = bus
        self.to_contract = to_contract
        self.service = service
        metrics.RELAY_FAILURES.labels(service)  # a series at 0, so the first failure counts
        self.poll_seconds = poll_seconds
        self.tracking_name = f"outbox:{service}"
        self.lease = Lease(
            bus, f"outbox.{service}", ttl_seconds=lease_ttl_seconds, on_change=self._on_lease
        )
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._sending: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.position = 0
        self._confirmed = 0
        self._confirmed_at = 0.0
        self._publishing = False  # the leader's last attempt to publish succeeded

    @property
    def healthy(self) -> bool:
        """A follower: while its lease attempts reach NATS; a leader: while it also publishes."""
        return self.lease.healthy and (self._publishing or not self.lease.held)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.app.on_commit(self._on_commit)
        metrics.RELAY_LEADER.labels(self.service).set(0)
        self.lease.start()
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

        # A queue group: one replica answers each read, whichever it is.
        await self.bus.nc.subscribe(read_subject(self.service), queue="outbox", cb=answer)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Confirm before giving the lease up: the next leader starts from there.
        if self.lease.held:
            with contextlib.suppress(Exception):
                await self._confirm(force=True)
        await self.lease.stop()

    def _on_commit(self, _recordings: object) -> None:
        # Called in the committing thread. Commits by processes that reach no
        # NATS at all (a CLI) the leader picks up through its periodic poll.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._committed)

    def _committed(self) -> None:
        if self.lease.held:
            self._wake.set()
        elif not self._wake_pending:  # commits before the message goes out share it
            self._wake_pending = True
            task = asyncio.create_task(self._wake_leader())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _wake_leader(self) -> None:
        self._wake_pending = False
        with contextlib.suppress(Exception):  # no NATS: the leader's poll finds the commit
            await self.bus.send_ephemeral(wake_subject(self.service), b"")

    def _on_lease(self, held: bool) -> None:
        metrics.RELAY_LEADER.labels(self.service).set(1 if held else 0)
        self._wake.set()  # a leader that lost the lease stops waiting at once

    async def _run(self) -> None:
        while True:
            await self.lease.wait_held()
            # Another process may have advanced the confirmed position meanwhile.
            self.position = self._confirmed = await asyncio.to_thread(self._load_position)
            log.info("relay_leading", service=self.service, position=self.position)
            wakes = await self._subscribe_wakes()
            try:
                await self._lead()
            finally:
                self._publishing = False
                if wakes is not None:
                    with contextlib.suppress(Exception):
                        await wakes.unsubscribe()
            with contextlib.suppress(Exception):
                await self._confirm(force=True)
            log.info("relay_following", service=self.service, position=self.position)

    async def _subscribe_wakes(self) -> Any:
        async def wake(_subject: str, _data: bytes) -> None:
            self._wake.set()

        try:
            return await self.bus.subscribe_ephemeral(wake_subject(self.service), wake)
        except Exception as error:  # NATS away: the poll still relays
            log.warning("relay_wake_subscribe_failed", error=repr(error))
            return None

    async def _lead(self) -> None:
        """Relay while the lease is held; returns once it is lost."""
        while self.lease.held:
            self._wake.clear()
            try:
                published = await self.relay_pending()
                self._publishing = True
            except asyncio.CancelledError:
                raise
            except LeaseNotFresh:  # until the lease is renewed, or lost
                await asyncio.sleep(0.05)
                continue
            except Exception as error:
                self._publishing = False
                metrics.RELAY_FAILURES.labels(self.service).inc()
                log.warning("relay_publish_failed", error=repr(error), position=self.position)
                await asyncio.sleep(0.5)
                continue
            if published:
                continue
            await self._confirm(force=True)  # idle: write down how far we got
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
            if not self.lease.fresh:
                raise LeaseNotFresh
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


def wake_subject(service: str) -> str:
    """Where followers tell the relaying replica about their commits (never stored)."""
    return f"bbx.outbox.{service}.wake"


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
