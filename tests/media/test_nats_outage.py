"""A participant whose socket drops while NATS is away comes back into the media room:
the hosting replica knows its rooms without asking NATS."""

from __future__ import annotations

import asyncio

from services.common.natsserver import EmbeddedNats
from services.media.sfu import TrackSource
from tests.media.peers import GREEN, RED, eventually
from tests.media.system_support import join_over_socket, open_consultation, where_is_the_room


async def test_participants_join_the_media_room_while_nats_is_away(
    system_factory, nats_server: EmbeddedNats  # type: ignore[no-untyped-def]
) -> None:
    system = system_factory()
    consultation = await asyncio.to_thread(open_consultation, system.base, "anna", False)
    tokens = consultation.tokens
    where = await asyncio.to_thread(
        where_is_the_room, system.base, consultation.id, tokens["citizen"]
    )

    nats_server.kill()
    citizen = await join_over_socket(system.base, consultation.id, tokens["citizen"], GREEN)
    staff = await join_over_socket(system.base, consultation.id, tokens["staff"], RED)
    try:
        again = await asyncio.to_thread(
            where_is_the_room, system.base, consultation.id, tokens["staff"]
        )
        assert again["signal_url"] == where["signal_url"]
        await eventually(lambda: staff.live_track(citizen.participant_id, TrackSource.CAMERA))
        await eventually(lambda: citizen.live_track(staff.participant_id, TrackSource.CAMERA))
    finally:
        await citizen.close()
        await staff.close()
        nats_server.start()
