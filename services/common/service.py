"""What every service is at run time: its store, its bus connection, its outbox relay."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from fastapi import APIRouter

from services.common.bus import Bus
from services.common.contracts import IntegrationEvent
from services.common.errors import StatusTable
from services.common.eventstore import ServiceApplication, setup_lock, store_env
from services.common.logging import get_logger
from services.common.natsauth import credentials_for
from services.common.outbox import OutboxRelay
from services.common.reactions import Batched, Durable, IntoApplication, Reaction, wire
from services.common.readiness import PROBE_TIMEOUT, CatchUp, StorePing
from services.common.settings import Settings
from services.common.tasks import BackgroundTasks
from services.common.tokens import TokenSigner

log = get_logger(__name__)


class BaseService(ABC):
    """A service: a name, an application on its own store, routers and event handlers."""

    name: ClassVar[str]
    # Domain exceptions and the HTTP status that answers each (the most specific wins).
    refusals: ClassVar[StatusTable] = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.signer = TokenSigner(settings.signing_key)
        env = store_env(settings, self.name)
        with setup_lock(env):  # replicas starting together create the tables one at a time
            self.app = self.create_application(env)
        self.bus: Bus | None = None
        self.relay: OutboxRelay | None = None
        self.tasks = BackgroundTasks()  # started in on_started, stopped first in stop
        self.startup = CatchUp(self.app, settings.stream_name)
        self.store_ping = StorePing(self.app)
        self._durables: list[str] = []

    @abstractmethod
    def create_application(self, env: dict[str, str]) -> ServiceApplication: ...

    @abstractmethod
    def to_contract(self, domain_event: Any, position: int) -> IntegrationEvent | None: ...

    @abstractmethod
    def routers(self) -> list[APIRouter]: ...

    async def prepare(self, bus: Bus) -> None:
        """Open what the reactions need (KV buckets, live hubs). Override where needed."""

    def reactions(self) -> list[Reaction]:
        """What this service reacts to, in one table (services/common/reactions.py)."""
        return []

    async def on_started(self) -> None:
        """Background work after the bus is up (clocks, seeding). Override where needed."""

    async def start(self, nats_url: str) -> None:
        self.bus = Bus(
            nats_url,
            name=self.name,
            stream=self.settings.stream_name,
            max_age_days=self.settings.stream_max_age_days,
            replicas=self.settings.nats_replicas,
            # Its own NATS user, even beside other services in one process.
            credentials=credentials_for(
                self.name,
                self.settings.nats_user,
                self.settings.nats_password,
                self.settings.nats_credentials_dir,
            ),
        )
        await self.bus.connect()
        self.relay = OutboxRelay(self.app, self.bus, self.to_contract, self.name)
        self.relay.start()
        await self.relay.serve_reads()
        await self.prepare(self.bus)
        reactions = self.reactions()
        self._durables = [r.durable for r in reactions
                          if isinstance(r, IntoApplication | Durable | Batched)]
        wire(reactions, self.bus, self.app, self.settings.stream_name, self.tasks)
        await self.on_started()
        log.info("service_started", service=self.name)

    async def stop(self) -> None:
        await self.tasks.stop()
        await self.store_ping.stop()
        if self.relay:
            await self.relay.stop()
        if self.bus:
            await self.bus.close()
        await asyncio.to_thread(self.app.close)

    def readiness(self) -> dict[str, bool]:
        """What the service knows of itself without asking anyone; ``/readyz`` also asks
        ``relay_caught_up``, ``consumers_caught_up`` and ``store_reachable``."""
        return {
            f"{self.name}.nats": bool(self.bus and self.bus.connected),
            f"{self.name}.outbox": bool(self.relay and self.relay.healthy),
        }

    async def relay_caught_up(self) -> bool:
        """The outbox relay has published what the store held at start (remembered)."""
        relay = self.relay
        if relay is None:
            return False
        try:
            return await asyncio.wait_for(
                self.startup.relay(relay.lease.held, relay.position, relay.tracking_name),
                PROBE_TIMEOUT,
            )
        except Exception as error:
            log.warning("readiness_check_failed", check="relay", error=repr(error))
            return False

    async def consumers_caught_up(self) -> bool:
        """Each durable consumer has processed what the stream held when first asked: ask
        only once every relay of the process has caught up (remembered)."""
        if self.startup.consumers_done or not self._durables:
            return True
        if not (self.bus and self.bus.connected):
            return False
        try:
            return await asyncio.wait_for(
                self.startup.consumers(self.bus.js, self._durables), PROBE_TIMEOUT
            )
        except Exception as error:
            log.warning("readiness_check_failed", check="consumers", error=repr(error))
            return False

    async def store_reachable(self) -> bool:
        return await self.store_ping.reachable()
