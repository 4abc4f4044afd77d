"""An event enters the log only if the service that owns its contract sent it.

On NATS each service may publish only under ``bb.<service>.>`` (services/common/
natsaccess.py), so the subject names the sender. What the message says about itself
(``service``, ``type``) is the sender's claim: an event is accepted only when that claim,
the subject and the contract registered for the subject all name the same service and
event. Anything else (a rooms user publishing a payload that calls itself a queue
``Declined``, an outbox answer about another service) is refused: logged, counted in
``bb_audit_refused_events_total`` and never recorded.
"""

from __future__ import annotations

from prometheus_client import Counter

from services.common.contracts import IntegrationEvent
from services.common.logging import get_logger

log = get_logger(__name__)

REFUSED = Counter(
    "bb_audit_refused_events_total",
    "Events refused by the audit log: not sent by the service that owns their contract",
    ["service", "via"],
)


def sender_of(subject: str) -> str | None:
    """The service whose NATS user alone may publish on ``subject`` (``bb.<service>.…``)."""
    parts = subject.split(".")
    if len(parts) < 3 or parts[0] != "bb":
        return None
    return parts[1]


def owned(subject: str, event: IntegrationEvent) -> bool:
    contract = type(event)
    sender = sender_of(subject)
    return (
        sender is not None
        and subject == contract.subject_for()
        and sender == contract.SERVICE
        and event.service == sender
        and event.type == contract.__name__
    )


def refuse(subject: str, event: IntegrationEvent | None, via: str, reason: str) -> None:
    sender = sender_of(subject) or "unknown"
    REFUSED.labels(sender, via).inc()
    log.error(
        "audit_event_refused",
        subject=subject,
        via=via,
        reason=reason,
        claimed_service=event.service if event else None,
        claimed_type=event.type if event else None,
        event_id=str(event.event_id) if event else None,
    )
