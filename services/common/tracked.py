"""Exactly once at a consumer: the tracking record an upstream event is processed with.

JetStream drops a re-sent event only within its duplicate window; a relay that re-sends
later (its confirmed position lost, a store restored) puts the event on the stream again,
under a new stream sequence. So a consumer recognises an event by what the publisher
gave it, not by where it landed on the stream: ``Tracking("<stream>/<durable>/<service>",
position)``, the position being the event's place in the publishing service's notification
log (``IntegrationEvent.position``), which a re-send carries unchanged. This is the
eventsourcing library's own model of tracking an upstream application's log.

``IntoApplication`` runs the application's synchronous policy with it. A ``Durable``
handler that must first await something (a KV bucket, say) and then commits its change
with the tracking record uses ``tracked``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from eventsourcing.persistence import Tracking

from services.common.bus import EventHandler
from services.common.contracts import IntegrationEvent

TrackedHandler = Callable[[IntegrationEvent, Tracking], Awaitable[None]]


def upstream_tracking(stream: str, durable: str, event: IntegrationEvent) -> Tracking:
    """The record that ``event`` was processed by the consumer ``durable``."""
    return Tracking(f"{stream}/{durable}/{event.service}", event.position)


def tracked(stream: str, durable: str, handle: TrackedHandler) -> EventHandler:
    """``handle`` as a durable consumer's handler, given each event's tracking record."""

    async def with_tracking(event: IntegrationEvent, sequence: int) -> None:
        await handle(event, upstream_tracking(stream, durable, event))

    return with_tracking
