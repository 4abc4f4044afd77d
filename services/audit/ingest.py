"""The durable JetStream consumer that feeds the log: fetch a batch, append it, then ack.

Not the platform's per-event consumer (``Durable``/``IntoApplication``): the log is its own
store, a Merkle tree deduplicated by event id, and it takes a thousand events in one
transaction; one transaction per event would cap the log far below the bus's rate. The
service lists it among its reactions as ``Batched``.

One pull consumer over ``bb.>`` with ``AckPolicy.ALL``: the whole batch is parsed, appended
in one transaction (records, subtree hashes, watermarks, stream position), and only then is
the batch's last message acknowledged, which acknowledges every one before it. A crash
before the commit redelivers the batch; a crash between commit and ack redelivers events
whose ids the log already holds, and they change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Gauge

from services.audit.canonical import LogEntry, is_logged
from services.audit.ownership import owned, refuse
from services.audit.store import LogStore
from services.common.bus import Bus
from services.common.contracts import parse_event
from services.common.logging import get_logger

log = get_logger(__name__)

DURABLE = "audit"
SUBJECT = "bb.>"  # every integration event
BATCH = 1000

APPENDED = Counter("bb_audit_appended_total", "Events appended to the audit log", ["via"])
UNKNOWN = Counter("bb_audit_unknown_events_total", "Messages without a known contract")
CHAIN_LENGTH = Gauge("bb_audit_log_size", "Records in the audit log (its tree size)",
                     multiprocess_mode="max")


class LogConsumer:
    """Pulls every integration event from the stream into the log."""

    def __init__(self, store: LogStore, bus: Bus, on_batch: Callable[[], None] | None = None,
                 batch: int = BATCH, durable: str = DURABLE) -> None:
        self.store = store
        self.bus = bus
        self.batch = batch
        self.durable = durable
        self.on_batch = on_batch
        self.healthy = False
        self._sub: JetStreamContext.PullSubscription | None = None

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            name=self.durable,  # the create request's subject carries it (natsaccess.py)
            durable_name=self.durable,
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=60.0,
            max_deliver=-1,
            max_ack_pending=self.batch * 4,
            filter_subject=SUBJECT,
        )

    async def run(self) -> None:
        try:
            await self._run()
        finally:  # a cancelled fetch leaves its subscription undrainable: drop it now
            if self._sub is not None:
                with contextlib.suppress(Exception):
                    await self._sub.unsubscribe()

    async def _run(self) -> None:
        """Fetch the next batch while the previous one is being appended (in a thread)."""
        sub = None
        pending: tuple[asyncio.Future[int], list[Msg]] | None = None
        while True:
            try:
                if sub is None:
                    await self._ensure_consumer()
                    sub = self._sub = await self.bus.js.pull_subscribe_bind(
                        self.durable, stream=self.bus.stream)
                messages = await sub.fetch(self.batch, timeout=0.2 if pending else 1.0)
                self.healthy = True
            except (TimeoutError, NatsTimeoutError):
                messages = []
                self.healthy = self.bus.connected
            except asyncio.CancelledError:
                raise
            except Exception as error:  # NATS down or the consumer gone: back off, rebuild
                self.healthy = False
                log.warning("audit_fetch_failed", error=repr(error))
                sub = None
                messages = []
                await asyncio.sleep(0.5)
            if pending is not None:
                try:
                    await self._finish(*pending)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # the ack failed: the batch comes again, deduplicated
                    log.warning("audit_ack_failed", error=repr(error))
                    sub = None
                pending = None
            if messages:
                pending = (asyncio.ensure_future(asyncio.to_thread(self._append, messages)),
                           messages)

    async def _ensure_consumer(self) -> None:
        try:
            await self.bus.js.consumer_info(self.bus.stream, self.durable)
        except NotFoundError:
            await self.bus.js.add_consumer(self.bus.stream, self.config())

    async def handle(self, messages: list[Msg]) -> None:
        """Append one batch and acknowledge it (without the pipelining of :meth:`run`)."""
        if messages:
            await self._finish(asyncio.ensure_future(asyncio.to_thread(self._append, messages)),
                               messages)

    async def _finish(self, appending: asyncio.Future[int], messages: list[Msg]) -> None:
        # Acknowledging a later message would acknowledge this batch too (AckPolicy.ALL),
        # so a failed append is retried here until it commits, before anything else is acked.
        while True:
            try:
                appended = await appending
                break
            except Exception:
                self.healthy = False
                log.exception("audit_append_failed", batch=len(messages))
                await asyncio.sleep(1.0)
                appending = asyncio.ensure_future(asyncio.to_thread(self._append, messages))
        await messages[-1].ack()  # AckPolicy.ALL: acknowledges the whole batch
        APPENDED.labels("bus").inc(appended)
        CHAIN_LENGTH.set(self.store.size)
        if self.on_batch:
            self.on_batch()

    def _append(self, messages: list[Msg]) -> int:
        """Parse, encode and append a batch in one transaction (runs in a worker thread)."""
        entries, seen = [], []
        for msg in messages:
            try:
                event = parse_event(msg.subject, msg.data)
            except ValueError:
                event = None
                log.error("audit_unparsable_event", subject=msg.subject)
            if event is None:
                UNKNOWN.inc()
                continue
            if not owned(msg.subject, event):
                refuse(msg.subject, event, "bus", "not the subject's service or contract")
                continue
            if is_logged(event):
                entries.append(LogEntry.of(event))
            else:
                seen.append((event.service, event.position))
        sequence = messages[-1].metadata.sequence.stream
        return len(self.store.append(entries, seen=seen, stream_sequence=sequence))
