"""Events published by the audit service (the transparency log and who looked at it)."""

from __future__ import annotations

from typing import Literal

from services.common.contracts.base import IntegrationEvent

ViewAction = Literal[
    "consultations", "timeline", "statistics", "search", "records", "proof", "export",
    "verify", "views",
]


class _AuditEvent(IntegrationEvent):
    SERVICE = "audit"


class AuditCheckpointSigned(_AuditEvent):
    """The log signed a C2SP tlog-checkpoint: keep a copy elsewhere to pin its state."""

    origin: str
    tree_size: int
    root_hash: str  # base64, as in the checkpoint
    checkpoint: str  # the signed note, verbatim


class AuditViewed(_AuditEvent):
    """A data protection officer read or exported part of the log (ids only, no content)."""

    staff_id: str
    action: ViewAction
    # What was asked for: ids, dates and index ranges only, e.g. "department=…;date=…".
    target: str = ""
