"""The shared denylist of revoked capabilities, a NATS key-value bucket.

Keyed by what a token is for (an invitation's id): every token issued for it, and every
token derived from it (``tokens.DERIVED_FROM``), is refused once the key is here. Rooms
writes it when staff withdraw an invitation; any service that accepts such tokens reads
it (media, when a participant joins a room). Entries outlive every token they can
refuse: twice a participant token's lifetime.

Should NATS not answer within ``WAIT_SECONDS``, a look-up says "not revoked" and logs a
warning: each service decides from its own record meanwhile (rooms from the
consultation's, media from the revocations it saw live).
"""

from __future__ import annotations

import asyncio

import nats.errors
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from services.common.bus import Bus
from services.common.logging import get_logger
from services.common.settings import Settings

log = get_logger(__name__)

BUCKET = "bb_revoked"
WAIT_SECONDS = 2.0


class Denylist:
    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket

    @classmethod
    async def open(cls, bus: Bus, settings: Settings) -> Denylist:
        ttl = settings.participant_token_hours * 3600 * 2
        return cls(await bus.key_value(BUCKET, ttl_seconds=ttl))

    async def revoke(self, key: str) -> None:
        """Raises what NATS raises (or TimeoutError): the caller decides how to retry."""
        await asyncio.wait_for(self._bucket.put(key, b"revoked"), WAIT_SECONDS)

    async def is_revoked(self, key: str) -> bool:
        try:
            await asyncio.wait_for(self._bucket.get(key), WAIT_SECONDS)
        except KeyNotFoundError:
            return False
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("denylist_unreachable", error=type(error).__name__)
            return False
        return True
