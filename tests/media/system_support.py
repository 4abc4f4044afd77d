"""Helpers for media tests against the real system: a consultation with three
participants' tokens, and aiortc clients that join over the signalling socket."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import nats

from services.media.sfu import TrackSource
from tests.helpers import StaffClient, eventually, knock, open_department
from tests.media.peers import SolidColourVideoTrack, ToneAudioTrack, Yuv
from tests.media.socket_client import SocketClient


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Consultation:
    id: str
    tokens: dict[str, str]  # role -> participant token
    staff: StaffClient


def open_consultation(
    base: str, staff_name: str = "anna", interpreter: bool = True
) -> Consultation:
    """Knock, admit, and let citizen, staff and (optionally) an interpreter join."""
    citizen = httpx.Client(base_url=f"{base}/api/v1", timeout=10)
    staff = StaffClient(f"{base}/api/v1", staff_name)
    ticket = knock(citizen, open_department(citizen, "demo"))
    admitted = staff.post(f"/tickets/{ticket['ticket_id']}/admit")
    assert admitted.status_code == 200, admitted.text
    consultation_id = eventually(
        lambda: citizen.get(
            f"/tickets/{ticket['ticket_id']}", headers=bearer(ticket["token"])
        ).json()["consultation_id"]
    )
    tokens = {}
    joined = citizen.post(f"/consultations/{consultation_id}/join", headers=bearer(ticket["token"]))
    assert joined.status_code == 200, joined.text
    assert joined.json()["media_path"] == f"/api/v1/media/consultations/{consultation_id}"
    tokens["citizen"] = joined.json()["participant_token"]
    staff_joined = staff.post(f"/consultations/{consultation_id}/join")
    assert staff_joined.status_code == 200, staff_joined.text
    tokens["staff"] = staff_joined.json()["participant_token"]
    if interpreter:
        invitation = staff.post(f"/consultations/{consultation_id}/invitations")
        assert invitation.status_code == 201, invitation.text
        interpreted = citizen.post(
            f"/consultations/{consultation_id}/interpreter-join",
            headers=bearer(invitation.json()["token"]),
        )
        assert interpreted.status_code == 200, interpreted.text
        tokens["interpreter"] = interpreted.json()["participant_token"]
    return Consultation(str(consultation_id), tokens, staff)


def where_is_the_room(base: str, consultation_id: str, token: str) -> dict[str, Any]:
    """GET /api/v1/media/consultations/{id} until the room is assigned."""

    def ask() -> dict[str, Any] | None:
        response = httpx.get(
            f"{base}/api/v1/media/consultations/{consultation_id}", headers=bearer(token)
        )
        return dict(response.json()) if response.status_code == 200 else None

    return dict(eventually(ask))


async def join_over_socket(
    base: str,
    consultation_id: str,
    token: str,
    colour: Yuv | None = None,
    tone: float | None = None,
) -> SocketClient:
    room = await asyncio.to_thread(where_is_the_room, base, consultation_id, token)
    client = SocketClient(room["signal_url"], token)
    if colour is not None:
        client.publish(SolidColourVideoTrack(colour), TrackSource.CAMERA)
    if tone is not None:
        client.publish(ToneAudioTrack(tone), TrackSource.AUDIO)
    await client.join()
    return client


class EventTap:
    """Collects integration events from NATS (core subscription on ``bb.media.>``)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._connection: Any = None

    async def start(self, nats_url: str, subject: str = "bb.media.>") -> None:
        self._connection = await nats.connect(nats_url)

        async def collect(msg: Any) -> None:
            with self._lock:
                self.events.append(json.loads(msg.data))

        await self._connection.subscribe(subject, cb=collect)

    def of_type(self, event_type: str, **fields: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e
                for e in self.events
                if e["type"] == event_type and all(e.get(k) == v for k, v in fields.items())
            ]

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()
