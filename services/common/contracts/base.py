"""The envelope every integration event shares, and the registry of contracts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, model_validator

# Fixed namespace: event ids are derived, never minted, so a re-send carries the same id.
EVENT_ID_NAMESPACE = UUID("6f1c3b5e-2a0d-4d8e-9b57-1f0c8e6a4b21")

_REGISTRY: dict[str, type[IntegrationEvent]] = {}


def event_id_for(originator_id: UUID, originator_version: int) -> UUID:
    return uuid5(EVENT_ID_NAMESPACE, f"{originator_id}:{originator_version}")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class IntegrationEvent(BaseModel):
    """Envelope: identity, time, origin and correlation of one stored event."""

    # Tolerant reader: unknown fields from a newer publisher are ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)

    SERVICE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    event_id: UUID
    occurred_at: datetime
    type: str = ""
    version: int = 1
    service: str = ""
    aggregate_id: UUID
    aggregate_version: int
    # Position of the event in the publishing service's notification log:
    # consecutive per service, so a consumer can notice a gap.
    position: int
    correlation_id: str

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.SERVICE and not cls.__name__.startswith("_"):
            _REGISTRY[cls.subject_for()] = cls

    @classmethod
    def subject_for(cls) -> str:
        return f"bb.{cls.SERVICE}.{_snake(cls.__name__)}"

    @model_validator(mode="before")
    @classmethod
    def _fill_type(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data.setdefault("type", cls.__name__)
            data.setdefault("version", cls.VERSION)
            data.setdefault("service", cls.SERVICE)
        return data

    @property
    def subject(self) -> str:
        return self.subject_for()

    def to_wire(self) -> bytes:
        return self.model_dump_json().encode()


def parse_event(subject: str, data: bytes) -> IntegrationEvent | None:
    """The contract for a message, or None for a subject this build does not know."""
    contract = _REGISTRY.get(subject)
    if contract is None:
        return None
    return contract.model_validate_json(data)


def registered_subjects() -> list[str]:
    return sorted(_REGISTRY)
