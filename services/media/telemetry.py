"""Prometheus metrics of the media service (the default registry, served at /metrics).

Forwarding counts its own frames, bytes and keyframe requests (sfu/telemetry.py).
Sampled every few seconds from the hosted rooms (``StatsSampler``): rooms, peers,
tracks by kind and source, and from aiortc's ``getStats()``: packets received and
lost in both directions and the round-trip time reported by the participants'
receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

from services.common.logging import get_logger

if TYPE_CHECKING:
    from services.media.sfu import ForwardingRoom

log = get_logger(__name__)

# Summed over processes under ``buergerbuero up`` (prometheus_client's multiprocess mode).
ROOMS = Gauge("bb_media_rooms", "Media rooms hosted by this replica", multiprocess_mode="livesum")
PEERS = Gauge(
    "bb_media_peers", "Participants connected to this replica's rooms", multiprocess_mode="livesum"
)
TRACKS = Gauge(
    "bb_media_tracks", "Published tracks", ["kind", "source"], multiprocess_mode="livesum"
)
PACKETS_RECEIVED = Counter(
    "bb_media_packets_received_total",
    "RTP packets received: inbound by this replica, outbound by the participants",
    ["direction", "kind"],
)
PACKETS_LOST = Counter(
    "bb_media_packets_lost_total",
    "RTP packets lost: inbound to this replica, outbound as the participants report",
    ["direction", "kind"],
)
for _direction in ("inbound", "outbound"):  # series at 0: the first loss counts in rate()
    for _kind in ("audio", "video"):
        PACKETS_LOST.labels(_direction, _kind)
ROUND_TRIP = Histogram(
    "bb_media_round_trip_seconds",
    "Round-trip time to the participants (RTCP receiver reports), sampled",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6),
)

KINDS = ("audio", "video")
SOURCES = {"audio": ("audio",), "video": ("camera", "screen")}

Rooms = Callable[[], Iterable["ForwardingRoom"]]


class StatsSampler:
    """Every ``interval`` seconds: room gauges, and getStats() deltas into counters."""

    def __init__(self, rooms: Rooms, interval: float = 5.0) -> None:
        self._rooms = rooms
        self._interval = interval
        self._last: dict[tuple[int, str, str], float] = {}

    async def run(self) -> None:
        """Sample until cancelled (one of the service's tasks)."""
        while True:
            try:
                await self.sample()
            except Exception:
                log.exception("media_stats_failed")
            await asyncio.sleep(self._interval)

    async def sample(self) -> None:
        rooms = [room for room in self._rooms() if not room.closed]
        ROOMS.set(len(rooms))
        PEERS.set(sum(len(room.participants()) for room in rooms))
        tracks = Tally(
            (info.kind, str(info.source)) for r in rooms for info in r.published_tracks()
        )
        for kind in KINDS:
            for source in SOURCES[kind]:
                TRACKS.labels(kind, source).set(tracks[(kind, source)])
        seen: set[tuple[int, str, str]] = set()
        for room in rooms:
            for pc in room.peer_connections().values():
                with contextlib.suppress(Exception):  # closed under our feet
                    report = await pc.getStats()
                    self._count(id(pc), report.values(), seen)
        self._last = {key: value for key, value in self._last.items() if key in seen}

    def _count(self, pc_key: int, stats: Iterable[Any], seen: set[tuple[int, str, str]]) -> None:
        for stat in stats:
            if stat.type == "inbound-rtp":
                direction = "inbound"
            elif stat.type == "remote-inbound-rtp":
                direction = "outbound"
                if stat.roundTripTime:
                    ROUND_TRIP.observe(stat.roundTripTime)
            else:
                continue
            for field, counter in (
                ("packetsReceived", PACKETS_RECEIVED),
                ("packetsLost", PACKETS_LOST),
            ):
                key = (pc_key, stat.id, field)
                seen.add(key)
                value = float(getattr(stat, field) or 0)
                delta = value - self._last.get(key, 0.0)
                self._last[key] = value
                if delta > 0:
                    counter.labels(direction, stat.kind).inc(delta)
