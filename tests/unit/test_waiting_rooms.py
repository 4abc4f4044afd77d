"""The waiting rooms view: order, places, and events that come late or twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from services.common.contracts import queue as events
from services.queue.waiting import WaitingRooms
from tests.unit.support import contract

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
DEPT = uuid4()
OTHER = uuid4()


def knocked(ticket: UUID, minute: int, priority: str = "walk_in", number: int = 1,
            department: UUID = DEPT) -> events.Knocked:
    return contract(events.Knocked, ticket, 1, T0 + timedelta(minutes=minute),  # type: ignore[return-value]
                    ticket_id=ticket, department_id=department, priority=priority,
                    number=number)


def admitted(ticket: UUID, version: int = 2, department: UUID = DEPT) -> events.Admitted:
    return contract(events.Admitted, ticket, version, T0 + timedelta(hours=1),  # type: ignore[return-value]
                    ticket_id=ticket, department_id=department, staff_id="anna",
                    waited_seconds=1.0)


@pytest.fixture
def rooms() -> WaitingRooms:
    return WaitingRooms()


def test_walk_ins_wait_in_knock_order(rooms: WaitingRooms) -> None:
    first, second, third = uuid4(), uuid4(), uuid4()
    for ticket, minute in ((second, 2), (third, 3), (first, 1)):  # arriving out of order
        rooms.apply(knocked(ticket, minute))
    assert [w.ticket_id for w in rooms.line(DEPT)] == [first, second, third]
    assert rooms.places(DEPT) == {first: 1, second: 2, third: 3}
    assert rooms.place(third) == 3 and rooms.count(DEPT) == 3


def test_appointments_go_before_walk_ins(rooms: WaitingRooms) -> None:
    early_walk_in, late_appointment, later_appointment = uuid4(), uuid4(), uuid4()
    rooms.apply(knocked(early_walk_in, 0))
    rooms.apply(knocked(later_appointment, 9, "appointment"))
    rooms.apply(knocked(late_appointment, 5, "appointment"))
    assert [w.ticket_id for w in rooms.line(DEPT)] == [
        late_appointment, later_appointment, early_walk_in]
    assert rooms.place(early_walk_in) == 3
    entry = rooms.next_in_line(DEPT)
    assert entry is not None and entry.ticket_id == late_appointment
    skipped = rooms.next_in_line(DEPT, skip={late_appointment})
    assert skipped is not None and skipped.ticket_id == later_appointment


def test_the_line_order_a_page_sorts_by_is_the_line_order(rooms: WaitingRooms) -> None:
    """Pages place a ticket that joins live by ``line_order`` alone (they know no rule)."""
    knocks = ((0, "walk_in"), (9, "appointment"), (5, "appointment"), (61, "walk_in"))
    for minute, priority in knocks:
        rooms.apply(knocked(uuid4(), minute, priority))
    line = rooms.line(DEPT)
    assert sorted(line, key=lambda w: w.line_order) == line
    assert len({w.line_order for w in line}) == 4


def test_leaving_moves_everyone_up(rooms: WaitingRooms) -> None:
    first, second = uuid4(), uuid4()
    rooms.apply(knocked(first, 1))
    rooms.apply(knocked(second, 2))
    changes = rooms.apply(admitted(first))
    assert [(c.department_id, c.ticket_id, c.kind) for c in changes] == [
        (DEPT, first, "admitted")]
    assert rooms.place(first) is None and rooms.place(second) == 1
    assert rooms.department_of(first) is None


@pytest.mark.parametrize(("cls", "fields", "kind"), [
    (events.Declined, {"staff_id": "anna", "reason": "other"}, "declined"),
    (events.Withdrawn, {}, "withdrawn"),
    (events.Expired, {"reason": "office_closed"}, "expired"),
])
def test_every_ending_leaves_the_line(rooms: WaitingRooms, cls: type, fields: dict,  # type: ignore[type-arg]
                                      kind: str) -> None:
    ticket = uuid4()
    rooms.apply(knocked(ticket, 0))
    changes = rooms.apply(contract(cls, ticket, 2, T0, ticket_id=ticket, department_id=DEPT,
                                   **fields))
    assert [c.kind for c in changes] == [kind]
    assert rooms.count(DEPT) == 0


def test_a_doubled_event_changes_nothing(rooms: WaitingRooms) -> None:
    ticket = uuid4()
    assert len(rooms.apply(knocked(ticket, 0))) == 1
    assert rooms.apply(knocked(ticket, 0)) == []
    assert rooms.count(DEPT) == 1
    rooms.apply(admitted(ticket))
    assert rooms.apply(admitted(ticket)) == []
    assert rooms.count(DEPT) == 0


def test_a_late_redelivery_does_not_bring_a_ticket_back(rooms: WaitingRooms) -> None:
    ticket = uuid4()
    rooms.apply(knocked(ticket, 0))
    rooms.apply(admitted(ticket))
    assert rooms.apply(knocked(ticket, 0)) == []  # version 1 again, after version 2
    assert rooms.count(DEPT) == 0 and rooms.place(ticket) is None


def test_an_ending_seen_before_the_knock_keeps_the_ticket_out(rooms: WaitingRooms) -> None:
    ticket = uuid4()
    assert rooms.apply(admitted(ticket)) == []  # nothing to remove yet
    assert rooms.apply(knocked(ticket, 0)) == []  # and the older knock is ignored
    assert rooms.count(DEPT) == 0


def test_transferred_moves_the_ticket_between_lines(rooms: WaitingRooms) -> None:
    moving, staying, already_there = uuid4(), uuid4(), uuid4()
    rooms.apply(knocked(moving, 1))
    rooms.apply(knocked(staying, 2))
    rooms.apply(knocked(already_there, 5, department=OTHER))
    changes = rooms.apply(contract(events.Transferred, moving, 2, T0 + timedelta(hours=1),
                                   ticket_id=moving, from_department_id=DEPT,
                                   to_department_id=OTHER, staff_id="anna"))
    assert [(c.department_id, c.kind) for c in changes] == [
        (DEPT, "transferred_out"), (OTHER, "transferred_in")]
    assert [w.ticket_id for w in rooms.line(DEPT)] == [staying]
    # It keeps its knock time: it knocked earlier than the one already there.
    assert [w.ticket_id for w in rooms.line(OTHER)] == [moving, already_there]
    assert rooms.department_of(moving) == OTHER and rooms.place(staying) == 1


def test_a_transfer_of_a_ticket_that_is_not_waiting_changes_nothing(
        rooms: WaitingRooms) -> None:
    ticket = uuid4()
    assert rooms.apply(contract(events.Transferred, ticket, 2, T0, ticket_id=ticket,
                                from_department_id=DEPT, to_department_id=OTHER,
                                staff_id="anna")) == []
    assert rooms.count(OTHER) == 0


def test_numbers_count_per_department_and_day(rooms: WaitingRooms) -> None:
    day = T0.date().isoformat()
    assert rooms.next_number(DEPT, day) == 1
    rooms.apply(knocked(uuid4(), 0, number=1))
    rooms.apply(knocked(uuid4(), 1, number=2))
    assert rooms.next_number(DEPT, day) == 3
    assert rooms.next_number(OTHER, day) == 1
    assert rooms.next_number(DEPT, "2025-01-07") == 1


def test_unknown_department_and_ticket(rooms: WaitingRooms) -> None:
    assert rooms.line(uuid4()) == [] and rooms.count(uuid4()) == 0
    assert rooms.places(uuid4()) == {} and rooms.place(uuid4()) is None
    assert rooms.next_in_line(uuid4()) is None


def test_forget_finished_drops_only_old_finished_tickets(rooms: WaitingRooms) -> None:
    finished, waiting = uuid4(), uuid4()
    rooms.apply(knocked(finished, 0))
    rooms.apply(admitted(finished))
    rooms.apply(knocked(waiting, 0))
    rooms.forget_finished(T0 + timedelta(days=3))
    assert rooms.place(waiting) == 1
    # the finished ticket's version mark is gone; the waiting one still ignores a duplicate
    assert rooms.apply(knocked(waiting, 0)) == []
    assert finished not in rooms._versions and waiting in rooms._versions


def test_a_knock_takes_its_number_at_once_and_a_retry_gives_it_back(
        rooms: WaitingRooms) -> None:
    day = T0.date().isoformat()
    assert [rooms.next_number(DEPT, day) for _ in range(2)] == [1, 2]  # knocks in flight
    rooms.give_back(DEPT, day, 2)
    assert rooms.next_number(DEPT, day) == 2
    rooms.give_back(DEPT, day, 1)  # a later one was taken: 1 is left out, never reissued
    assert rooms.next_number(DEPT, day) == 3


def test_replicas_number_one_above_all_they_saw() -> None:
    """Replicas pick the same next number (the store keeps only one of each: Queue.knock);
    each one's next number is one above every knock it has seen, its own or another's."""
    day = T0.date().isoformat()
    first, second = (WaitingRooms(i, 2) for i in range(2))
    assert [first.next_number(DEPT, day) for _ in range(2)] == [1, 2]
    assert second.next_number(DEPT, day) == 1
    second.give_back(DEPT, day, 1)  # refused by the store: the first replica kept 1
    second.apply(knocked(uuid4(), 0, number=1))
    second.apply(knocked(uuid4(), 1, number=2))
    assert second.next_number(DEPT, day) == 3
    first.apply(knocked(uuid4(), 2, number=3))
    assert first.next_number(DEPT, day) == 4


def test_a_knock_seen_after_its_admission_still_counts_for_the_numbers(
        rooms: WaitingRooms) -> None:
    ticket = uuid4()
    rooms.apply(admitted(ticket))
    assert rooms.apply(knocked(ticket, 0, number=5)) == []
    assert rooms.next_number(DEPT, T0.date().isoformat()) == 6


def test_a_replica_index_must_be_below_the_count() -> None:
    with pytest.raises(ValueError):
        WaitingRooms(2, 2)
    with pytest.raises(ValueError):
        WaitingRooms(-1, 2)
