"""The audit service on the real NATS server, next to the real rooms and queue services."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import nats
import pytest

from tests.audit.visits import Visits, assert_exactly_once, logged_events
from tests.helpers import eventually
from tests.integration.stream import stream_messages

FAST = {"BB_AUDIT_CHECKPOINT_SECONDS": "1", "BB_AUDIT_GAP_CHECK_SECONDS": "1"}
DEPARTMENTS = ("demo", "kataster", "einbuergerung")


def start(factory, tmp_path: Path, *names: str):  # type: ignore[no-untyped-def]
    return [factory(args=["serve", name], data_dir=tmp_path / name, env=FAST) for name in names]


def test_a_burst_is_logged_exactly_once_through_kill_and_nats_restart(
        system_factory, nats_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rooms, queue, audit = start(system_factory, tmp_path, "rooms", "queue", "audit")
    visits = Visits(queue.base, rooms.base)
    departments = [visits.open_office(slug) for slug in DEPARTMENTS]
    done: list[str] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        consultation = visits.consultation(departments[n % 3], n, interpreter=n % 4 == 0)
        with lock:
            done.append(consultation)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(one, n) for n in range(24)]
        eventually(lambda: len(done) >= 6, timeout=60)
        audit.kill()  # SIGKILL mid-burst, whatever it was writing
        time.sleep(0.5)
        audit.start()
        eventually(lambda: len(done) >= 14, timeout=60)
        nats_server.restart()
        for future in futures:
            future.result()
    assert len(done) == 24
    count = assert_exactly_once(nats_server.url, audit.data_dir)
    types = {e["type"] for e in logged_events(audit.data_dir)}
    assert {"Knocked", "Admitted", "ConsultationOpened", "ParticipantJoined",
            "InterpreterInvited", "InterpreterJoined", "ParticipantLeft",
            "ConsultationEnded"} <= types
    assert count > 24 * 7


def test_an_event_withheld_from_the_bus_is_found_and_filled(
        system_factory, nats_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rooms, queue = start(system_factory, tmp_path, "rooms", "queue")
    visits = Visits(queue.base, rooms.base)
    dept = visits.open_office("demo")
    for n in range(3):
        visits.consultation(dept, n)
    messages = stream_messages(nats_server.url)
    joined = [e for s, e, _ in messages if s == "bb.rooms.participant_joined"][1]
    last_of_queue = [e for s, e, _ in messages if s.startswith("bb.queue.")][-1]
    withheld = {joined["event_id"], last_of_queue["event_id"]}

    async def delete() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        info = await js.stream_info("BB")
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("BB", seq)
            if msg.headers and msg.headers.get("Nats-Msg-Id") in withheld:
                await js.delete_msg("BB", seq)
        await nc.close()

    asyncio.run(delete())
    assert not withheld & {e["event_id"] for _, e, _ in stream_messages(nats_server.url)}

    (audit,) = start(system_factory, tmp_path, "audit")
    eventually(lambda: withheld <= {e["event_id"] for e in logged_events(audit.data_dir)},
               timeout=20)
    assert_exactly_once(nats_server.url, audit.data_dir)
    metrics = httpx.get(f"{audit.base}/metrics").text
    assert 'bb_audit_gap_events_filled_total{service="rooms"} 1.0' in metrics
    assert 'bb_audit_gap_events_filled_total{service="queue"} 1.0' in metrics


@pytest.mark.postgres
def test_the_log_on_postgres(system_factory, nats_server, postgres_url,
                             tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    system = system_factory(env={**FAST, "BB_DATABASE_URL": postgres_url})
    visits = Visits(system.base, system.base)
    dept = visits.open_office("demo")
    consultation = visits.consultation(dept, 1, interpreter=True)
    from tests.helpers import StaffClient

    dora = StaffClient(f"{system.base}/api/v1", "dora")
    timeline = eventually(lambda: (r := dora.get(f"/audit/consultations/{consultation}"))
                          .status_code == 200 and len(r.json()["steps"]) >= 9 and r.json())
    assert timeline["steps"][0]["event"] == "Knocked"
    assert eventually(lambda: dora.get("/audit/verify").json()["ok"])
