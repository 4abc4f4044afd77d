"""The leaf data of the log: a canonical encoding of one integration event.

The leaf is the event's contract (as parsed by this build, so fields a contract does not
declare never reach the log) dumped to JSON with sorted keys, no whitespace and UTF-8:
the same event always yields the same bytes, whichever service or relay sent it and
whether it arrived over the bus or was read back from the publisher's outbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.audit.merkle import leaf_hash
from services.common.contracts import IntegrationEvent

# Contracts that describe the log itself are not leaves of it: a signed checkpoint as a
# leaf would grow the tree it signs, and the cadence would sign for ever.
NOT_LOGGED = frozenset({"AuditCheckpointSigned"})

# Id fields copied into indexed columns so the DPO's queries need not scan the log.
_INDEXED = ("department_id", "consultation_id", "ticket_id", "appointment_id")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (RFC 8785-like for the JSON our contracts produce)."""
    return _ENCODER.encode(value).encode()


def canonical_event(event: IntegrationEvent) -> bytes:
    return canonical_json(event.model_dump(mode="json"))


@dataclass(frozen=True)
class LogEntry:
    """One event ready to be appended: its leaf data and hash and the columns for queries."""

    event_id: str
    service: str
    position: int
    type: str
    occurred_at: str
    data: bytes
    leaf: bytes
    department_id: str | None = None
    consultation_id: str | None = None
    ticket_id: str | None = None
    appointment_id: str | None = None

    @classmethod
    def of(cls, event: IntegrationEvent) -> LogEntry:
        # pydantic's JSON encoder is the fast way to the JSON types; then sort the keys
        fields = json.loads(event.model_dump_json())
        data = canonical_json(fields)
        indexed = {name: _text(fields.get(name)) for name in _INDEXED}
        if indexed["department_id"] is None:  # a transfer counts for the department it left
            indexed["department_id"] = _text(fields.get("from_department_id"))
        return cls(
            event_id=fields["event_id"],
            service=event.service,
            position=event.position,
            type=event.type,
            occurred_at=_fixed_width(fields["occurred_at"], event.occurred_at),
            data=data,
            leaf=leaf_hash(data),
            **indexed,
        )


def is_logged(event: IntegrationEvent) -> bool:
    return event.type not in NOT_LOGGED


def utc_text(moment: datetime) -> str:
    """Fixed-width UTC time, so that comparing the strings compares the times."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fixed_width(text: str, moment: datetime) -> str:
    if len(text) == 27 and text.endswith("Z"):  # pydantic's UTC form with microseconds
        return text
    return utc_text(moment)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
