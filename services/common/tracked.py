"""Exactly once for a ``Durable`` handler that awaits before it writes.

``IntoApplication`` runs the application's synchronous policy. A handler that must
first await something (a KV bucket, say) and then commits its change with the
event's tracking record uses ``tracked``: it gets the ``Tracking`` built the same
way (``<stream>/<durable>``, the event's stream sequence) instead of a bare sequence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from eventsourcing.persistence import Tracking

from services.common.bus import EventHandler
from services.common.contracts import IntegrationEvent

TrackedHandler = Callable[[IntegrationEvent, Tracking], Awaitable[None]]


def tracked(stream: str, durable: str, handle: TrackedHandler) -> EventHandler:
    """``handle`` as a durable consumer's handler, given each event's tracking record."""

    async def with_tracking(event: IntegrationEvent, sequence: int) -> None:
        await handle(event, Tracking(f"{stream}/{durable}", sequence))

    return with_tracking
