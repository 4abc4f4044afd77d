"""The bus is closed: `buergerbuero up` starts its NATS server with one user per service,
each allowed only its own events, buckets and subjects, and the audit log records an
event only from the service that owns it.

Every test runs against `up` as the README starts it (its own embedded NATS), once in the
default process tree (queue processes passing routes on to the core process) and once
in one process.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError

from tests.conftest import SystemProcess
from tests.helpers import StaffClient, eventually, knock, open_department

pytestmark = pytest.mark.timeout(240)

VIOLATION = re.compile(r"(Publish|Subscription) Violation")


@pytest.fixture(scope="module", params=["2", "0"], ids=["process-tree", "one-process"])
def system(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[SystemProcess]:
    data = Path(tmp_path_factory.mktemp("secured"))
    # No BB_NATS_URL: `up` starts (and secures) its own NATS server, as in the README.
    system = SystemProcess(data, "", args=["up", "--queue-processes", request.param])
    system.start(timeout=90)
    try:
        yield system
    finally:
        system.stop()


def nats_url(system: SystemProcess) -> str:
    config = (system.data_dir / "nats" / "nats-server.conf").read_text()
    listen = re.search(r'listen: "([^"]+)"', config)
    assert listen
    return f"nats://{listen.group(1)}"


def credentials(system: SystemProcess, service: str) -> dict[str, str]:
    path = system.data_dir / "nats" / "credentials" / f"{service}.json"
    assert path.stat().st_mode & 0o777 == 0o600
    return dict(json.loads(path.read_text()))


def violations(system: SystemProcess) -> list[str]:
    log = (system.data_dir / "nats" / "nats-server.log").read_text()
    return [line for line in log.splitlines() if VIOLATION.search(line)]


class Connection:
    """A client as one service's user, collecting what the server refused."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: Client | None = None

    async def open(self, url: str, login: dict[str, str] | None, prefix: str) -> Client:
        async def on_error(error: Exception) -> None:
            self.errors.append(str(error))

        self.nc = await nats.connect(
            url, error_cb=on_error, allow_reconnect=False, inbox_prefix=prefix,
            **({"user": login["user"], "password": login["password"]} if login else {}),
        )
        return self.nc

    async def refused(self, text: str) -> bool:
        assert self.nc is not None
        for _ in range(50):
            await self.nc.flush()
            if any(text.lower() in error.lower() for error in self.errors):
                return True
            await asyncio.sleep(0.1)
        return False


@pytest.fixture
async def connect(system: SystemProcess) -> AsyncIterator[Any]:
    opened: list[Connection] = []

    async def as_service(service: str) -> tuple[Client, Connection]:
        connection = Connection()
        opened.append(connection)
        client = await connection.open(
            nats_url(system), credentials(system, service), f"_INBOX.{service}")
        return client, connection

    yield as_service
    for connection in opened:
        if connection.nc and not connection.nc.is_closed:
            await connection.nc.close()


def a_visit(system: SystemProcess) -> dict[str, Any]:
    """A citizen with a name knocks, is admitted, joins; a note, an invitation withdrawn."""
    citizen = system.client()
    dept = open_department(citizen, "demo")
    ticket = knock(citizen, dept, display_name="Erika Geheim", topic="antrag")
    waiting = knock(citizen, dept, display_name="Hans Wartend")
    anna = StaffClient(f"{system.base}/api/v1", "anna")
    sent = anna.post(f"/tickets/{waiting['ticket_id']}/message", {"text": "Gleich geht's los"})
    assert sent.status_code == 202, sent.text
    assert anna.post(f"/tickets/{ticket['ticket_id']}/admit").status_code == 200

    def consultation() -> str | None:
        view = citizen.get(f"/tickets/{ticket['ticket_id']}",
                           headers={"Authorization": f"Bearer {ticket['token']}"}).json()
        return view.get("consultation_id")

    consultation_id = eventually(consultation, 30)
    joined = citizen.post(f"/consultations/{consultation_id}/join",
                          headers={"Authorization": f"Bearer {ticket['token']}"})
    assert joined.status_code == 200, joined.text
    invitation = anna.post(f"/consultations/{consultation_id}/invitations").json()
    withdrawn = anna.http.delete(
        f"/consultations/{consultation_id}/invitations/{invitation['invitation_id']}",
        headers={"X-CSRF-Token": anna.csrf})
    assert withdrawn.status_code == 204, withdrawn.text
    assert anna.post(f"/consultations/{consultation_id}/end").status_code == 200
    return {"department": dept, "waiting": waiting, "consultation": consultation_id}


@pytest.fixture(scope="module")
def visit(system: SystemProcess) -> dict[str, Any]:
    """The visit, once the audit log holds it, and what the server refused meanwhile
    (requested by every test: before any of them tries what is forbidden)."""
    done = a_visit(system)
    dora = StaffClient(f"{system.base}/api/v1", "dora")
    eventually(lambda: dora.get(f"/audit/search?id={done['consultation']}").status_code == 200,
               30)
    return {**done, "violations": violations(system)}


def test_every_service_works_within_its_permissions(system: SystemProcess,
                                                    visit: dict[str, Any]) -> None:
    """A whole visit (knock, note, admit, join, invite, withdraw, end), the relays, leases,
    consumers, buckets and outbox reads of all five services, on a server that has a user
    per service and no other: nothing refused."""
    assert httpx.get(f"{system.base}/readyz").status_code == 200
    assert visit["violations"] == []
    config = (system.data_dir / "nats" / "nats-server.conf").read_text()
    assert (system.data_dir / "nats" / "nats-server.conf").stat().st_mode & 0o777 == 0o600
    users = json.loads(config[config.index("authorization:") + len("authorization:"):])["users"]
    names = sorted(user["user"] for user in users)
    assert names == ["audit", "booking", "media", "queue", "rooms"]
    for user in users:  # bcrypt hashes only, never the password itself
        assert user["password"].startswith("$2b$")
        assert credentials(system, user["user"])["password"] not in config


async def test_an_anonymous_client_is_refused(system: SystemProcess,
                                              visit: dict[str, Any]) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(nats_url(system), allow_reconnect=False, max_reconnect_attempts=0)
    wrong = {"user": "queue", "password": "not-the-password"}
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(nats_url(system), allow_reconnect=False, max_reconnect_attempts=0,
                           **wrong)


async def test_the_queue_publishes_only_its_own_events(system: SystemProcess,
                                                      visit: dict[str, Any],
                                                      connect) -> None:  # type: ignore[no-untyped-def]
    client, queue = await connect("queue")
    for subject in ("bb.rooms.x", "bb.audit.x", "bb.rooms.office_opened"):
        await client.publish(subject, b"{}")
        assert await queue.refused(f'permissions violation for publish to "{subject}"'), subject
    # nor take another service's relay lease, nor answer for another's outbox
    await client.publish("$KV.bb_leases.outbox.rooms", b"queue")
    assert await queue.refused('publish to "$KV.bb_leases.outbox.rooms"')
    await client.subscribe("bbx.outbox.rooms.read")
    assert await queue.refused('subscription to "bbx.outbox.rooms.read"')


async def test_rooms_cannot_decline_for_the_queue(system: SystemProcess, visit: dict[str, Any],
                                                  connect) -> None:  # type: ignore[no-untyped-def]
    client, rooms = await connect("rooms")
    await client.publish("bb.queue.declined", b"{}")
    assert await rooms.refused('permissions violation for publish to "bb.queue.declined"')
    # nor read the queue's replies
    await client.subscribe("_INBOX.queue.>")
    assert await rooms.refused('permissions violation for subscription to "_INBOX.queue.>"')


async def test_only_the_queue_reads_what_citizens_typed(system: SystemProcess,
                                                        visit: dict[str, Any],
                                                        connect) -> None:  # type: ignore[no-untyped-def]
    key = visit["waiting"]["ticket_id"]
    client, _ = await connect("queue")
    own = await client.jetstream(timeout=2).key_value("bb_visits")
    assert b"Hans Wartend" in (await own.get(key)).value

    for service in ("audit", "rooms", "media"):
        client, other = await connect(service)
        js = client.jetstream(timeout=2)
        with pytest.raises((NatsError, asyncio.TimeoutError)):
            await js.key_value("bb_visits")
        with pytest.raises((NatsError, asyncio.TimeoutError)):
            await js.get_msg("KV_bb_visits", subject=f"$KV.bb_visits.{key}")
        await client.subscribe("$KV.bb_visits.>")
        assert await other.refused('subscription to "$KV.bb_visits.>"'), service


async def test_a_made_up_event_never_reaches_the_audit_log(system: SystemProcess,
                                                          visit: dict[str, Any],
                                                          connect) -> None:  # type: ignore[no-untyped-def]
    """The issue's attack (an anonymous `bb.queue.declined`) cannot even connect; a service
    that sends, on its own subject, an event claiming to be another's is refused."""
    forged = {
        "event_id": str(uuid.uuid4()), "occurred_at": datetime.now(UTC).isoformat(),
        "type": "Declined", "service": "queue", "version": 1,
        "aggregate_id": str(uuid.uuid4()), "aggregate_version": 1, "position": 999_999,
        "correlation_id": "forged", "department_id": visit["department"],
        "ticket_id": visit["waiting"]["ticket_id"], "staff_id": "anna", "reason": "other",
        "closes_at": None, "early": False,  # and what rooms' OfficeOpened needs to parse
    }
    with pytest.raises(NatsError):
        anonymous = await nats.connect(nats_url(system), allow_reconnect=False,
                                       max_reconnect_attempts=0)
        await anonymous.jetstream().publish("bb.queue.declined", json.dumps(forged).encode())

    client, _ = await connect("rooms")
    ack = await client.jetstream(timeout=5).publish(
        "bb.rooms.office_opened", json.dumps(forged).encode())
    assert ack.seq > 0  # stored: rooms may publish there, but the claim is not its own

    dora = StaffClient(f"{system.base}/api/v1", "dora")
    eventually(lambda: "audit_event_refused" in _system_log(system), 30)
    refused = [json.loads(line) for line in _system_log(system).splitlines()
               if "audit_event_refused" in line]
    assert refused[-1]["event_id"] == forged["event_id"]
    assert refused[-1]["subject"] == "bb.rooms.office_opened"
    # what the log holds: the whole visit, and not the forged event
    exported = dora.get("/audit/export").text
    assert visit["consultation"] in exported
    assert forged["event_id"] not in exported


def _system_log(system: SystemProcess) -> str:
    return system.log_path.read_text()
