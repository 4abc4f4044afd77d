"""The rooms service at run time: store, bus, office clock, demo seed, sign-in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import nats.errors
from fastapi import APIRouter, Request

from services.common.bus import Bus
from services.common.contracts import IntegrationEvent
from services.common.contracts.rooms import InvitationRevoked
from services.common.denylist import Denylist
from services.common.errors import StatusTable
from services.common.eventstore import ServiceApplication, setup_lock, store_env
from services.common.identity import LocalAccounts
from services.common.logging import get_logger, new_correlation_id
from services.common.reactions import Durable, IntoApplication, Reaction
from services.common.service import BaseService
from services.common.settings import Settings
from services.common.signin import end_sessions_on_account_changes
from services.common.throttle import SignInThrottle
from services.common.tokens import DERIVED_FROM
from services.rooms import seed
from services.rooms.application import Rooms, UnknownConsultation, UnknownDepartment, to_contract
from services.rooms.domain import (
    Consultation,
    Department,
    DomainError,
    InvalidOpeningHours,
    InvitationLapsed,
    InvitationWithdrawn,
)

log = get_logger(__name__)


class RoomsService(BaseService):
    name = "rooms"
    refusals: ClassVar[StatusTable] = {
        UnknownDepartment: 404,
        UnknownConsultation: 404,
        InvalidOpeningHours: 422,
        InvitationWithdrawn: 410,  # the link is gone for good: ask for a new one
        InvitationLapsed: 410,
        DomainError: 409,
    }

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        identity = store_env(settings, "identity")
        with setup_lock(identity):
            self.accounts = LocalAccounts(env=identity)
        self.throttle = SignInThrottle(settings)
        self._denylist: Denylist | None = None

    @property
    def rooms(self) -> Rooms:
        assert isinstance(self.app, Rooms)
        return self.app

    def create_application(self, env: dict[str, str]) -> ServiceApplication:
        return Rooms(env=env)

    def to_contract(self, domain_event: Any, position: int) -> IntegrationEvent | None:
        return to_contract(domain_event, position)

    def routers(self) -> list[APIRouter]:
        from services.common.signin import signin_router
        from services.rooms.api import router

        return [router, signin_router(self.accounts, self.throttle)]

    async def prepare(self, bus: Bus) -> None:
        self._denylist = await Denylist.open(bus, self.settings)
        await self.throttle.start(bus)

    def reactions(self) -> list[Reaction]:
        return [
            # An admitted ticket opens its consultation (Rooms.policy), exactly once.
            IntoApplication("rooms", ["bb.queue.admitted"]),
            # A withdrawn invitation onto the shared denylist, should the request's own
            # write have failed (``revoke``); writing it twice changes nothing.
            Durable("rooms-denylist", [InvitationRevoked.subject_for()], self._deny),
        ]

    async def on_started(self) -> None:
        if self.settings.seed_demo:
            await asyncio.to_thread(seed_demo_district, self.rooms, self.accounts)
        # The offices' first opening before the service counts as started: a /readyz that
        # says ready must not list them all closed until the clock's first round.
        await asyncio.to_thread(
            self.rooms.follow_schedules, datetime.now(UTC), new_correlation_id()
        )
        assert self.bus is not None
        self.tasks.start("office_clock", self._run_office_clock())
        self.tasks.start(
            "account_changes",
            end_sessions_on_account_changes(self.accounts, self.bus, self.settings),
        )

    async def stop(self) -> None:
        await super().stop()
        await asyncio.to_thread(self.accounts.close)

    async def _run_office_clock(self) -> None:
        """Open and close every office as its opening hours say."""
        while True:
            try:
                await asyncio.to_thread(
                    self.rooms.follow_schedules, datetime.now(UTC), new_correlation_id()
                )
            except Exception:
                log.exception("office_clock_failed")
            await asyncio.sleep(self.settings.office_clock_seconds)

    # -- capabilities ---------------------------------------------------------------------

    def participant_pass(
        self,
        consultation: Consultation,
        participant_id: UUID,
        role: str,
        invitation_id: UUID | None = None,
        display_name: str | None = None,
        language: str | None = None,
    ) -> dict[str, Any]:
        """The media token. Joined by invitation, it names the invitation it derives from:
        withdrawing the invitation revokes it too (media checks the denylist for it).
        The name and language the others see travel in it (claims ``name``, ``lang``):
        media shows them in the room; they are in no event and no log."""
        ttl = self.settings.participant_token_hours * 3600
        derived = {DERIVED_FROM: str(invitation_id)} if invitation_id else {}
        if display_name:
            derived["name"] = display_name
        if language:
            derived["lang"] = language
        token = self.signer.issue(
            "participant",
            str(participant_id),
            ttl,
            consultation=str(consultation.id),
            department=str(consultation.department_id),
            role=role,
            **derived,
        )
        claims = self.signer.verify(token, "participant")
        return {
            "consultation_id": consultation.id,
            "participant_id": participant_id,
            "role": role,
            "participant_token": token,
            "expires_at": claims.expires_at,
            "media_path": f"/api/v1/media/consultations/{consultation.id}",
            "display_name": display_name,
            "language": language,
        }

    def invitation(self, consultation_id: UUID, invitation_id: UUID) -> dict[str, Any]:
        ttl = self.settings.participant_token_hours * 3600
        token = self.signer.issue(
            "invitation", str(invitation_id), ttl, consultation=str(consultation_id)
        )
        claims = self.signer.verify(token, "invitation")
        base = self.settings.public_url.rstrip("/")
        return {
            "invitation_id": invitation_id,
            "token": token,
            "expires_at": claims.expires_at,
            # The token rides in the fragment: browsers never send it to a server or a log.
            "link": f"{base}/invite/{consultation_id}#token={token}",
        }

    async def revoke(self, invitation_id: UUID) -> None:
        """Onto the shared denylist at once. Should NATS not take it now, the consumer of
        the stored InvitationRevoked puts it there as soon as it can (``_deny``)."""
        try:
            await self._revocations().revoke(str(invitation_id))
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("denylist_write_deferred", invitation_id=str(invitation_id),
                        error=type(error).__name__)

    async def _deny(self, event: IntegrationEvent, sequence: int) -> None:
        assert isinstance(event, InvitationRevoked)
        await self._revocations().revoke(str(event.invitation_id))

    async def is_revoked(self, invitation_id: str) -> bool:
        """On the shared denylist. While NATS cannot be asked, rooms' own record of the
        consultation decides instead (it refuses a withdrawn invitation too)."""
        return await self._revocations().is_revoked(invitation_id)

    def _revocations(self) -> Denylist:
        assert self._denylist is not None
        return self._denylist


async def rooms_service(request: Request) -> RoomsService:
    return request.app.state.services["rooms"]  # type: ignore[no-any-return]


def seed_demo_district(rooms: Rooms, accounts: LocalAccounts) -> None:
    """Register the demo departments and staff; changes nothing when run again."""
    correlation_id = new_correlation_id()
    known = {s.staff_id for s in accounts.list()}
    for username, display_name, roles, _ in seed.STAFF:
        if username not in known:
            accounts.add(username, display_name, seed.DEMO_PASSWORD, roles)
    for department in seed.DEPARTMENTS:
        department_id = rooms.register_department(
            department["slug"], department["profile"], department["weekly"], [], correlation_id
        )
        for username, _, _, memberships in seed.STAFF:
            role = memberships.get(department["slug"])
            if role:
                rooms.assign_staff(department_id, username, role, correlation_id)
    log.info("demo_district_seeded", departments=len(seed.DEPARTMENTS), staff=len(seed.STAFF))


__all__ = ["Department", "RoomsService", "rooms_service", "seed_demo_district"]
