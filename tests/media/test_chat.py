"""The consultation chat's relay (services/media/chat.py): who hears what, and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from services.media import chat
from services.media.chat import Chat, Person


class Inbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]


ROOM, OTHER_ROOM = object(), object()
STAFF = Person("p-staff", "staff")
CITIZEN = Person("p-citizen", "citizen", "Erika Muster", "tr")
INTERPRETER = Person("p-interpreter", "interpreter", "Ayşe Dolmetsch", "tr")


async def _seated(relay: Chat) -> tuple[list[chat.Seat], list[Inbox]]:
    inboxes = [Inbox(), Inbox(), Inbox()]
    seats = [
        await relay.take_seat(ROOM, person, inbox)
        for person, inbox in zip((STAFF, CITIZEN, INTERPRETER), inboxes, strict=True)
    ]
    return seats, inboxes


async def test_a_line_reaches_everyone_in_the_room_and_nobody_else() -> None:
    relay = Chat()
    seats, inboxes = await _seated(relay)
    outsider = Inbox()
    await relay.take_seat(OTHER_ROOM, Person("p-x", "staff"), outsider)
    await seats[0].say({"type": "chat", "text": "Aktenzeichen: 4711-\x1b[31mB\n2026"})
    for inbox in inboxes:
        assert inbox.of("chat") == [{
            "type": "chat", "from": "p-staff", "role": "staff", "text": "Aktenzeichen: 4711-B\n2026"
        }]
    assert outsider.of("chat") == []


async def test_names_the_citizens_only_to_staff_the_interpreters_to_all() -> None:
    relay = Chat()
    _, (staff, citizen, interpreter) = await _seated(relay)
    seen_by_staff = staff.of("chat-members")[-1]["members"]
    assert {"participant_id": "p-citizen", "role": "citizen", "name": "Erika Muster",
            "language": "tr"} in seen_by_staff
    for inbox in (citizen, interpreter):
        members = inbox.of("chat-members")[-1]["members"]
        assert {"participant_id": "p-citizen", "role": "citizen"} in members
        assert {"participant_id": "p-interpreter", "role": "interpreter",
                "name": "Ayşe Dolmetsch", "language": "tr"} in members


async def test_leaving_tells_the_others_and_the_last_one_takes_the_chat_along() -> None:
    relay = Chat()
    seats, inboxes = await _seated(relay)
    await seats[2].leave()
    assert [m["participant_id"] for m in inboxes[0].of("chat-members")[-1]["members"]] == [
        "p-staff", "p-citizen"
    ]
    await seats[1].leave()
    await seats[0].leave()
    assert relay.seats(ROOM) == [] and ROOM not in relay._rooms


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "chat"}, "malformed"),
        ({"type": "chat", "text": ["a"]}, "malformed"),
        ({"type": "chat", "text": " \u202e\x00 "}, "empty"),
        ({"type": "chat", "text": "x" * (chat.MAX_CHARS + 1)}, "too_long"),
    ],
)
async def test_refused_lines_are_told_to_the_sender_only(
    message: dict[str, Any], reason: str
) -> None:
    relay = Chat()
    seats, inboxes = await _seated(relay)
    await seats[1].say(message)
    assert inboxes[1].of("chat-refused") == [{"type": "chat-refused", "reason": reason}]
    assert all(inbox.of("chat") == [] for inbox in inboxes)
    assert inboxes[0].of("chat-refused") == []


async def test_a_flood_is_cut_off_after_the_burst() -> None:
    relay = Chat()
    seats, inboxes = await _seated(relay)
    for n in range(chat.BURST + 3):
        await seats[1].say({"type": "chat", "text": f"Nachricht {n}"})
    assert len(inboxes[0].of("chat")) == chat.BURST
    assert inboxes[1].of("chat-refused") == [{"type": "chat-refused", "reason": "too_fast"}] * 3
