"""What a service reacts to, declared in one table.

Each service lists its reactions in ``BaseService.reactions()``; ``BaseService.start``
wires them. Four kinds, one line each:

- ``IntoApplication``: other services' events into the application's ``policy``,
  exactly once (the tracking record, ``tracked.upstream_tracking``, is committed with
  what the policy changed; an event re-sent after the stream's duplicate window is
  recognised by it too).
- ``Durable``: a durable consumer with a handler of its own, at least once; the handler
  must be idempotent (e.g. writing a key that a redelivery writes again).
- ``Live``: every event as it is stored, at most once, for views that also catch up
  from the store (waiting rooms, live streams).
- ``Batched``: a durable consumer with a loop of its own that commits and acknowledges
  whole batches (audit's log); started with the service's tasks, stopped with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.bus import Bus, EventHandler, LiveHandler
from services.common.contracts import IntegrationEvent
from services.common.eventstore import ServiceApplication
from services.common.tasks import BackgroundTasks
from services.common.tracked import upstream_tracking


@dataclass(frozen=True)
class IntoApplication:
    durable: str
    subjects: Sequence[str]


@dataclass(frozen=True)
class Durable:
    durable: str
    subjects: Sequence[str]
    handle: EventHandler


@dataclass(frozen=True)
class Live:
    subject: str
    handle: LiveHandler


@dataclass(frozen=True)
class Batched:
    """A durable consumer that fetches, commits and acknowledges whole batches itself,
    where one event per transaction (``Durable``) would be too slow. ``run`` is its loop;
    ``durable`` and ``subjects`` say what it reads, as in the other kinds."""

    durable: str
    subjects: Sequence[str]
    run: Callable[[], Coroutine[Any, Any, None]]


Reaction = IntoApplication | Durable | Live | Batched


def wire(
    reactions: Sequence[Reaction],
    bus: Bus,
    app: ServiceApplication,
    stream: str,
    tasks: BackgroundTasks | None = None,
) -> None:
    for reaction in reactions:
        match reaction:
            case IntoApplication(durable, subjects):
                bus.consume(durable, list(subjects), into_application(app, stream, durable))
            case Durable(durable, subjects, handle):
                bus.consume(durable, list(subjects), handle)
            case Live(subject, handle):
                bus.watch(subject, handle)
            case Batched(durable, _, run):
                assert tasks is not None, "a Batched reaction runs among the service's tasks"
                tasks.start(f"consumer:{durable}", run())


def into_application(
    app: ServiceApplication, stream: str, durable: str
) -> Callable[[IntegrationEvent, int], Awaitable[None]]:
    """Each event through the application's policy, with its tracking record."""

    async def handle(event: IntegrationEvent, sequence: int) -> None:
        tracking = upstream_tracking(stream, durable, event)
        await asyncio.to_thread(app.handle_upstream, event, tracking)

    return handle
