"""Completeness: every publisher's events are in the log, not only those the bus delivered.

Each event carries its position in its publisher's notification log. Positions of events
internal to a service are never published, so a hole in the positions is not yet a loss.
When the log has seen a position beyond a hole, and periodically for every publisher (a
lost last event leaves no later one to notice it by), the filler reads the publisher's
outbox after the watermark over NATS request/reply (``bbx.outbox.<service>.read``), appends
the events the log lacks (deduplicated by event id), and moves the watermark to the
position the outbox read reached, all in one transaction.

Only events the bus can no longer bring are filled. A publisher's events travel the stream
in the order of their positions, so below a position the log has seen nothing is still on
its way; above it, events may be. A sweep therefore fills up to the highest position seen,
or, where none is seen beyond the watermark, up to where the outbox ended at the sweep
before: an interval later, what the bus has not brought by then is lost. Filling whatever
the outbox held made a flood look like losses: under 2,000 knocks from two queue processes
the audit consumer ran seconds behind, and the filler appended events the bus delivered a
moment later (counted in ``bb_audit_gap_events_filled_total``, which alerts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from prometheus_client import Counter, Gauge

from services.audit.canonical import LogEntry, is_logged
from services.audit.ingest import APPENDED
from services.audit.ownership import owned, refuse
from services.audit.store import LogStore
from services.common.bus import Bus
from services.common.contracts import parse_event, registered_subjects
from services.common.logging import get_logger
from services.common.outbox import read_subject

log = get_logger(__name__)

READ_LIMIT = 500
REQUEST_TIMEOUT = 5.0

GAPS_FILLED = Counter("bb_audit_gap_events_filled_total",
                      "Events the bus did not deliver, read from the publisher's outbox",
                      ["service"])
WATERMARK = Gauge("bb_audit_watermark", "Position through which a publisher is complete",
                  ["service"], multiprocess_mode="max")


def publishers() -> set[str]:
    """Every service that has contracts in this build (``bb.<service>.<event>``)."""
    return {subject.split(".")[1] for subject in registered_subjects()}


class GapFiller:
    def __init__(self, store: LogStore, bus: Bus, interval: float, settle: float = 0.5) -> None:
        self.store = store
        self.bus = bus
        self.interval = interval
        self.settle = settle
        self._wake = asyncio.Event()
        self._outbox_ends: dict[str, int] = {}  # per publisher, as read at the last sweep
        self.filled = 0
        for service in publishers():  # series at 0: the first gap filled counts in rate()
            GAPS_FILLED.labels(service)

    def gap_suspected(self) -> None:
        """Called after each ingested batch; cheap when there is no gap."""
        if self.store.watermarks.gaps():
            self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self.interval
        while True:
            timeout = max(0.0, next_sweep - loop.time())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            sweep = loop.time() >= next_sweep
            if not sweep:
                await asyncio.sleep(self.settle)  # let in-flight messages arrive first
            self._wake.clear()
            services = publishers() | set(self.store.watermarks.through) if sweep \
                else set(self.store.watermarks.gaps())
            for service in sorted(services):
                try:
                    await self.catch_up(service, self._fill_until(service, sweep))
                    if sweep:
                        await self._note_outbox_end(service)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.warning("audit_gap_check_failed", service=service, error=repr(error))
            if sweep:
                next_sweep = loop.time() + self.interval

    def _fill_until(self, service: str, sweep: bool) -> int:
        """The position through which the bus can no longer bring what the log lacks."""
        seen = max(self.store.watermarks.beyond.get(service) or {0})
        return max(seen, self._outbox_ends.get(service, 0)) if sweep else seen

    async def _note_outbox_end(self, service: str) -> None:
        reply = await self._read(service, self.store.watermarks.through.get(service, 0))
        if reply is not None:
            self._outbox_ends[service] = reply[1]

    async def catch_up(self, service: str, until: int) -> int:
        """Read ``service``'s outbox after the watermark through position ``until``; the
        number of events added."""
        added = 0
        while True:
            after = self.store.watermarks.through.get(service, 0)
            if after >= until:
                return added
            reply = await self._read(service, after)
            if reply is None:
                return added
            events, through = reply
            if through > until:  # what lies beyond may still be on the bus
                events, through = [e for e in events if e.position <= until], until
            if through <= after and not events:
                return added
            entries = [LogEntry.of(e) for e in events if is_logged(e)]
            appended = await asyncio.to_thread(
                self.store.append, entries, accounted={service: through})
            if appended:
                added += len(appended)
                self.filled += len(appended)
                GAPS_FILLED.labels(service).inc(len(appended))
                APPENDED.labels("outbox").inc(len(appended))
                log.warning("audit_gap_filled", service=service, events=len(appended),
                            after=after, through=through)
            WATERMARK.labels(service).set(self.store.watermarks.through.get(service, 0))
            if through >= until or through == after:
                return added

    async def _read(self, service: str, after: int) -> tuple[list, int] | None:  # type: ignore[type-arg]
        assert self.bus.nc is not None
        request = json.dumps({"after": after, "limit": READ_LIMIT}).encode()
        try:
            msg = await self.bus.nc.request(read_subject(service), request,
                                            timeout=REQUEST_TIMEOUT)
        except (NoRespondersError, NatsTimeoutError):
            return None  # the publisher is not running now; the next sweep asks again
        reply = json.loads(msg.data)
        events = []
        for raw in reply.get("events", []):
            # Only the service itself may answer on its read subject: what it tells about
            # another service is refused, like a foreign event on its subject.
            subject = f"bb.{service}.{_snake(str(raw.get('type', '')))}"
            event = parse_event(subject, json.dumps(raw).encode())
            if event is None:
                continue
            if not owned(subject, event):
                refuse(subject, event, "outbox", f"answered by {service}'s outbox")
                continue
            events.append(event)
        return events, int(reply.get("through", after))


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower()
                   for i, c in enumerate(name))
