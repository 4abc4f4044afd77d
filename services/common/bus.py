"""The message bus: one JetStream stream over ``bb.>`` on NATS.

Publishing sets ``Nats-Msg-Id`` to the event id, so a re-send after a crash
or a timed-out publish is dropped by the stream. Consumers are durable pull
consumers that acknowledge only after their own commit.

The stream and the KV buckets are created with ``replicas`` replicas (the setting
``BB_NATS_REPLICAS``: 3 in a cluster of three NATS servers, so that losing one loses
nothing and stops nothing). One that exists with fewer is raised to that many when a
service connects or first uses it; a count is never lowered automatically.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from services.common import metrics
from services.common.contracts import IntegrationEvent, parse_event
from services.common.errors import RetryLater
from services.common.logging import correlation, get_logger
from services.common.natsaccess import inbox_prefix
from services.common.natsauth import NatsCredentials

log = get_logger(__name__)

STREAM_SUBJECTS = ["bb.>"]
CORRELATION_HEADER = "Correlation-Id"
PUBLISH_TIMEOUT = 5.0
RETRY_DELAY = 1.0  # seconds before a message that was not handled comes again
LEADER_WAIT = 10.0  # seconds a replicated stream may take to elect its leader
LEADER_POLL = 0.1

EventHandler = Callable[[IntegrationEvent, int], Awaitable[None]]
LiveHandler = Callable[[IntegrationEvent], Awaitable[None]]


class Bus:
    # Deliveries of one message that may end in RetryLater before each further one is
    # logged as a failure: a precondition still missing after about defer_limit *
    # RETRY_DELAY seconds is a bug or an outage someone must see. The message keeps coming
    # back all the same (``max_deliver`` is unlimited): a consumer that skipped an event
    # would be wrong for good.
    defer_limit = 10

    def __init__(
        self,
        servers: str,
        name: str,
        stream: str = "BB",
        max_age_days: int = 30,
        replicas: int = 1,
        credentials: NatsCredentials | None = None,
    ):
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        self.name = name
        self.credentials = credentials
        self.stream = stream
        self.max_age_days = max_age_days
        self.replicas = replicas
        self.nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("bus not connected")
        return self._js

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self) -> None:
        login: dict[str, Any] = {}
        if self.credentials is not None:
            login = {"user": self.credentials.user, "password": self.credentials.password}
        self.nc = await nats.connect(
            self.servers,
            name=self.name,
            # Replies (JetStream acks, KV reads) arrive under this service's own prefix,
            # the only inboxes its NATS user may subscribe to (services/common/natsaccess.py).
            inbox_prefix=inbox_prefix(self.name),
            **login,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        self._js = self.nc.jetstream(timeout=PUBLISH_TIMEOUT)
        await self.ensure_stream()

    async def _on_error(self, error: Exception) -> None:
        log.warning("nats_error", error=repr(error))

    async def _on_disconnected(self) -> None:
        log.warning("nats_disconnected")

    async def _on_reconnected(self) -> None:
        log.info("nats_reconnected")

    async def ensure_stream(self) -> None:
        config = StreamConfig(
            name=self.stream,
            subjects=STREAM_SUBJECTS,
            storage=StorageType.FILE,
            duplicate_window=120.0,
            max_age=timedelta(days=self.max_age_days).total_seconds(),
            num_replicas=self.replicas,
        )
        try:
            info = await self.js.stream_info(self.stream)
        except NotFoundError:
            await self.js.add_stream(config)
            await self._wait_for_leader(self.stream)
            return
        await self._raise_replicas(info)

    async def _raise_replicas(self, info: StreamInfo) -> None:
        """Raise an existing stream (or a bucket's) to ``replicas``; never lower it.

        The rest of its configuration stays as it is. Several services may do this at
        the same moment: an update that fails because another one got there first is fine.
        """
        name = info.config.name
        assert name is not None
        current = info.config.num_replicas or 1
        if current >= self.replicas:
            return
        try:
            await self.js.update_stream(
                dataclasses.replace(info.config, num_replicas=self.replicas)
            )
        except Exception:
            if ((await self.js.stream_info(name)).config.num_replicas or 1) < self.replicas:
                raise
            return  # another process raised it meanwhile
        log.info("stream_replicas_raised", stream=name, replicas=self.replicas, previous=current)
        await self._wait_for_leader(name)

    async def _wait_for_leader(self, name: str) -> None:
        """Until a replicated stream has elected its leader (at most ``LEADER_WAIT`` seconds).

        A stream created (or raised) with several replicas answers publishes only once its
        replicas have elected a leader; until then a publish finds no responder. A single
        replica leads at once.
        """
        if self.replicas <= 1:
            return
        for _ in range(int(LEADER_WAIT / LEADER_POLL)):  # the server tells no one: ask
            if await self._has_leader(name):
                return
            await asyncio.sleep(LEADER_POLL)
        log.warning("stream_leader_not_elected", stream=name, waited_seconds=LEADER_WAIT)

    async def _has_leader(self, name: str) -> bool:
        try:
            info = await self.js.stream_info(name)
        except Exception:  # the cluster is still electing: ask again
            return False
        return info.cluster is not None and bool(info.cluster.leader)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.nc and not self.nc.is_closed:
            # Draining waits for the server; a dead server must not hold up a shutdown.
            try:
                await asyncio.wait_for(self.nc.drain(), 2.0)
            except Exception:
                with contextlib.suppress(Exception):
                    await self.nc.close()

    # -- publishing ------------------------------------------------------------

    async def publish(self, events: Sequence[IntegrationEvent]) -> int:
        """Publish in order and wait for every acknowledgement; returns the duplicates seen.

        Raises on any failure: the caller retries with the same events (same ids).
        """
        futures = [
            await self.js.publish_async(
                event.subject,
                event.to_wire(),
                headers={
                    "Nats-Msg-Id": str(event.event_id),
                    CORRELATION_HEADER: event.correlation_id,
                },
            )
            for event in events
        ]
        acks = await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_TIMEOUT)
        return sum(1 for ack in acks if ack.duplicate)

    # -- consuming -------------------------------------------------------------

    def consume(self, durable: str, subjects: list[str], handle: EventHandler) -> None:
        """Run a durable pull consumer in the background.

        ``handle(event, stream_sequence)`` must commit before it returns; the
        message is acknowledged afterwards. A failure is negatively
        acknowledged with a delay and comes back later, after newer messages:
        handlers must not assume order across redeliveries. A handler that raises
        ``RetryLater`` is deferred the same way, logged as expected rather than failed.
        """
        # Series at 0 from the start: rate() and increase() miss a counter's first
        # increment when the series appears only with it.
        metrics.CONSUMER_FAILURES.labels(durable)
        metrics.CONSUMER_DEFERRALS.labels(durable)
        self._tasks.append(asyncio.create_task(self._consume(durable, subjects, handle)))

    async def _consume(self, durable: str, subjects: list[str], handle: EventHandler) -> None:
        # Named: the create request's subject then carries the name and (one subject) the
        # filter, which is what a NATS user's permissions can pin (natsaccess.py).
        filters: dict[str, Any] = (
            {"filter_subject": subjects[0]} if len(subjects) == 1
            else {"filter_subjects": subjects}
        )
        config = ConsumerConfig(
            name=durable,
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30.0,
            max_deliver=-1,  # never given up on; see defer_limit
            **filters,
        )
        sub = None
        try:
            while True:
                try:
                    if sub is None:
                        await self._ensure_consumer(config)
                        sub = await self.js.pull_subscribe_bind(durable, stream=self.stream)
                    messages = await sub.fetch(256, timeout=1.0)
                except (TimeoutError, NatsTimeoutError):
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # NATS down or consumer gone: back off, rebuild
                    log.warning("consumer_fetch_failed", durable=durable, error=repr(error))
                    sub = None
                    await asyncio.sleep(0.5)
                    continue
                await self._handle_batch(durable, messages, handle)
        finally:
            if sub is not None:  # a pending fetch would otherwise hold up the drain
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _ensure_consumer(self, config: ConsumerConfig) -> None:
        assert config.durable_name
        try:
            await self.js.consumer_info(self.stream, config.durable_name)
        except NotFoundError:
            await self.js.add_consumer(self.stream, config)

    async def _handle_batch(self, durable: str, messages: list[Msg], handle: EventHandler) -> None:
        for msg in messages:
            event = parse_event(msg.subject, msg.data)
            if event is None:
                await msg.ack()
                continue
            with correlation(event.correlation_id, service=self.name):
                try:
                    await handle(event, msg.metadata.sequence.stream)
                except Exception as error:
                    self._not_handled(durable, event, msg.metadata.num_delivered, error)
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=RETRY_DELAY)
                    continue
            await msg.ack()
            metrics.CONSUMED.labels(durable).inc()
            pending = msg.metadata.num_pending
            if pending is not None:
                metrics.CONSUMER_LAG.labels(durable).set(pending)

    def _not_handled(
        self, durable: str, event: IntegrationEvent, attempt: int | None, error: Exception
    ) -> None:
        """Log a deferral as expected (no traceback), anything else as a failure."""
        attempt = attempt or 1
        fields = {"durable": durable, "type": event.type, "event_id": str(event.event_id)}
        if isinstance(error, RetryLater) and attempt < self.defer_limit:
            log.info("event_deferred", **fields, attempt=attempt, reason=str(error))
            metrics.CONSUMER_DEFERRALS.labels(durable).inc()
            return
        log.error("event_handling_failed", **fields, attempt=attempt, exc_info=error)
        metrics.CONSUMER_FAILURES.labels(durable).inc()

    def watch(self, subject: str, handle: LiveHandler) -> None:
        """Core (non-durable) subscription for live views: every event as it is stored."""
        self._tasks.append(asyncio.create_task(self._watch(subject, handle)))

    async def _watch(self, subject: str, handle: LiveHandler) -> None:
        async def on_message(msg: Msg) -> None:
            event = parse_event(msg.subject, msg.data)
            if event is not None:
                try:
                    await handle(event)
                except Exception:
                    log.exception("live_update_failed", subject=msg.subject)

        assert self.nc
        sub = await self.nc.subscribe(subject, cb=on_message)
        try:
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # -- ephemeral messages and short-lived data -----------------------------------

    async def send_ephemeral(self, subject: str, payload: bytes) -> None:
        """Core NATS only: never stored (subjects outside ``bb.>``)."""
        assert self.nc and not subject.startswith("bb.")
        await self.nc.publish(subject, payload)

    async def subscribe_ephemeral(
        self, subject: str, handle: Callable[[str, bytes], Awaitable[None]]
    ) -> Any:
        assert self.nc

        async def on_message(msg: Msg) -> None:
            await handle(msg.subject, msg.data)

        return await self.nc.subscribe(subject, cb=on_message)

    async def key_value(
        self, bucket: str, ttl_seconds: float | None = None, in_memory: bool = False
    ) -> KeyValue:
        """A KV bucket, created on first use with ``replicas`` replicas (an existing one with
        fewer is raised); ``in_memory`` for data that must never reach a disk (and need not
        survive a restart of all NATS servers at once)."""
        try:
            info = await self.js.stream_info(f"KV_{bucket}")
        except NotFoundError:
            storage = StorageType.MEMORY if in_memory else StorageType.FILE
            kv = await self.js.create_key_value(
                KeyValueConfig(
                    bucket=bucket, ttl=ttl_seconds, storage=storage, replicas=self.replicas
                )
            )
            await self._wait_for_leader(f"KV_{bucket}")
            return kv
        await self._raise_replicas(info)
        return await self.js.key_value(bucket)
