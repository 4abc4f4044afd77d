"""The audit service at run time: the log's store, its consumer, gap filler and checkpoints."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from fastapi import APIRouter, Request

from services.audit.application import AuditTrail, to_contract
from services.audit.completeness import GapFiller
from services.audit.database import Database
from services.audit.export import ExportRangeError
from services.audit.ingest import CHAIN_LENGTH, DURABLE, SUBJECT, LogConsumer
from services.audit.proofs import BundleError
from services.audit.retention import apply_retention
from services.audit.signing import Checkpointer, InconsistentLogError, Signed, load_signer
from services.audit.store import LogStore
from services.common.bus import Bus
from services.common.contracts import IntegrationEvent
from services.common.errors import StatusTable
from services.common.eventstore import ServiceApplication, store_env
from services.common.identity import StaffIdentity
from services.common.logging import current_correlation_id, get_logger, new_correlation_id
from services.common.reactions import Batched, Reaction
from services.common.service import BaseService
from services.common.settings import Settings

log = get_logger(__name__)


class AuditService(BaseService):
    name = "audit"
    refusals: ClassVar[StatusTable] = {
        ExportRangeError: 409,  # a range not (or no longer) held, or not yet signed
        InconsistentLogError: 409,  # the stored log contradicts a signed checkpoint
        BundleError: 409,  # a record's proof would not lead to its signed root
    }

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.db = Database(store_env(settings, self.name))
        self.store = LogStore(self.db)
        self.checkpointer = Checkpointer(self.store, load_signer(settings))
        self.consumer: LogConsumer | None = None
        self.filler: GapFiller | None = None
        CHAIN_LENGTH.set(self.store.size)

    @property
    def trail(self) -> AuditTrail:
        assert isinstance(self.app, AuditTrail)
        return self.app

    def create_application(self, env: dict[str, str]) -> ServiceApplication:
        return AuditTrail(env=env)

    def to_contract(self, domain_event: Any, position: int) -> IntegrationEvent | None:
        return to_contract(domain_event, position)

    def routers(self) -> list[APIRouter]:
        from services.audit.api import router

        return [router]

    async def prepare(self, bus: Bus) -> None:
        self.filler = GapFiller(self.store, bus, self.settings.audit_gap_check_seconds)
        self.consumer = LogConsumer(self.store, bus, on_batch=self.filler.gap_suspected)

    def reactions(self) -> list[Reaction]:
        assert self.consumer is not None
        # Every integration event into the log, a batch per transaction (ingest.py says why
        # it is not a per-event ``Durable``).
        return [Batched(DURABLE, [SUBJECT], self.consumer.run)]

    async def on_started(self) -> None:
        assert self.filler is not None
        self.tasks.start("audit_gap_filler", self.filler.run())
        if not await asyncio.to_thread(self.checkpointer.check_store):
            log.critical("audit_log_inconsistent", reason=self.checkpointer.broken)
        with contextlib.suppress(InconsistentLogError):
            await self.sign_now()
        await asyncio.to_thread(self._publish_unpublished_checkpoints)
        self.tasks.start("audit_checkpoints", self._sign_on_cadence())
        self.tasks.start("audit_retention", self._apply_retention())

    async def stop(self) -> None:
        await super().stop()
        await asyncio.to_thread(self.db.close)

    def readiness(self) -> dict[str, bool]:
        return {
            **super().readiness(),
            "audit.consumer": bool(self.consumer and self.consumer.healthy),
            "audit.consistent": self.checkpointer.broken is None,
        }

    # -- checkpoints -------------------------------------------------------------------------

    async def _sign_on_cadence(self) -> None:
        while True:
            await asyncio.sleep(self.settings.audit_checkpoint_seconds)
            with contextlib.suppress(InconsistentLogError):
                await self.sign_now()

    async def _apply_retention(self) -> None:
        while True:
            try:
                dropped = await asyncio.to_thread(
                    apply_retention, self.store, self.settings.audit_retention_days,
                    self.settings.stream_max_age_days)
                if dropped:
                    log.info("audit_retention_applied", dropped=dropped,
                             anchor=self.store.anchor_size)
            except Exception:
                log.exception("audit_retention_failed")
            await asyncio.sleep(3600)

    async def sign_now(self) -> Signed | None:
        """Sign the tree if it grew and publish the checkpoint (AuditCheckpointSigned)."""
        try:
            signed = await asyncio.to_thread(self.checkpointer.sign_if_grown)
        except InconsistentLogError as error:
            log.critical("audit_log_inconsistent", reason=str(error))
            raise
        if signed is not None:
            await asyncio.to_thread(self._publish, signed, new_correlation_id())
        return signed

    def _publish(self, signed: Signed, correlation_id: str) -> None:
        self.trail.record_checkpoint(self.checkpointer.origin, signed.size, signed.root_b64,
                                     signed.note, correlation_id)

    def _publish_unpublished_checkpoints(self) -> None:
        """A crash between storing a checkpoint and recording its event: publish it now."""
        latest = self.checkpointer.latest()
        if latest is not None:
            self._publish(latest, new_correlation_id())

    # -- who looked ---------------------------------------------------------------------------

    async def record_view(self, staff: StaffIdentity, action: str, target: str = "") -> None:
        """Every read by a DPO is recorded before it is answered (and then appended)."""
        await asyncio.to_thread(self.trail.record_view, staff.staff_id, action, target,
                                current_correlation_id())


async def audit_service(request: Request) -> AuditService:
    return request.app.state.services["audit"]  # type: ignore[no-any-return]
