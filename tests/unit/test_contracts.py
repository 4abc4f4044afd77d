"""Integration-event contracts: subjects, derived ids, tolerant reading, privacy."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.common.contracts import (
    IntegrationEvent,
    event_id_for,
    parse_event,
    registered_subjects,
)
from services.common.contracts import queue as queue_events
from services.common.contracts import rooms as rooms_events
from services.common.contracts.base import _REGISTRY
from tests.unit.support import contract

NOW = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def test_subjects_are_bb_service_event() -> None:
    assert queue_events.Knocked.subject_for() == "bb.queue.knocked"
    assert rooms_events.ConsultationOpened.subject_for() == "bb.rooms.consultation_opened"
    assert rooms_events.OfficeClosed.subject_for() == "bb.rooms.office_closed"
    subjects = registered_subjects()
    assert subjects and all(re.fullmatch(r"bb\.[a-z]+\.[a-z]+(_[a-z]+)*", s) for s in subjects)
    for name in ("knocked", "admitted", "declined", "withdrawn", "transferred", "expired"):
        assert f"bb.queue.{name}" in subjects
    for name in ("department_registered", "opening_hours_set", "office_opened",
                 "office_closed", "staff_assigned", "consultation_opened",
                 "participant_joined", "interpreter_invited", "interpreter_joined",
                 "participant_left", "consultation_ended"):
        assert f"bb.rooms.{name}" in subjects


def test_base_classes_are_not_registered() -> None:
    assert not any(s.endswith("_queue_event") or s.endswith("_rooms_event")
                   for s in registered_subjects())


def test_event_id_is_derived_from_originator_and_version() -> None:
    originator = uuid4()
    assert event_id_for(originator, 1) == event_id_for(originator, 1)
    assert event_id_for(originator, 1) != event_id_for(originator, 2)
    assert event_id_for(originator, 1) != event_id_for(uuid4(), 1)


def knocked() -> queue_events.Knocked:
    ticket = uuid4()
    return contract(queue_events.Knocked, ticket, 1, NOW, ticket_id=ticket,  # type: ignore[return-value]
                    department_id=uuid4(), priority="walk_in", number=3)


def test_the_envelope_names_type_version_and_service() -> None:
    event = knocked()
    assert (event.type, event.version, event.service) == ("Knocked", 1, "queue")
    assert event.subject == "bb.queue.knocked"


def test_round_trip_over_the_wire() -> None:
    event = knocked()
    parsed = parse_event(event.subject, event.to_wire())
    assert parsed == event and isinstance(parsed, queue_events.Knocked)


def test_parse_event_ignores_fields_it_does_not_know() -> None:
    event = knocked()
    data = json.loads(event.to_wire())
    data["added_in_version_2"] = {"anything": [1, 2]}
    parsed = parse_event(event.subject, json.dumps(data).encode())
    assert parsed == event


def test_parse_event_returns_none_for_an_unknown_subject() -> None:
    assert parse_event("bb.queue.teleported", knocked().to_wire()) is None


def test_events_are_immutable() -> None:
    event = knocked()
    with pytest.raises(ValidationError):
        event.number = 4  # type: ignore[misc]
    assert event.number == 3


def test_no_contract_carries_what_a_citizen_typed() -> None:
    private = {"display_name", "name", "topic", "language", "email", "ip", "message"}
    for subject in registered_subjects():
        if not subject.startswith(("bb.queue.", "bb.rooms.")):
            continue
        cls: type[IntegrationEvent] = _REGISTRY[subject]
        assert not private & set(cls.model_fields), subject
