"""The queue's limits on knocks, against one client filling a line, or anyone a full one.

Before a knock is taken:

* the department's line holds fewer than ``line_limit`` (500) waiting;
* the client has knocked fewer than ``knocks_per_client_per_minute`` (10) times in the
  last minute: counted in NATS (``SharedRateLimit``) for all queue processes together;
  only a client's first knock in a minute at a process is counted without being checked
  first, so a client gets at most the limit plus the processes less one;
* the client has fewer than ``waiting_tickets_per_client`` (3) tickets waiting in it.

The last two know the client by a pseudonymous tag of its address (services/common/
clients.py), kept with what the citizen typed in the ``bb_visits`` bucket and followed by
every queue process like the rest of it (which also tells each process of the client's
knocks elsewhere); the counts of waiting tickets and of the line come from the waiting
rooms every process holds. So those hold across processes up to the moment a knock at
one process takes to reach the others (milliseconds): knocks racing within it at
different processes may pass the same check, and the per-minute count bounds them all.

Staff see which waiting tickets share an address (the tag, never the address) and may
decline them together.
"""

from __future__ import annotations

from collections import Counter as Tally
from uuid import UUID

from prometheus_client import Counter

from services.common.errors import too_many_requests
from services.common.ratelimit import SharedRateLimit
from services.common.settings import Settings
from services.queue.waiting import Waiting, WaitingRooms

RATE_BUCKET = "bb_knock_rate"
LINE_FULL_RETRY = 300  # seconds: a full line is worth trying again in a few minutes
WAITING_RETRY = 60

REFUSED = Counter("bb_queue_knocks_refused_total", "Knocks refused by a limit", ["reason"])


class KnockLimits:
    def __init__(self, settings: Settings, waiting: WaitingRooms) -> None:
        self.line_limit = settings.line_limit
        self.per_client = settings.waiting_tickets_per_client
        self.rate = SharedRateLimit(RATE_BUCKET, settings.knocks_per_client_per_minute, 60.0)
        self._waiting = waiting
        # client -> ticket -> department (as text: parsed only when needed)
        self._tickets_of: dict[str, dict[UUID, str]] = {}
        self._client_of: dict[UUID, str] = {}

    # -- who knocked from where (fed with the visit data) -------------------------------------

    def seen(self, ticket_id: UUID, visit: dict[str, object], stored: float) -> None:
        client, department = visit.get("client"), visit.get("department")
        if not isinstance(client, str) or not isinstance(department, str):
            return
        self.rate.seen(client, stored)
        self._client_of[ticket_id] = client
        self._tickets_of.setdefault(client, {})[ticket_id] = department

    def forget(self, ticket_id: UUID) -> None:
        client = self._client_of.pop(ticket_id, None)
        tickets = self._tickets_of.get(client or "")
        if tickets is not None:
            tickets.pop(ticket_id, None)
            if not tickets:
                del self._tickets_of[client or ""]

    def client_of(self, ticket_id: UUID) -> str | None:
        return self._client_of.get(ticket_id)

    def is_known(self, ticket_id: UUID) -> bool:
        """A knock sent again (its ticket exists): answered as before, never limited."""
        return ticket_id in self._client_of or self._waiting.department_of(ticket_id) is not None

    # -- the checks ------------------------------------------------------------------------------

    def line_full(self, department_id: UUID) -> bool:
        return 0 < self.line_limit <= self._waiting.count(department_id)

    async def check(self, department_id: UUID, ticket_id: UUID, client: str) -> None:
        """Refuse the knock (429 with Retry-After) when a limit says so."""
        if self.is_known(ticket_id):
            return
        if self.line_full(department_id):
            REFUSED.labels("line_full").inc()
            raise too_many_requests(
                "The line is full at the moment. Please come back later.",
                LINE_FULL_RETRY,
                "line_full",
            )
        wait = await self.rate.hit(client)
        if wait:
            REFUSED.labels("too_many_knocks").inc()
            raise too_many_requests(
                f"Too many knocks from your connection. Please try again in {wait} seconds.",
                wait,
                "too_many_knocks",
            )
        if self.per_client > 0 and self.waiting_from(client, department_id) >= self.per_client:
            REFUSED.labels("too_many_waiting").inc()
            raise too_many_requests(
                f"You already have {self.per_client} tickets waiting in this line. Please wait "
                "until you are called, or leave the line with one of them first.",
                WAITING_RETRY,
                "too_many_waiting",
            )

    def waiting_from(self, client: str, department_id: UUID) -> int:
        """Tickets of the client waiting in the department, or knocked a moment ago at
        another process (known by their visit data, their Knocked event not yet seen)."""
        count = 0
        tickets = self._tickets_of.get(client, {})
        for ticket_id, knocked_in in list(tickets.items()):
            where = self._waiting.department_of(ticket_id)
            if where is None:
                if self._waiting.has_seen(ticket_id, 1):
                    continue  # it has left the line
                count += knocked_in == str(department_id)
            elif where == department_id:
                count += 1
        return count

    # -- what staff see --------------------------------------------------------------------------

    def shared_addresses(self, line: list[Waiting]) -> dict[str, int]:
        """Clients with more than one ticket in this line: tag -> how many."""
        tally = Tally(self._client_of.get(entry.ticket_id) for entry in line)
        return {client: n for client, n in tally.items() if client is not None and n > 1}

    def tickets_from(self, client: str, line: list[Waiting]) -> list[UUID]:
        return [e.ticket_id for e in line if self._client_of.get(e.ticket_id) == client]

