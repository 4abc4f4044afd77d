"""From a service's stored domain events to the integration events it publishes.

One table per service, keyed by the domain event's class (not its name: a typo is an
``AttributeError`` at import, never a silent miss). Every event class of every aggregate
is either mapped or declared internal; ``unmapped`` lets a unit test prove it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from eventsourcing.domain import CanInitAggregate, CanMutateAggregate, _created_event_classes

from services.common.contracts import IntegrationEvent
from services.common.outbox import envelope

Build = Callable[[Any, dict[str, Any]], IntegrationEvent]


class ContractMapper:
    """``mapper(domain_event, position)`` is the contract to publish, or None (internal)."""

    def __init__(self, builds: dict[type[Any], Build], internal: Iterable[type[Any]] = ()) -> None:
        self._builds = dict(builds)
        self._internal = frozenset(internal)
        overlap = self._internal & self._builds.keys()
        if overlap:
            raise ValueError(f"both mapped and internal: {sorted(c.__qualname__ for c in overlap)}")

    def __call__(self, domain_event: Any, position: int) -> IntegrationEvent | None:
        build = self._builds.get(type(domain_event))
        if build is None:
            return None
        return build(domain_event, envelope(domain_event, position))

    def maps(self, event_class: type[Any]) -> bool:
        return event_class in self._builds

    def unmapped(self, *aggregates: type[Any]) -> list[str]:
        """The aggregates' event classes this mapper neither maps nor declares internal."""
        return sorted(
            cls.__qualname__
            for cls in domain_event_classes(*aggregates)
            if cls not in self._builds and cls not in self._internal
        )


def domain_event_classes(*aggregates: type[Any]) -> list[type[Any]]:
    """The event classes an aggregate class stores: its ``@event`` and nested classes,
    without the bases others derive from (``Event``, an unused ``Created``)."""
    found: list[type[Any]] = []
    for aggregate in aggregates:
        creators = set(_created_event_classes.get(aggregate, ()))
        for value in vars(aggregate).values():
            if (
                isinstance(value, type)
                and issubclass(value, CanMutateAggregate)
                and value not in found
                and (not creators or value in creators or not _is_creation(value))
            ):
                found.append(value)
    return [cls for cls in found if not any(o is not cls and issubclass(o, cls) for o in found)]


def _is_creation(cls: type[Any]) -> bool:
    return issubclass(cls, CanInitAggregate)
