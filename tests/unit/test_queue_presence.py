"""Staff on duty across queue replicas: shares, their expiry, distinct staff ids."""

from __future__ import annotations

import json
from uuid import uuid4

from services.queue.live import PRESENCE_BEATS_KEPT, StaffPresence

DEPT = uuid4()
OTHER = uuid4()


def test_distinct_staff_ids_of_every_replica_count() -> None:
    here, there = StaffPresence("a"), StaffPresence("b")
    assert here.share_local({DEPT: frozenset({"anna"})}) == {DEPT}
    assert there.share_local({DEPT: frozenset({"anna", "ben"}), OTHER: frozenset({"carla"})})
    changed, new = here.received(there.beat(), now=0.0)
    assert (changed, new) == ({DEPT, OTHER}, True)
    assert (here.on_duty(DEPT), here.on_duty(OTHER)) == (2, 1)  # anna counts once
    assert here.received(there.beat(), now=1.0) == (set(), False)  # nothing new
    assert here.received(here.beat(), now=1.0) == (set(), False)  # our own, echoed


def test_only_staff_ids_are_shared() -> None:
    presence = StaffPresence("a", every=2.0)
    presence.share_local({DEPT: frozenset({"ben", "anna"})})
    assert json.loads(presence.beat()) == {
        "replica": "a",
        "every": 2.0,
        "departments": {str(DEPT): ["anna", "ben"]},
        "leaving": False,
    }


def test_a_replica_not_heard_of_stops_counting_after_a_few_beats() -> None:
    here, there = StaffPresence("a"), StaffPresence("b", every=5.0)
    there.share_local({DEPT: frozenset({"ben"})})
    here.received(there.beat(), now=100.0)
    assert here.expire(100.0 + 5.0 * PRESENCE_BEATS_KEPT - 1) == set()
    assert here.on_duty(DEPT) == 1
    assert here.expire(100.0 + 5.0 * PRESENCE_BEATS_KEPT) == {DEPT}
    assert here.on_duty(DEPT) == 0


def test_a_replica_that_stops_cleanly_stops_counting_at_once() -> None:
    here, there = StaffPresence("a"), StaffPresence("b")
    there.share_local({DEPT: frozenset({"ben"})})
    here.received(there.beat(), now=0.0)
    assert here.received(there.beat(leaving=True), now=1.0) == ({DEPT}, False)
    assert here.on_duty(DEPT) == 0


def test_a_staff_member_leaving_one_replica_still_counts_on_another() -> None:
    here, there = StaffPresence("a"), StaffPresence("b")
    here.share_local({DEPT: frozenset({"anna"})})
    there.share_local({DEPT: frozenset({"anna"})})
    here.received(there.beat(), now=0.0)
    assert here.share_local({}) == set()  # still on duty over there
    assert here.on_duty(DEPT) == 1
    there.share_local({})
    assert here.received(there.beat(), now=1.0) == ({DEPT}, False)
    assert here.on_duty(DEPT) == 0
