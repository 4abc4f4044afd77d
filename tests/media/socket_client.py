"""An aiortc participant that joins over the signalling WebSocket, as a browser would.

For tests against a running system: it sends the participant
token as the first message, publishes the given tracks, answers the room's
offers, re-offers its own changes (rolling back on a collision), and keeps
every received track consumed and summarised (``peers.ReceivedTrack``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import websockets
from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from services.media.sfu import TrackSource, rtc_configuration
from tests.media.peers import ReceivedTrack, _consume, parse_track_id


class SocketClosed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class SocketClient:
    def __init__(self, signal_url: str, token: str) -> None:
        self.signal_url = signal_url
        self.token = token
        self.pc = RTCPeerConnection(rtc_configuration())
        self.received: dict[str, ReceivedTrack] = {}
        self.messages: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}
        self.closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.participant_id = ""
        self._sources: dict[str, str] = {}
        self._socket: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._answered = asyncio.Event()
        self.pc.on("track", self._on_track)

    def publish(self, track: MediaStreamTrack, source: TrackSource) -> RTCRtpTransceiver:
        self._sources[track.id] = str(source)
        return self.pc.addTransceiver(track, direction="sendonly")

    async def connect(self) -> dict[str, Any]:
        """Open the socket and authenticate; the welcome message, or SocketClosed."""
        self._socket = await websockets.connect(self.signal_url, open_timeout=10)
        await self._send({"type": "auth", "token": self.token})
        self.welcome = await self._receive()
        self.participant_id = self.welcome["participant_id"]
        return self.welcome

    async def join(self) -> None:
        if self._socket is None:
            await self.connect()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._send(
            {"type": "join", "sdp": self.pc.localDescription.sdp, "sources": self._sources}
        )
        self._tasks.append(asyncio.ensure_future(self._read()))
        await asyncio.wait_for(self._answered.wait(), 10)

    async def renegotiate(self) -> None:
        self._answered.clear()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._send(
            {"type": "offer", "sdp": self.pc.localDescription.sdp, "sources": self._sources}
        )

    async def rejoin(self, tracks: list[tuple[MediaStreamTrack, TrackSource]]) -> None:
        """Replace the peer connection by a new one on the same socket (``rejoin``)."""
        await self.pc.close()
        self.pc = RTCPeerConnection(rtc_configuration())
        self.pc.on("track", self._on_track)
        self._sources = {}
        for track, source in tracks:
            self.publish(track, source)
        self._answered.clear()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._send(
            {"type": "rejoin", "sdp": self.pc.localDescription.sdp, "sources": self._sources}
        )
        await asyncio.wait_for(self._answered.wait(), 10)

    async def send(self, message: dict[str, Any]) -> None:
        await self._send(message)

    async def leave(self) -> None:
        await self._send({"type": "leave"})

    def tracks_from(self, publisher_id: str) -> list[ReceivedTrack]:
        return [
            t
            for t in self.received.values()
            if t.publisher_id == publisher_id and not t.ended.is_set()
        ]

    def live_track(self, publisher_id: str, source: TrackSource) -> ReceivedTrack | None:
        found = [t for t in self.tracks_from(publisher_id) if t.source is source]
        return found[-1] if found else None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._socket is not None:
            await self._socket.close()
        await self.pc.close()

    async def _send(self, message: dict[str, Any]) -> None:
        # The server may close while this answers it (e.g. its offer, then the drop of a
        # withdrawn invitation): that close is the socket's end like one read.
        try:
            await self._socket.send(json.dumps(message))
        except websockets.ConnectionClosed as closed:
            raise self._ended(closed) from closed

    async def _receive(self) -> dict[str, Any]:
        try:
            return dict(json.loads(await self._socket.recv()))
        except websockets.ConnectionClosed as closed:
            raise self._ended(closed) from closed

    def _ended(self, closed: websockets.ConnectionClosed) -> SocketClosed:
        code, reason = _close_of(closed)
        if not self.closed.done():
            self.closed.set_result((code, reason))
        return SocketClosed(code, reason)

    async def _read(self) -> None:
        while True:
            try:
                message = await self._receive()
            except SocketClosed:
                return
            self.messages.append(message)
            # Closed while answering: what the server sent before its close is still read.
            with contextlib.suppress(SocketClosed):
                await self._handle(message)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "answer":
            await self.pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "answer"))
            self._answered.set()
        elif kind == "offer":
            # aiortc cannot roll back: callers avoid offering while an offer may come.
            await self.pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self._send({"type": "answer", "sdp": self.pc.localDescription.sdp})
        elif kind == "collision":
            await asyncio.sleep(0.2)
            await self.renegotiate()

    def _on_track(self, track: MediaStreamTrack) -> None:
        source, publisher_id = parse_track_id(track.id)
        received = ReceivedTrack(track, source, publisher_id)
        self.received[track.id] = received
        self._tasks.append(asyncio.ensure_future(_consume(received)))


def _close_of(closed: websockets.ConnectionClosed) -> tuple[int, str]:
    frame = closed.rcvd
    return (frame.code, frame.reason) if frame is not None else (1006, "connection lost")
