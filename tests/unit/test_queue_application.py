"""The queue application on in-memory stores, fed by the rooms application's events."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from services.common.contracts import IntegrationEvent
from services.common.contracts import queue as queue_events
from services.common.contracts import rooms as rooms_events
from services.common.eventstore import store_env
from services.common.settings import Settings
from services.queue.application import (
    Knock,
    NobodyWaiting,
    OfficeClosed,
    Queue,
    UnknownDepartment,
    UnknownTicket,
)
from services.queue.domain import Door, Ticket, TicketNotWaiting, TicketNumber
from services.queue.mapping import to_contract
from services.queue.view import WaitingView
from services.rooms.application import to_contract as rooms_contract
from tests.unit.support import CID, Upstream, berlin, notification_count

MONDAY_MORNING = berlin(2025, 1, 6, 10, 0)
SATURDAY = berlin(2025, 1, 4, 10, 0)


def knock(queue: Queue, department_id: UUID, priority: str = "walk_in") -> Ticket:
    ticket, is_new = queue.knock(department_id, priority, uuid4(), CID)
    assert is_new
    return ticket


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def demo(upstream: Upstream) -> Upstream:
    """The around-the-clock demo office, open, known to the queue."""
    upstream.register("demo")
    upstream.clock(MONDAY_MORNING)
    upstream.pump()
    return upstream


def test_doors_follow_the_departments(demo: Upstream) -> None:
    door = demo.queue.door(demo.ids["demo"])
    assert door.is_open and door.profile["slug"] == "demo"
    assert door.serves("anna") and door.serves("carla") and not door.serves("dora")
    assert [d.id for d in demo.queue.doors()] == [door.id]
    with pytest.raises(UnknownDepartment):
        demo.queue.door(uuid4())


def test_knock_when_closed_is_refused_with_the_next_opening(upstream: Upstream) -> None:
    kataster = upstream.register("kataster")
    upstream.clock(SATURDAY)
    upstream.pump()
    stored = notification_count(upstream.queue)
    with pytest.raises(OfficeClosed) as refused:
        knock(upstream.queue, kataster, "walk_in")
    assert refused.value.next_opening == berlin(2025, 1, 6, 8, 30)  # Monday morning
    assert notification_count(upstream.queue) == stored
    assert upstream.queue.waiting.count(kataster) == 0


def test_knock_unknown_department(upstream: Upstream) -> None:
    with pytest.raises(UnknownDepartment):
        knock(upstream.queue, uuid4(), "walk_in")


def test_a_retried_knock_returns_the_same_ticket(demo: Upstream) -> None:
    dept, knock_id = demo.ids["demo"], uuid4()
    ticket, is_new = demo.queue.knock(dept, "walk_in", knock_id, CID)
    stored = notification_count(demo.queue)
    again, again_new = demo.queue.knock(dept, "walk_in", knock_id, CID)
    assert is_new and not again_new
    assert again.id == ticket.id == Ticket.create_id(dept, knock_id)
    assert notification_count(demo.queue) == stored
    assert demo.queue.waiting.count(dept) == 1


def test_knocks_saved_together_are_answered_one_by_one(demo: Upstream) -> None:
    dept, retried = demo.ids["demo"], uuid4()
    first, _ = demo.queue.knock(dept, "walk_in", retried, CID)
    group = [Knock(dept, "walk_in", uuid4(), CID) for _ in range(3)]
    answers = demo.queue.knock_all(group)
    assert [a[1] for a in answers] == [True, True, True]  # type: ignore[index]
    assert [a[0].number for a in answers] == [2, 3, 4]  # type: ignore[index]
    assert demo.queue.waiting.count(dept) == 4

    # A retried knock in the group, and a department that does not exist: each is
    # answered alone, the others are saved, and no number is lost.
    mixed = [
        Knock(dept, "walk_in", uuid4(), CID),
        Knock(dept, "walk_in", retried, CID),
        Knock(uuid4(), "walk_in", uuid4(), CID),
        Knock(dept, "walk_in", uuid4(), CID),
    ]
    fresh, again, unknown, last = demo.queue.knock_all(mixed)
    assert isinstance(unknown, UnknownDepartment)
    assert again[0].id == first.id and again[1] is False  # type: ignore[index]
    assert [fresh[0].number, last[0].number] == [5, 6]  # type: ignore[index]
    assert demo.queue.waiting.count(dept) == 6


def test_knocks_line_up_and_are_numbered(demo: Upstream) -> None:
    dept = demo.ids["demo"]
    first = knock(demo.queue, dept, "walk_in")
    second = knock(demo.queue, dept, "walk_in")
    assert (first.number, second.number) == (1, 2)
    assert demo.queue.waiting.place(first.id) == 1
    assert demo.queue.waiting.place(second.id) == 2


def test_admit_next_takes_appointments_first_then_knock_order(demo: Upstream) -> None:
    dept = demo.ids["demo"]
    walk_in_1 = knock(demo.queue, dept, "walk_in")
    walk_in_2 = knock(demo.queue, dept, "walk_in")
    appointment = knock(demo.queue, dept, "appointment")
    order = [demo.queue.admit_next(dept, "anna", CID).id for _ in range(3)]
    assert order == [appointment.id, walk_in_1.id, walk_in_2.id]
    assert demo.queue.ticket(appointment.id).status == "admitted"
    assert demo.queue.ticket(appointment.id).staff_id == "anna"
    with pytest.raises(NobodyWaiting):
        demo.queue.admit_next(dept, "anna", CID)


def test_an_admitted_ticket_cannot_be_admitted_again(demo: Upstream) -> None:
    ticket = knock(demo.queue, demo.ids["demo"], "walk_in")
    demo.queue.admit(ticket.id, "anna", CID)
    stored = notification_count(demo.queue)
    with pytest.raises(TicketNotWaiting):
        demo.queue.admit(ticket.id, "ben", CID)
    assert notification_count(demo.queue) == stored
    assert demo.queue.ticket(ticket.id).staff_id == "anna"
    with pytest.raises(UnknownTicket):
        demo.queue.admit(uuid4(), "anna", CID)


def test_withdraw_and_decline_leave_the_line(demo: Upstream) -> None:
    dept = demo.ids["demo"]
    leaving = knock(demo.queue, dept, "walk_in")
    declined = knock(demo.queue, dept, "walk_in")
    staying = knock(demo.queue, dept, "walk_in")
    demo.queue.withdraw(leaving.id, CID)
    demo.queue.decline(declined.id, "anna", "not_responsible", CID)
    assert demo.queue.waiting.place(staying.id) == 1
    assert demo.queue.ticket(declined.id).decline_reason == "not_responsible"


def test_transfer_to_a_closed_office_is_refused(demo: Upstream) -> None:
    kataster = demo.register("kataster")
    demo.clock(SATURDAY)  # kataster closed; demo open around the clock
    demo.pump()
    ticket = knock(demo.queue, demo.ids["demo"], "walk_in")
    with pytest.raises(OfficeClosed):
        demo.queue.transfer(ticket.id, kataster, "anna", CID)
    assert demo.queue.ticket(ticket.id).department_id == demo.ids["demo"]


def test_transfer_moves_the_ticket_to_the_other_line(upstream: Upstream) -> None:
    demo, pflege = upstream.register("demo"), upstream.register("pflegeberatung")
    upstream.clock(MONDAY_MORNING)
    upstream.pump()
    ticket = knock(upstream.queue, demo, "walk_in")
    upstream.queue.transfer(ticket.id, pflege, "ben", CID)
    assert upstream.queue.waiting.count(demo) == 0
    assert upstream.queue.waiting.department_of(ticket.id) == pflege


def test_office_closed_upstream_expires_every_waiting_ticket(demo: Upstream) -> None:
    dept = demo.ids["demo"]
    waiting = [knock(demo.queue, dept, "walk_in") for _ in range(3)]
    admitted = demo.queue.admit_next(dept, "anna", CID)
    demo.rooms.close_office(dept, CID)
    delivered = demo.pump()
    assert [type(e) for e, _ in delivered] == [rooms_events.OfficeClosed]

    door = demo.queue.door(dept)
    assert not door.is_open and door.next_opening is None  # around the clock: until reopened
    assert demo.queue.waiting.count(dept) == 0
    for ticket in waiting[1:]:
        found = demo.queue.ticket(ticket.id)
        assert (found.status, found.expiry_reason) == ("expired", "office_closed")
    assert demo.queue.ticket(admitted.id).status == "admitted"  # not touched
    with pytest.raises(OfficeClosed):
        knock(demo.queue, dept, "walk_in")


def test_a_redelivered_upstream_event_changes_nothing(demo: Upstream) -> None:
    dept = demo.ids["demo"]
    ticket = knock(demo.queue, dept, "walk_in")
    demo.rooms.close_office(dept, CID)
    ((closed, tracking),) = demo.pump()
    stored = notification_count(demo.queue)
    version = demo.queue.ticket(ticket.id).version

    assert demo.queue.handle_upstream(closed, tracking) is False
    assert demo.queue.handle_upstream(closed, Tracking(tracking.application_name,
                                                       tracking.notification_id)) is False
    assert notification_count(demo.queue) == stored
    assert demo.queue.ticket(ticket.id).version == version


def test_an_older_department_event_arriving_late_is_ignored(demo: Upstream) -> None:
    dept = demo.ids["demo"]
    opened = next(e for e, _ in demo.delivered if isinstance(e, rooms_events.OfficeOpened))
    demo.rooms.close_office(dept, CID)
    ((_, tracking),) = demo.pump()
    # The older "opened" comes again (a JetStream redelivery), under a new stream sequence.
    late = Tracking(tracking.application_name, tracking.notification_id + 100)
    assert demo.queue.handle_upstream(opened, late) is True  # tracked ...
    assert not demo.queue.door(dept).is_open  # ... but the door stays closed


def test_consultation_opened_and_ended_reach_ticket_and_door(demo: Upstream) -> None:
    dept = demo.ids["demo"]
    ticket = knock(demo.queue, dept, "walk_in")
    demo.queue.admit(ticket.id, "anna", CID)
    consultation = uuid4()
    base = {"event_id": uuid4(), "occurred_at": MONDAY_MORNING, "aggregate_id": consultation,
            "position": 1, "correlation_id": CID}
    opened = rooms_events.ConsultationOpened(**base, aggregate_version=1,
                                             consultation_id=consultation, department_id=dept,
                                             ticket_id=ticket.id, staff_id="anna")
    ended = rooms_events.ConsultationEnded(**base, aggregate_version=2,
                                           consultation_id=consultation, department_id=dept,
                                           ended_by="anna", duration_seconds=420.0)
    assert demo.queue.handle_upstream(opened, Tracking("BB/queue", 1000))
    assert demo.queue.handle_upstream(ended, Tracking("BB/queue", 1001))
    assert demo.queue.ticket(ticket.id).consultation_id == consultation
    assert demo.queue.door(dept).durations == [420.0]
    # The same "ended" again: not counted twice into the expected wait.
    assert demo.queue.handle_upstream(ended, Tracking("BB/queue", 1001)) is False
    assert demo.queue.door(dept).durations == [420.0]


def test_the_waiting_rooms_are_rebuilt_from_the_store() -> None:
    upstream = Upstream()
    dept = upstream.register("demo")
    upstream.clock(MONDAY_MORNING)
    upstream.pump()
    first = knock(upstream.queue, dept, "walk_in")
    second = knock(upstream.queue, dept, "walk_in")
    upstream.queue.admit(first.id, "anna", CID)
    # A fresh waiting-rooms view replayed from the same store agrees.
    fresh = WaitingView(upstream.queue)
    fresh.catch_up()
    assert fresh.rooms.places(dept) == {second.id: 1}


def test_stored_ticket_events_map_to_contracts_with_derived_ids(demo: Upstream) -> None:
    ticket = knock(demo.queue, demo.ids["demo"], "walk_in")
    demo.queue.admit(ticket.id, "anna", CID)
    notifications = demo.queue.notification_log.select(start=1, limit=1000)
    mapped = [to_contract(demo.queue.mapper.to_domain_event(n), n.id) for n in notifications]
    tickets = [c for c in mapped if c is not None]
    assert [type(c) for c in tickets] == [queue_events.Knocked, queue_events.Admitted]
    again = [to_contract(demo.queue.mapper.to_domain_event(n), n.id) for n in notifications]
    assert [c.event_id for c in tickets] == [c.event_id for c in again if c is not None]
    assert all(c.correlation_id == CID for c in tickets)
    # Doors are the queue's own business: they are never published.
    assert len(tickets) < len(mapped)


def test_replicas_on_one_store_see_each_others_doors_and_tickets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two queue applications on one SQLite file, as two replicas: each learns what the
    other stored from the store itself, even when the bus brought nothing."""
    env = store_env(Settings(data_dir=tmp_path), "queue")
    first, second = Queue(env, 0, 2), Queue(env, 1, 2)
    upstream = Upstream()
    upstream.queue = first  # the durable consumer happened to deliver to the first
    dept = upstream.register("demo")
    upstream.clock(MONDAY_MORNING)
    upstream.pump()
    # Registered by the first: the second lists it at once, read from the store.
    assert [d.id for d in second.doors()] == [dept]
    mine, theirs = knock(first, dept), knock(second, dept)
    assert (mine.number, theirs.number) == (1, 2)
    second.catch_up()
    first.catch_up()
    assert first.waiting.places(dept) == second.waiting.places(dept) == {mine.id: 1, theirs.id: 2}
    assert knock(first, dept).number == 3 and knock(second, dept).number == 4
    first.close()
    second.close()


def test_concurrent_knocks_on_two_replicas_get_consecutive_numbers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = store_env(Settings(data_dir=tmp_path), "queue")
    replicas = [Queue(env, 0, 2), Queue(env, 1, 2)]
    upstream = Upstream()
    upstream.queue = replicas[0]
    dept = upstream.register("demo")
    upstream.clock(MONDAY_MORNING)
    upstream.pump()
    replicas[1].catch_up()
    with ThreadPoolExecutor(8) as pool:
        tickets = list(pool.map(lambda i: knock(replicas[i % 2], dept), range(40)))
    numbers = [t.number for t in tickets]
    assert sorted(numbers) == list(range(1, 41))  # none twice, none skipped
    for replica in replicas:
        replica.close()


def test_department_events_in_any_order_keep_the_newest_of_each_aspect() -> None:
    """Replicas share the consumer: a roster change may be processed after the later
    opening, and an older opening after a newer closing."""
    upstream = Upstream()
    rooms, queue = upstream.rooms, upstream.queue
    dept = upstream.register("demo")
    upstream.clock(MONDAY_MORNING)
    rooms.assign_staff(dept, "erik", "staff", CID)
    rooms.close_office(dept, CID)
    rooms.unassign_staff(dept, "ben", CID)

    def department_events() -> list[IntegrationEvent]:
        mapped = (
            rooms_contract(rooms.mapper.to_domain_event(n), n.id)
            for n in rooms.notification_log.select(start=1, limit=1000)
        )
        return [e for e in mapped if getattr(e, "department_id", None) == dept]

    registered, *rest = department_events()
    # In memory, tracking is in order: the stream sequences rise while the events go back.
    for sequence, event in enumerate([registered, *reversed(rest)], start=1):
        assert queue.handle_upstream(event, Tracking("BB/queue", sequence))
    door = queue.door(dept)
    assert door.serves("anna") and door.serves("erik") and not door.serves("ben")
    assert not door.is_open
    assert door.weekly and door.profile["slug"] == "demo"

    rooms.unassign_staff(dept, "erik", CID)
    assert queue.handle_upstream(department_events()[-1], Tracking("BB/queue", 1000))
    assert not queue.door(dept).serves("erik")


def test_every_ticket_and_door_event_is_published_or_kept_inside() -> None:
    assert to_contract.unmapped(Ticket, Door, TicketNumber) == []
