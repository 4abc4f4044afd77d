"""Figures about a room, for logs and metrics."""

from collections import Counter
from typing import Any

from .forwarding import Publication
from .participant import Participant


def room_stats(participants: list[Participant], publications: list[Publication]) -> dict[str, Any]:
    """Current participants and tracks, and counters of the tracks still live."""
    subscriptions = [s for p in participants for s in p.subscriptions.values()]
    return {
        "participants": len(participants),
        "tracks": dict(Counter(str(p.info.source) for p in publications)),
        "forwarded_tracks": len(subscriptions),
        "frames_received": sum(p.frames_received for p in publications),
        "frames_forwarded": sum(s.track.frames_forwarded for s in subscriptions),
        "frames_dropped": sum(s.track.frames_dropped for s in subscriptions),
        "keyframe_requests": sum(p.keyframes.requests_received for p in publications),
        "keyframe_requests_sent": sum(p.keyframes.requests_sent for p in publications),
    }
