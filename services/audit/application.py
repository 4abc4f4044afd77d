"""The audit service's own event-sourced state: who viewed the log, which checkpoints it signed.

Both become integration events through the outbox relay (``AuditViewed``,
``AuditCheckpointSigned``). An ``AuditViewed`` comes back over the bus and is appended to
the log like any other event, so every look at the record is itself on the record.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event

from services.common.contracts import audit as contracts
from services.common.eventstore import ServiceApplication
from services.common.mapping import ContractMapper


class DpoView(Aggregate):
    """One read or export of the log by a data protection officer."""

    @event("Viewed")
    def __init__(self, staff_id: str, action: str, target: str, correlation_id: str) -> None:
        self.staff_id = staff_id
        self.action = action
        self.target = target
        self.correlation_id = correlation_id


class SignedCheckpoint(Aggregate):
    """A checkpoint the log signed; one per origin and tree size."""

    @staticmethod
    def create_id(origin: str, tree_size: int) -> UUID:
        return uuid5(NAMESPACE_URL, f"/audit/{origin}/checkpoint/{tree_size}")

    @event("Signed")
    def __init__(self, origin: str, tree_size: int, root_hash: str, checkpoint: str,
                 correlation_id: str) -> None:
        self.origin = origin
        self.tree_size = tree_size
        self.root_hash = root_hash
        self.checkpoint = checkpoint
        self.correlation_id = correlation_id


class AuditTrail(ServiceApplication):
    name = "audit"

    def record_view(self, staff_id: str, action: str, target: str, correlation_id: str) -> UUID:
        view = DpoView(staff_id, action, target, correlation_id)
        self.save(view)
        return view.id

    def record_checkpoint(self, origin: str, size: int, root_hash: str, note: str,
                          correlation_id: str) -> bool:
        """Publish a signed checkpoint once; False if it was recorded before."""
        try:
            self.repository.get(SignedCheckpoint.create_id(origin, size))
            return False
        except AggregateNotFoundError:
            pass
        self.save(SignedCheckpoint(origin, size, root_hash, note, correlation_id))
        return True


# The event classes ``@event`` creates on the aggregates are not known to mypy.
_View: Any = DpoView
_Checkpoint: Any = SignedCheckpoint

to_contract = ContractMapper({
    _View.Viewed: lambda e, env: contracts.AuditViewed(
        **env, staff_id=e.staff_id, action=e.action, target=e.target),
    _Checkpoint.Signed: lambda e, env: contracts.AuditCheckpointSigned(
        **env, origin=e.origin, tree_size=e.tree_size, root_hash=e.root_hash,
        checkpoint=e.checkpoint),
})
