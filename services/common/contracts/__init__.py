"""Integration-event contracts: the only thing services share besides the bus.

One module per publishing service. Every event travels as JSON on the subject
``bb.<service>.<event_name>`` and carries only pseudonymous ids: never a
citizen's name, topic, contact data or address.
"""

# Importing the modules registers every contract, so any consumer can parse any event.
from services.common.contracts import audit, booking, media, queue, rooms
from services.common.contracts.base import (
    IntegrationEvent,
    event_id_for,
    parse_event,
    registered_subjects,
)

__all__ = [
    "IntegrationEvent",
    "audit",
    "booking",
    "event_id_for",
    "media",
    "parse_event",
    "queue",
    "registered_subjects",
    "rooms",
]
