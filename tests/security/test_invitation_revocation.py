"""Withdrawing an interpreter's invitation reaches every token derived from it: the
participant token received on joining by the invitation no longer opens the media
socket, and an interpreter already in the room is dropped at once (the others are told)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import websockets

from services.common.tokens import DERIVED_FROM, TokenRevoked, TokenSigner, verify_revocable
from services.media.sfu import TrackSource, loopback_host_candidates
from services.media.signalling import CloseCode
from tests.conftest import SystemProcess
from tests.helpers import StaffClient
from tests.media.peers import BLUE, GREEN, RED, eventually
from tests.media.socket_client import SocketClient
from tests.media.system_support import bearer, join_over_socket, open_consultation

WITHDRAWN = "invitation withdrawn"


@pytest.fixture(autouse=True)
def loopback() -> Iterator[None]:
    with loopback_host_candidates():
        yield


@pytest.fixture
async def clients() -> AsyncIterator[list[SocketClient]]:
    joined: list[SocketClient] = []
    yield joined
    for client in joined:
        await client.close()


@dataclass
class Interpreted:
    consultation_id: str
    tokens: dict[str, str]  # role -> participant token
    invitation_id: str
    staff: StaffClient


def open_interpreted_consultation(base: str) -> Interpreted:
    """A consultation with citizen and staff, and an interpreter joined by invitation."""
    consultation = open_consultation(base, "anna", interpreter=False)
    invited = consultation.staff.post(f"/consultations/{consultation.id}/invitations")
    assert invited.status_code == 201, invited.text
    joined = httpx.post(
        f"{base}/api/v1/consultations/{consultation.id}/interpreter-join",
        headers=bearer(invited.json()["token"]),
    )
    assert joined.status_code == 200, joined.text
    tokens = {**consultation.tokens, "interpreter": joined.json()["participant_token"]}
    return Interpreted(
        consultation.id, tokens, str(invited.json()["invitation_id"]), consultation.staff
    )


def withdraw(base: str, interpreted: Interpreted) -> None:
    staff = interpreted.staff
    withdrawn = staff.http.delete(
        f"/consultations/{interpreted.consultation_id}/invitations/{interpreted.invitation_id}",
        headers={"X-CSRF-Token": staff.csrf},
    )
    assert withdrawn.status_code == 204, withdrawn.text


def signal_url(system: SystemProcess, consultation_id: str) -> str:
    return f"ws://127.0.0.1:{system.port}/api/v1/media/consultations/{consultation_id}/signal"


async def refused_with(url: str, token: str) -> tuple[int, str, list[str]]:
    """Connect, send the token, read until the server closes: (code, reason, messages)."""
    received = []
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        try:
            while True:
                received.append(await asyncio.wait_for(socket.recv(), 10))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason, received


def participants_seen(client: SocketClient) -> set[str]:
    updates = [m for m in client.messages if m.get("type") == "participants"]
    return {p["participant_id"] for p in updates[-1]["participants"]} if updates else set()


async def test_a_connected_interpreter_is_dropped_when_the_invitation_is_withdrawn(
    system: SystemProcess, clients: list[SocketClient]
) -> None:
    interpreted = await asyncio.to_thread(open_interpreted_consultation, system.base)
    colours = {"citizen": RED, "staff": GREEN, "interpreter": BLUE}
    by_role = {}
    for role, colour in colours.items():
        client = await join_over_socket(
            system.base, interpreted.consultation_id, interpreted.tokens[role], colour
        )
        clients.append(client)
        by_role[role] = client
    staff, interpreter = by_role["staff"], by_role["interpreter"]
    camera = TrackSource.CAMERA
    await eventually(lambda: staff.live_track(interpreter.participant_id, camera) is not None)
    await eventually(lambda: interpreter.participant_id in participants_seen(staff))
    seen = staff.live_track(interpreter.participant_id, camera)
    assert seen is not None

    await asyncio.to_thread(withdraw, system.base, interpreted)

    code, reason = await asyncio.wait_for(interpreter.closed, 10)
    assert (code, reason) == (CloseCode.TOKEN_REVOKED, WITHDRAWN)
    assert {"type": "bye", "reason": WITHDRAWN} in interpreter.messages
    await eventually(seen.ended.is_set)  # its media stopped reaching the others
    for other in (staff, by_role["citizen"]):
        await eventually(lambda o=other: interpreter.participant_id not in participants_seen(o))
        assert not other.closed.done()  # the consultation goes on without the interpreter

    url = signal_url(system, interpreted.consultation_id)
    code, reason, messages = await refused_with(url, interpreted.tokens["interpreter"])
    assert (code, messages) == (CloseCode.TOKEN_REVOKED, [])
    assert "withdrawn" in reason
    room = httpx.get(
        f"{system.base}/api/v1/media/consultations/{interpreted.consultation_id}",
        headers=bearer(interpreted.tokens["interpreter"]),
    )
    assert room.status_code == 410
    assert "withdrawn" in room.json()["detail"]


async def test_the_denylist_refuses_the_token_at_a_media_server_that_did_not_see_it_happen(
    system_factory, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    first = system_factory(data_dir=tmp_path / "data")
    interpreted = await asyncio.to_thread(open_interpreted_consultation, first.base)
    await asyncio.to_thread(withdraw, first.base, interpreted)
    first.stop()
    # Started afterwards, it saw no withdrawal live: only the shared denylist knows.
    second = system_factory(data_dir=tmp_path / "data")

    url = signal_url(second, interpreted.consultation_id)
    code, reason, messages = await refused_with(url, interpreted.tokens["interpreter"])
    assert (code, messages) == (CloseCode.TOKEN_REVOKED, [])
    assert "withdrawn" in reason
    for role in ("citizen", "staff"):  # tokens not derived from the invitation still work
        assert await first_answer(url, interpreted.tokens[role]) != CloseCode.TOKEN_REVOKED


async def first_answer(url: str, token: str) -> str | int:
    """The type of the first message after the token, or the close code."""
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        try:
            return str(json.loads(await asyncio.wait_for(socket.recv(), 10))["type"])
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code


async def test_a_token_derived_from_a_withdrawn_invitation_is_revoked_with_it() -> None:
    signer = TokenSigner(b"k" * 32)
    withdrawn = {"inv-1"}

    async def is_revoked(key: str) -> bool:
        return key in withdrawn

    derived = signer.issue("participant", "p-1", 600, consultation="c", **{DERIVED_FROM: "inv-1"})
    other = signer.issue("participant", "p-2", 600, consultation="c", **{DERIVED_FROM: "inv-2"})
    with pytest.raises(TokenRevoked):
        await verify_revocable(signer, derived, "participant", is_revoked)
    assert (await verify_revocable(signer, other, "participant", is_revoked)).subject == "p-2"
