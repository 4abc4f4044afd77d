"""Tickets and doors: the pure domain of the queue service; and the expected wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.queue.domain import (
    DomainError,
    Door,
    KnockRefused,
    OfficeClosed,
    Ticket,
    TicketNotWaiting,
)
from services.queue.estimate import estimate_wait
from tests.unit.support import CID


def names(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


@pytest.fixture
def ticket() -> Ticket:
    ticket = Ticket(uuid4(), "walk_in", 7, uuid4(), CID)
    assert names(ticket) == ["Knocked"]
    return ticket


def test_a_new_ticket_is_waiting(ticket: Ticket) -> None:
    assert ticket.status == "waiting" and ticket.number == 7
    assert ticket.knocked_at == ticket.created_on
    assert ticket.consultation_id is None


def test_unknown_priority_is_refused() -> None:
    with pytest.raises(DomainError, match="priority"):
        Ticket(uuid4(), "vip", 1, uuid4(), CID)


def test_the_ticket_id_is_named_by_department_and_knock() -> None:
    department, knock_id = uuid4(), uuid4()
    ticket = Ticket(department, "walk_in", 1, knock_id, CID)
    assert ticket.id == Ticket.create_id(department, knock_id)
    assert Ticket.create_id(department, knock_id) != Ticket.create_id(uuid4(), knock_id)
    assert Ticket.create_id(department, knock_id) != Ticket.create_id(department, uuid4())


def test_admit_records_who_and_how_long_it_waited(ticket: Ticket) -> None:
    ticket.admit("anna", ticket.knocked_at + timedelta(seconds=90), CID)
    events: list[Any] = ticket.collect_events()
    assert [type(e).__name__ for e in events] == ["Admitted"]
    assert events[0].waited_seconds == 90.0
    assert events[0].department_id == ticket.department_id
    assert ticket.status == "admitted" and ticket.staff_id == "anna"


def test_waited_seconds_never_negative(ticket: Ticket) -> None:
    ticket.admit("anna", ticket.knocked_at - timedelta(seconds=5), CID)
    assert ticket.collect_events()[0].waited_seconds == 0.0  # type: ignore[attr-defined]


def test_decline_keeps_the_reason(ticket: Ticket) -> None:
    ticket.decline("anna", "documents_missing", CID)
    assert ticket.status == "declined" and ticket.decline_reason == "documents_missing"
    assert names(ticket) == ["Declined"]


def test_withdraw(ticket: Ticket) -> None:
    ticket.withdraw(CID)
    assert ticket.status == "withdrawn" and names(ticket) == ["Withdrawn"]


def test_expire_keeps_the_reason(ticket: Ticket) -> None:
    ticket.expire("office_closed", CID)
    assert ticket.status == "expired" and ticket.expiry_reason == "office_closed"
    assert names(ticket) == ["Expired"]


def test_transfer_moves_the_ticket_and_keeps_it_waiting(ticket: Ticket) -> None:
    source, target = ticket.department_id, uuid4()
    ticket.transfer(target, "anna", CID)
    events: list[Any] = ticket.collect_events()
    assert [type(e).__name__ for e in events] == ["Transferred"]
    assert (events[0].from_department_id, events[0].to_department_id) == (source, target)
    assert ticket.department_id == target and ticket.status == "waiting"


def test_transfer_to_the_same_department_is_refused(ticket: Ticket) -> None:
    with pytest.raises(DomainError, match="already waiting"):
        ticket.transfer(ticket.department_id, "anna", CID)
    assert names(ticket) == []


@pytest.mark.parametrize("finish", [
    lambda t: t.admit("anna", t.knocked_at, CID),
    lambda t: t.decline("anna", "other", CID),
    lambda t: t.withdraw(CID),
    lambda t: t.expire("no_show", CID),
])
@pytest.mark.parametrize("then", [
    lambda t: t.admit("ben", t.knocked_at, CID),
    lambda t: t.decline("ben", "other", CID),
    lambda t: t.withdraw(CID),
    lambda t: t.transfer(uuid4(), "ben", CID),
    lambda t: t.expire("office_closed", CID),
])
def test_only_a_waiting_ticket_can_change(ticket: Ticket, finish: Any, then: Any) -> None:
    finish(ticket)
    names(ticket)
    status, version = ticket.status, ticket.version
    with pytest.raises(TicketNotWaiting) as refused:
        then(ticket)
    assert refused.value.status == status
    assert names(ticket) == [] and ticket.version == version and ticket.status == status


def test_ticket_not_waiting_reads_like_a_sentence() -> None:
    assert str(TicketNotWaiting("admitted")) == \
        "This ticket is no longer waiting (it is admitted)."


def test_assign_consultation(ticket: Ticket) -> None:
    ticket.admit("anna", ticket.knocked_at, CID)
    consultation = uuid4()
    ticket.assign_consultation(consultation)
    assert ticket.consultation_id == consultation


# -- the door: the queue's copy of a department ---------------------------------------------

@pytest.fixture
def door() -> Door:
    profile = {"slug": "x", "anonymous": True, "languages": ["de", "tr"],
               "topics": [{"id": "a", "de": "A", "en": "A"}]}
    return Door(uuid4(), profile, 5)


def test_door_reads_its_profile(door: Door) -> None:
    assert door.anonymous and door.languages == ["de", "tr"] and door.topic_ids == ["a"]
    assert not door.is_open


@pytest.mark.parametrize(
    ("named", "language", "topic", "refused"),
    [
        (True, "de", None, "anonymous: please do not give your name"),
        (False, "en", None, "offers the languages de, tr"),
        (False, "tr", "b", "one of the topics: a"),
    ],
)
def test_the_door_refuses_a_knock_that_does_not_fit(
    door: Door, named: bool, language: str, topic: str | None, refused: str
) -> None:
    with pytest.raises(KnockRefused, match=refused):
        door.check_knock(named, language, topic)


def test_the_door_takes_a_knock_that_fits(door: Door) -> None:
    door.check_knock(False, "tr", "a")
    door.check_knock(False, "de", None)


def test_a_closed_door_says_when_it_opens(door: Door) -> None:
    opens = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
    door.close(opens, 6)
    with pytest.raises(OfficeClosed, match="opens next on 2025-01-06T08:00") as closed:
        door.require_open()
    assert closed.value.extra == {"opens_at": opens}
    door.open(None, 7)
    door.require_open()


def test_door_is_stale_for_versions_it_has_seen(door: Door) -> None:
    assert door.is_stale(4) and door.is_stale(5)
    assert not door.is_stale(6)
    door.open(None, 9)
    assert door.is_stale(8) and not door.is_stale(10)


def test_door_keeps_the_latest_state(door: Door) -> None:
    door.open(None, 6)
    door.assign_staff("anna", "staff", 7)
    assert door.is_open and door.serves("anna")
    door.unassign_staff("anna", 8)
    door.close(None, 9)
    assert not door.is_open and not door.serves("anna")


def test_door_keeps_only_recent_durations(door: Door) -> None:
    for minutes in range(30):
        door.record_consultation(minutes * 60.0)
    assert len(door.durations) == 20 and door.durations[-1] == 29 * 60.0
    assert door.durations[0] == 10 * 60.0


# -- the expected wait ------------------------------------------------------------------------

def test_first_in_line_with_a_staff_member_free_does_not_wait() -> None:
    estimate = estimate_wait(1, 1, [], default_minutes=10)
    assert estimate.staff_free and estimate.basis == "default_duration"
    assert (estimate.seconds, estimate.low_seconds, estimate.high_seconds) == (0, 0, 0)
    assert estimate.consultations_sampled == 0 and estimate.staff_on_duty == 1


def test_nobody_on_duty_first_in_line_waits_half_a_consultation() -> None:
    estimate = estimate_wait(1, 0, [], default_minutes=10)
    assert not estimate.staff_free and estimate.staff_on_duty == 0
    assert (estimate.seconds, estimate.low_seconds, estimate.high_seconds) == (300, 150, 450)


def test_one_free_staff_member_and_place_two_waits_one_consultation() -> None:
    """Issue 15: place 2 with one idle staff member said 'about 18 minutes'."""
    estimate = estimate_wait(2, 1, [], default_minutes=12)
    assert not estimate.staff_free
    assert (estimate.seconds, estimate.low_seconds, estimate.high_seconds) == (720, 360, 1080)


def test_more_staff_shorten_the_wait() -> None:
    alone = estimate_wait(5, 1, [], default_minutes=10)
    two = estimate_wait(5, 2, [], default_minutes=10)
    assert alone.seconds == 4 * 600
    assert two.seconds == 2 * 600
    assert two.staff_on_duty == 2
    assert estimate_wait(2, 2, [], 10).staff_free


def test_recent_consultations_replace_the_default() -> None:
    estimate = estimate_wait(2, 1, [600.0, 1200.0, 900.0], default_minutes=10)
    assert estimate.basis == "recent_consultations" and estimate.consultations_sampled == 3
    assert estimate.seconds == 900  # the median
    assert estimate.low_seconds == 750 and estimate.high_seconds == 1050
    assert estimate.low_seconds <= estimate.seconds <= estimate.high_seconds


def test_two_consultations_are_not_enough_to_go_on() -> None:
    assert estimate_wait(1, 1, [60.0, 60.0], 10).basis == "default_duration"


def test_later_places_never_wait_less() -> None:
    for staff in (0, 1, 2):
        waits = [
            estimate_wait(p, staff, [300.0, 400.0, 500.0, 900.0], 10) for p in range(1, 9)
        ]
        for low, high in ((w.low_seconds, w.high_seconds) for w in waits):
            assert low <= high
        assert [w.seconds for w in waits] == sorted(w.seconds for w in waits)
