"""Minutes of a room whose tracks nobody consumes: memory stays flat.

Opt-in because it is slow: MEDIA_SOAK_SECONDS=180 .venv/bin/pytest tests/media/test_memory_soak.py
"""

import asyncio
import os
import resource
import time

import pytest

from services.media.sfu import ForwardingRoom, TrackSource
from tests.media.peers import RED, RoomClient, SolidColourVideoTrack, ToneAudioTrack

SOAK_SECONDS = float(os.environ.get("MEDIA_SOAK_SECONDS", "0"))
ALLOWED_GROWTH_MB = 20  # an undrained 640x480 track grows ~14 MB per second


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * resource.getpagesize() / 2**20


def queued_frames(room: ForwardingRoom, participant_id: str) -> list[int]:
    """Frames waiting in the room's received tracks (aiortc's unbounded queues)."""
    receivers = room._participants[participant_id].pc.getReceivers()
    return [r.track._queue.qsize() for r in receivers if r.track is not None]


@pytest.mark.skipif(SOAK_SECONDS <= 0, reason="set MEDIA_SOAK_SECONDS to run")
async def test_memory_stays_flat_with_unconsumed_tracks(room: ForwardingRoom) -> None:
    citizen = RoomClient(room, "citizen", "citizen")
    citizen.publish(SolidColourVideoTrack(RED, 640, 480), TrackSource.CAMERA)
    citizen.publish(ToneAudioTrack(440.0), TrackSource.AUDIO)
    await citizen.join()
    try:
        await asyncio.sleep(min(15.0, SOAK_SECONDS / 4))  # warm up
        baseline = resident_mb()
        peak, longest_queue = baseline, 0
        deadline = time.monotonic() + SOAK_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(5)
            peak = max(peak, resident_mb())
            longest_queue = max(longest_queue, *queued_frames(room, "citizen"))
        received = room.stats()["frames_received"]
        print(f"RSS {baseline:.1f} MB -> peak {peak:.1f} MB; {received} frames received")
        assert received > 5 * SOAK_SECONDS  # frames kept coming the whole time (not a rate check)
        assert peak - baseline < ALLOWED_GROWTH_MB
        assert longest_queue < 10
    finally:
        await citizen.close()
