"""One participant's signalling WebSocket: token first, then SDP and ICE both ways.

The protocol (JSON text messages, ``type`` names each; see docs/media.md):

client -> server                          server -> client
``auth {token}`` (first, within 10 s)      ``welcome {participant_id, role, ice}``
``join {sdp, sources}``                    ``answer {sdp, tracks}``
``answer {sdp}`` (to an offer)             ``offer {sdp, tracks}`` (renegotiation)
``offer {sdp, sources}`` (own changes)     ``collision`` (roll back, answer, re-offer)
``candidate {candidate, sdpMid, ...}``     ``participants {participants}``
``leave``, ``ping``                        ``bye {reason}``, ``pong``, ``error {detail}``
``rejoin {sdp, sources}`` (new peer conn.)  ``media-stalled``, ``media-resumed``
                                          ``peer-state {participant_id, role, state}``
                                          ``send-limits {mid, track_id, max_bitrate, ...}``

Nothing about the room is revealed, and no peer connection is created, before
the token checks out. Refusals and endings close the socket with a code from
``CloseCode`` and a reason a page can show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from services.common.logging import get_logger
from services.common.tokens import TokenError, TokenExpired, TokenSigner, derived_from
from services.media import chat
from services.media.sfu.events import (
    REASON_CONNECTION_FAILED,
    REASON_LEFT,
    REASON_MEDIA_LOST,
    Answer,
    Disconnected,
    IceRestartUnsupported,
    MediaResumed,
    MediaStalled,
    NegotiationCollision,
    Offer,
    ParticipantAlreadyJoined,
    ParticipantConnected,
    ParticipantLeft,
    ParticipantStateChanged,
    RoomError,
    RoomEvent,
    SendLimits,
)

if TYPE_CHECKING:
    from services.media.sfu import ForwardingRoom

log = get_logger(__name__)

AUTH_TIMEOUT_SECONDS = 10.0
JOIN_TIMEOUT_SECONDS = 30.0
MAX_MESSAGE_BYTES = 256 * 1024
REASON_REPLACED = "joined again elsewhere"
# Its media server stops; the room opens again on another one: connect again.
REASON_MOVED = "room moved to another media server"
# The invitation the participant joined by was withdrawn by staff.
REASON_REVOKED = "invitation withdrawn"


class CloseCode(IntEnum):
    LEFT = 1000
    ROOM_CLOSED = 4000
    REPLACED = 4001
    CONNECTION_FAILED = 4002
    MOVED = 4003
    BAD_MESSAGE = 4400
    TOKEN_INVALID = 4401
    TOKEN_OTHER_ROOM = 4403
    NO_ROOM = 4404
    TOKEN_MISSING = 4408
    WRONG_REPLICA = 4409
    TOKEN_EXPIRED = 4410
    TOKEN_REVOKED = 4411
    SERVER_ERROR = 4500
    MEDIA_UNAVAILABLE = 4503


class Refused(Exception):
    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Admitted:
    participant_id: str
    role: str
    invitation: str | None = None  # what the token derives from: withdrawing it ends this
    name: str | None = None  # shown to the others (services/media/chat.py), never logged
    language: str | None = None


def close_code_for(reason: str) -> CloseCode:
    if reason == REASON_LEFT:
        return CloseCode.LEFT
    if reason == REASON_REPLACED:
        return CloseCode.REPLACED
    if reason in (REASON_CONNECTION_FAILED, REASON_MEDIA_LOST):
        return CloseCode.CONNECTION_FAILED
    if reason == REASON_MOVED:
        return CloseCode.MOVED
    if reason == REASON_REVOKED:
        return CloseCode.TOKEN_REVOKED
    return CloseCode.ROOM_CLOSED


def check_token(signer: TokenSigner, token: Any, consultation_id: UUID) -> Admitted:
    """The participant the token admits to this consultation's room, or Refused."""
    if not isinstance(token, str) or not token:
        raise Refused(CloseCode.TOKEN_MISSING, "a participant token is required")
    try:
        claims = signer.verify(token, "participant")
    except TokenExpired as error:
        raise Refused(CloseCode.TOKEN_EXPIRED, "the participant token has expired") from error
    except TokenError as error:
        raise Refused(CloseCode.TOKEN_INVALID, "the participant token is not valid") from error
    if claims.extra.get("consultation") != str(consultation_id):
        raise Refused(CloseCode.TOKEN_OTHER_ROOM, "the token is for another consultation")
    return Admitted(
        claims.subject,
        str(claims.extra.get("role", "citizen")),
        derived_from(claims),
        claims.extra.get("name"),
        claims.extra.get("lang"),
    )


async def authenticate(
    websocket: WebSocket, signer: TokenSigner, consultation_id: UUID
) -> Admitted:
    try:
        first = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_SECONDS)
    except TimeoutError as error:
        raise Refused(CloseCode.TOKEN_MISSING, "no participant token in time") from error
    message = parse(first)
    if message.get("type") != "auth":
        raise Refused(CloseCode.TOKEN_MISSING, "the first message must be auth")
    return check_token(signer, message.get("token"), consultation_id)


def parse(text: str) -> dict[str, Any]:
    if len(text) > MAX_MESSAGE_BYTES:
        raise Refused(CloseCode.BAD_MESSAGE, "message too large")
    try:
        message = json.loads(text)
    except ValueError as error:
        raise Refused(CloseCode.BAD_MESSAGE, "messages are JSON objects") from error
    if not isinstance(message, dict):
        raise Refused(CloseCode.BAD_MESSAGE, "messages are JSON objects")
    return message


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code=code, reason=reason[:120])


def tracks_message(kind: str, sdp: str, tracks: Any) -> dict[str, Any]:
    return {"type": kind, "sdp": sdp, "tracks": {mid: t.as_dict() for mid, t in tracks.items()}}


Listen = Callable[[Callable[[RoomEvent], None]], Callable[[], None]]


class SignallingSession:
    """Relays one admitted participant's signalling between its socket and the room."""

    def __init__(
        self, websocket: WebSocket, room: ForwardingRoom, admitted: Admitted, listen: Listen
    ) -> None:
        self.websocket = websocket
        self.room = room
        self.participant_id = admitted.participant_id
        self.role = admitted.role
        self.invitation = admitted.invitation
        self.person = chat.Person(
            admitted.participant_id, admitted.role, admitted.name, admitted.language
        )
        self._seat: chat.Seat | None = None
        self._listen = listen
        self._send_lock = asyncio.Lock()
        self._ended = False
        self._dropped: str | None = None  # why the server ended this session
        self._side_tasks: set[asyncio.Future[None]] = set()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if self.websocket.application_state != WebSocketState.CONNECTED:
                return
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.websocket.send_text(json.dumps(message))

    async def drop(self, reason: str) -> None:
        """End this participant's session from the server's side (e.g. the invitation it
        joined by was withdrawn): its peer connection closes, the others are told, and it
        hears ``bye`` and its socket closes."""
        self._dropped = reason
        if self.participant_id in self.room.participants():
            await self.room.leave(self.participant_id, reason)  # bye and close: the relay
            return
        self._ended = True
        await self.send({"type": "bye", "reason": reason})
        await close(self.websocket, close_code_for(reason), reason)

    async def run(self, welcome: dict[str, Any]) -> None:
        await self.send({"type": "welcome", **welcome})
        try:
            text = await asyncio.wait_for(self.websocket.receive_text(), JOIN_TIMEOUT_SECONDS)
        except (WebSocketDisconnect, RuntimeError):
            if self._dropped:
                return
            raise
        join = parse(text)
        if join.get("type") != "join" or not isinstance(join.get("sdp"), str):
            raise Refused(CloseCode.BAD_MESSAGE, "expected join with an SDP offer")
        if self._dropped:
            return
        await self._join(join["sdp"], join.get("sources"))
        if self._dropped:  # while it joined: the room lets it go again (bye by the relay)
            await self.room.leave(self.participant_id, self._dropped)
        stop_listening = self._listen(self._on_room_event)
        relay = asyncio.create_task(self._relay_room_messages())
        self._seat = await chat.CHAT.take_seat(self.room, self.person, self.send)
        try:
            await self._read_client_messages()
        finally:
            await self._seat.leave()
            stop_listening()
            if not self._ended:
                await self.room.leave(self.participant_id)
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(relay, 2)

    def farewell(self) -> tuple[CloseCode, str]:
        """How the socket closes when the relay has not closed it first (it waits at most
        2 s for the bye): why the server ended the session, else why the room closed,
        else the participant left."""
        reason = self._dropped or self.room.close_reason or REASON_LEFT
        return close_code_for(reason), reason

    async def _join(self, sdp: str, sources: Any) -> None:
        try:
            await self.room.join(self.participant_id, self.role, sdp, _sources(sources))
        except ParticipantAlreadyJoined:
            await self.room.leave(self.participant_id, REASON_REPLACED)
            await self.room.join(self.participant_id, self.role, sdp, _sources(sources))

    async def _relay_room_messages(self) -> None:
        async for message in self.room.messages(self.participant_id):
            if isinstance(message, Answer | Offer):
                kind = "answer" if isinstance(message, Answer) else "offer"
                await self.send(tracks_message(kind, message.sdp, message.tracks))
            elif isinstance(message, Disconnected):
                self._ended = True
                await self.send({"type": "bye", "reason": message.reason})
                await close(self.websocket, close_code_for(message.reason), message.reason)
            elif isinstance(message, MediaStalled):
                await self.send(
                    {
                        "type": "media-stalled",
                        "silent_seconds": message.silent_seconds,
                        "drop_after_seconds": message.drop_after_seconds,
                    }
                )
            elif isinstance(message, MediaResumed):
                await self.send({"type": "media-resumed"})
            elif isinstance(message, SendLimits):
                await self.send(send_limits_message(message))

    async def _read_client_messages(self) -> None:
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "answer": self._on_answer,
            "offer": self._on_offer,
            "candidate": self._on_candidate,
            "ping": self._on_ping,
            "chat": self._on_chat,
            "rejoin": self._on_rejoin,
        }
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while not self._ended:
                message = parse(await self.websocket.receive_text())
                kind = message.get("type")
                if kind == "leave":
                    return
                handler = handlers.get(str(kind))
                if handler is None:
                    await self.send({"type": "error", "detail": f"unknown message type {kind!r}"})
                    continue
                try:
                    await handler(message)
                except RoomError as error:
                    if self._ended or self.room.closed:
                        return
                    await self.send({"type": "error", "detail": type(error).__name__})

    async def _on_answer(self, message: dict[str, Any]) -> None:
        await self.room.accept_answer(self.participant_id, str(message.get("sdp", "")))

    async def _on_offer(self, message: dict[str, Any]) -> None:
        try:
            sdp = str(message.get("sdp", ""))
            await self.room.handle_offer(self.participant_id, sdp, _sources(message.get("sources")))
        except NegotiationCollision:
            await self.send({"type": "collision"})
        except IceRestartUnsupported:
            await self.send({"type": "error", "detail": "ice-restart-unsupported"})

    async def _on_rejoin(self, message: dict[str, Any]) -> None:
        sdp = message.get("sdp")
        if not isinstance(sdp, str):
            await self.send({"type": "error", "detail": "rejoin needs an SDP offer"})
            return
        await self.room.rejoin(self.participant_id, sdp, _sources(message.get("sources")))

    async def _on_candidate(self, message: dict[str, Any]) -> None:
        line = message.get("candidate")
        if not line:
            return  # end of candidates: aiortc needs no marker
        from aiortc.sdp import candidate_from_sdp  # aiortc only where rooms run

        candidate = candidate_from_sdp(str(line).removeprefix("candidate:"))
        candidate.sdpMid = message.get("sdpMid")
        candidate.sdpMLineIndex = message.get("sdpMLineIndex")
        await self.room.add_ice_candidate(self.participant_id, candidate)

    async def _on_ping(self, message: dict[str, Any]) -> None:
        await self.send({"type": "pong"})

    async def _on_chat(self, message: dict[str, Any]) -> None:
        if self._seat is not None:
            await self._seat.say(message)

    def _on_room_event(self, event: RoomEvent) -> None:
        if isinstance(event, ParticipantStateChanged):
            state: dict[str, Any] = {
                "type": "peer-state",
                "participant_id": event.participant_id,
                "role": event.role,
                "state": event.state,
            }
            if event.reason:
                state["reason"] = event.reason
            self._send_soon(state)
        if isinstance(event, ParticipantConnected | ParticipantLeft):
            states = self.room.participant_states()
            participants = [
                {"participant_id": pid, "role": role, "state": states.get(pid, "")}
                for pid, role in self.room.participants().items()
            ]
            self._send_soon({"type": "participants", "participants": participants})

    def _send_soon(self, message: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self.send(message))
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)


def send_limits_message(limits: SendLimits) -> dict[str, Any]:
    return {
        "type": "send-limits",
        "mid": limits.mid,
        "track_id": limits.track_id,
        "max_bitrate": limits.max_bitrate,
        "max_framerate": limits.max_framerate,
        "scale_resolution_down_by": limits.scale_resolution_down_by,
    }


def _sources(sources: Any) -> dict[str, str] | None:
    if not isinstance(sources, dict):
        return None
    allowed = {"audio", "camera", "screen"}
    return {str(k): str(v) for k, v in sources.items() if v in allowed}
