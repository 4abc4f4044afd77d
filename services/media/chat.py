"""The consultation's chat: relayed between the participants of a room, kept nowhere.

A chat line goes from one participant's signalling socket to the sockets of the others
in the same room (every participant of a room signals to the replica hosting it, so the
relay is this process's memory): it is never logged, never published on NATS and never
written to a store; once the room is gone, so is every trace of it on the server.

Client -> server: ``chat {text}``. Server -> clients: ``chat {from, role, text}`` to
everyone in the room (the sender too, as the confirmation), ``chat-refused {reason}`` to
the sender only (``malformed``, ``empty``, ``too_long``, ``too_fast``), and
``chat-members {members}`` on every change of who is in the room, each member with
``participant_id``, ``role`` and, where their pass carries them, ``name`` and
``language``. A citizen's name is shown to staff only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.common.text import clean_text

MAX_CHARS = 1000  # a file number, a link, a few sentences
BURST = 5  # messages at once ...
PER_SECOND = 0.5  # ... then one every two seconds on average

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Person:
    """Who a participant is to the others, from their participant token."""

    participant_id: str
    role: str
    name: str | None = None
    language: str | None = None

    def as_seen_by(self, role: str) -> dict[str, Any]:
        seen: dict[str, Any] = {"participant_id": self.participant_id, "role": self.role}
        if self.name and (self.role != "citizen" or role == "staff"):
            seen["name"] = self.name
        if self.language and (self.role != "citizen" or role == "staff"):
            seen["language"] = self.language
        return seen


@dataclass
class Allowance:
    """A token bucket: ``BURST`` messages at once, then ``PER_SECOND``."""

    tokens: float = BURST
    checked: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.checked) * PER_SECOND)
        self.checked = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Seat:
    """One participant's place in a room's chat."""

    def __init__(self, chat: Chat, key: object, person: Person, send: Send) -> None:
        self._chat = chat
        self._key = key
        self.person = person
        self.send = send
        self._allowance = Allowance()

    async def say(self, message: dict[str, Any]) -> None:
        """Relay a chat line to everyone in the room, or tell the sender why not."""
        text = message.get("text")
        if not isinstance(text, str):
            await self.send({"type": "chat-refused", "reason": "malformed"})
            return
        if len(text) > MAX_CHARS:
            await self.send({"type": "chat-refused", "reason": "too_long"})
            return
        cleaned = clean_text(text)
        if not cleaned:
            await self.send({"type": "chat-refused", "reason": "empty"})
            return
        if not self._allowance.take():
            await self.send({"type": "chat-refused", "reason": "too_fast"})
            return
        line = {
            "type": "chat",
            "from": self.person.participant_id,
            "role": self.person.role,
            "text": cleaned,
        }
        for seat in self._chat.seats(self._key):
            await seat.send(line)

    async def leave(self) -> None:
        await self._chat.leave(self._key, self)


class Chat:
    """The chats of the rooms this process hosts, keyed by the room object."""

    def __init__(self) -> None:
        self._rooms: dict[object, list[Seat]] = {}

    def seats(self, key: object) -> list[Seat]:
        return list(self._rooms.get(key, ()))

    async def take_seat(self, key: object, person: Person, send: Send) -> Seat:
        seat = Seat(self, key, person, send)
        seats = self._rooms.setdefault(key, [])
        seats[:] = [s for s in seats if s.person.participant_id != person.participant_id]
        seats.append(seat)
        await self._tell_members(key)
        return seat

    async def leave(self, key: object, seat: Seat) -> None:
        seats = self._rooms.get(key)
        if seats is None or seat not in seats:
            return
        seats.remove(seat)
        if not seats:
            del self._rooms[key]  # the room's chat is gone with its last participant
            return
        await self._tell_members(key)

    async def _tell_members(self, key: object) -> None:
        seats = self.seats(key)
        for seat in seats:
            members = [s.person.as_seen_by(seat.person.role) for s in seats]
            await seat.send({"type": "chat-members", "members": members})


CHAT = Chat()
