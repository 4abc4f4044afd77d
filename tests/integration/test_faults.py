"""Faults mid-flow: NATS dies, the system dies between storing and publishing, the relay
forgets how far it got. Afterwards every event is on the bus exactly once, the flow
completes, the consumers have nothing pending and every projection counted each event
once (tests/integration/projections.py)."""

from __future__ import annotations

import sqlite3

from tests.helpers import StaffClient, eventually, knock, open_department
from tests.integration.projections import assert_each_event_applied_once
from tests.integration.stream import count_of, duplicates, kv_keys, stream_messages


def _consultation_of(citizen, ticket) -> str:  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {ticket['token']}"}
    return str(
        eventually(
            lambda: citizen.get(f"/tickets/{ticket['ticket_id']}", headers=auth).json()[
                "consultation_id"
            ],
            30,
        )
    )


def test_nats_killed_and_restarted_mid_flow(system, nats_server) -> None:  # type: ignore[no-untyped-def]
    citizen = system.client()
    dept = open_department(citizen, "demo")
    first = knock(citizen, dept, display_name="Vor dem Ausfall")
    staff = StaffClient(f"{system.base}/api/v1", "anna")

    nats_server.kill()  # SIGKILL: no goodbye
    admitted = staff.post(f"/tickets/{first['ticket_id']}/admit")
    assert admitted.status_code == 200, admitted.text  # stored; the relay waits for NATS
    second = knock(citizen, dept, display_name="Während des Ausfalls")
    nats_server.start()

    # The relay publishes what was stored meanwhile; rooms opens the consultation.
    consultation = _consultation_of(citizen, first)
    joined = citizen.post(
        f"/consultations/{consultation}/join", headers={"Authorization": f"Bearer {first['token']}"}
    )
    assert joined.status_code == 200, joined.text
    eventually(lambda: count_of(nats_server.url, "bb.queue.knocked") == 2)
    eventually(lambda: count_of(nats_server.url, "bb.rooms.consultation_opened") == 1)
    assert duplicates(nats_server.url) == {}
    queue = staff.get(f"/departments/{dept}/queue").json()
    assert [w["ticket_id"] for w in queue["waiting"]] == [second["ticket_id"]]
    assert_each_event_applied_once(nats_server.url, system.data_dir)


def test_system_killed_between_storing_and_publishing(
    system_factory, nats_server, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    system = system_factory(data_dir=data_dir)
    citizen = system.client()
    dept = open_department(citizen, "demo")
    eventually(lambda: count_of(nats_server.url, "bb.rooms.office_opened") >= 1)

    nats_server.kill()
    ticket = knock(citizen, dept, display_name="Gespeichert, nicht gesendet")
    system.kill()  # the knock is in the store, not on the bus
    nats_server.start()
    assert count_of(nats_server.url, "bb.queue.knocked") == 0

    restarted = system_factory(data_dir=data_dir)
    eventually(lambda: count_of(nats_server.url, "bb.queue.knocked") == 1)
    staff = StaffClient(f"{restarted.base}/api/v1", "anna")
    queue = staff.get(f"/departments/{dept}/queue").json()
    assert [w["ticket_id"] for w in queue["waiting"]] == [ticket["ticket_id"]]
    assert staff.post(f"/tickets/{ticket['ticket_id']}/admit").status_code == 200
    _consultation_of(restarted.client(), ticket)
    assert duplicates(nats_server.url) == {}
    assert_each_event_applied_once(nats_server.url, data_dir)


def test_relay_that_forgot_its_position_doubles_nothing(
    system_factory, nats_server, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    system = system_factory(data_dir=data_dir)
    citizen = system.client()
    dept = open_department(citizen, "demo")
    for n in range(5):
        knock(citizen, dept, display_name=f"Bürger {n}")
    eventually(lambda: count_of(nats_server.url, "bb.queue.knocked") == 5)
    before = _service_events(nats_server.url)
    system.kill()

    # Lose every confirmed position: the relays re-send the whole log on start.
    for service in ("queue", "rooms"):
        with sqlite3.connect(data_dir / f"{service}.sqlite") as db:
            deleted = db.execute(
                "DELETE FROM tracking WHERE application_name = ?", (f"outbox:{service}",)
            ).rowcount
            assert deleted > 0

    restarted = system_factory(data_dir=data_dir)
    eventually(lambda: restarted.client().get("/departments").status_code == 200)
    # The stream drops every re-sent event by its Nats-Msg-Id: nothing doubles.
    eventually(lambda: _relay_caught_up(restarted))
    assert _service_events(nats_server.url) == before
    assert duplicates(nats_server.url) == {}
    assert_each_event_applied_once(nats_server.url, data_dir)


def _service_events(url: str) -> int:
    """Events of the services that relayed again (the audit log signs new checkpoints)."""
    return sum(1 for s, _, _ in stream_messages(url) if s.startswith(("bb.queue.", "bb.rooms.")))


def _relay_caught_up(system) -> bool:  # type: ignore[no-untyped-def]
    import httpx

    text = httpx.get(f"{system.base}/metrics").text
    return any(
        line.startswith('bb_relay_duplicate_events_total{service="queue"}')
        and float(line.split()[-1]) >= 5
        for line in text.splitlines()
    )


def test_invitations_revoked_and_used_while_nats_is_down(system, nats_server) -> None:  # type: ignore[no-untyped-def]
    """The shared denylist lives in NATS: while NATS is away, rooms' own record decides,
    and a revocation it could not write there at once reaches it when NATS is back."""
    citizen = system.client()
    dept = open_department(citizen, "demo")
    ticket = knock(citizen, dept)
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    assert staff.post(f"/tickets/{ticket['ticket_id']}/admit").status_code == 200
    consultation = _consultation_of(citizen, ticket)
    withdrawn, kept = (staff.post(f"/consultations/{consultation}/invitations").json()
                       for _ in range(2))

    nats_server.kill()
    revoked = staff.http.delete(
        f"/consultations/{consultation}/invitations/{withdrawn['invitation_id']}",
        headers={"X-CSRF-Token": staff.csrf})
    assert revoked.status_code == 204, revoked.text
    refused = citizen.post(f"/consultations/{consultation}/interpreter-join",
                           headers={"Authorization": f"Bearer {withdrawn['token']}"})
    assert refused.status_code == 410 and "withdrawn" in refused.json()["detail"], refused.text
    joined = citizen.post(f"/consultations/{consultation}/interpreter-join",
                          headers={"Authorization": f"Bearer {kept['token']}"})
    assert joined.status_code == 200, joined.text
    nats_server.start()

    eventually(lambda: kv_keys(nats_server.url, "bb_revoked") == [withdrawn["invitation_id"]], 30)
    assert duplicates(nats_server.url) == {}
    assert_each_event_applied_once(nats_server.url, system.data_dir)
