"""Withdrawn invitations in media: a participant token derived from one (its ``inv``
claim) is refused on joining, and whoever is in a room by one is dropped the moment
staff withdraw it.

Every replica watches the rooms service's InvitationRevoked live and drops its own
sessions of that invitation; a join asks the shared denylist. While NATS cannot be
asked, the withdrawals this replica saw live still refuse.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.common.bus import Bus
from services.common.contracts import IntegrationEvent
from services.common.contracts.rooms import InvitationRevoked
from services.common.denylist import Denylist
from services.common.logging import get_logger
from services.common.settings import Settings
from services.media.signalling import REASON_REVOKED, CloseCode, Refused, SignallingSession

log = get_logger(__name__)

SEEN_KEPT = 10_000  # withdrawals remembered here, newest kept
WITHDRAWN = "the invitation has been withdrawn"


class Revocations:
    def __init__(self) -> None:
        self._denylist: Denylist | None = None
        self._seen: dict[str, None] = {}  # withdrawn invitations seen live, in order
        self._sessions: dict[str, set[SignallingSession]] = {}

    async def open(self, bus: Bus, settings: Settings) -> None:
        """Open the shared denylist; ``withdrawn_live`` follows InvitationRevoked."""
        self._denylist = await Denylist.open(bus, settings)

    async def is_revoked(self, invitation: str) -> bool:
        if invitation in self._seen:
            return True
        assert self._denylist is not None
        return await self._denylist.is_revoked(invitation)

    async def refuse_if_withdrawn(self, invitation: str | None) -> None:
        if invitation is not None and await self.is_revoked(invitation):
            raise Refused(CloseCode.TOKEN_REVOKED, WITHDRAWN)

    @asynccontextmanager
    async def guard(self, session: SignallingSession) -> AsyncIterator[None]:
        """Around a session whose token passed ``refuse_if_withdrawn``: dropped when its
        invitation is withdrawn. A withdrawal seen live since that check refuses it here
        (its event came before the session was followed)."""
        invitation = session.invitation
        if invitation is None:
            yield
            return
        sessions = self._sessions.setdefault(invitation, set())
        sessions.add(session)
        try:
            if invitation in self._seen:
                raise Refused(CloseCode.TOKEN_REVOKED, WITHDRAWN)
            yield
        finally:
            sessions.discard(session)
            if not sessions and self._sessions.get(invitation) is sessions:
                del self._sessions[invitation]

    async def withdrawn_live(self, event: IntegrationEvent) -> None:
        if not isinstance(event, InvitationRevoked):
            return
        invitation = str(event.invitation_id)
        self._seen[invitation] = None
        while len(self._seen) > SEEN_KEPT:
            del self._seen[next(iter(self._seen))]
        for session in list(self._sessions.get(invitation, ())):
            log.info("media_participant_dropped", reason=REASON_REVOKED,
                     consultation=str(event.consultation_id))
            await session.drop(REASON_REVOKED)
