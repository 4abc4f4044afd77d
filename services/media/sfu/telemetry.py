"""Prometheus counters of forwarding (the default registry, served at /metrics):
frames and payload bytes in and out by kind, frames dropped, keyframe requests."""

from prometheus_client import Counter

FRAMES_RECEIVED = Counter(
    "bb_media_frames_received_total", "Encoded frames received from publishers", ["kind"]
)
FRAMES_FORWARDED = Counter(
    "bb_media_frames_forwarded_total", "Encoded frames forwarded to subscribers", ["kind"]
)
FRAMES_DROPPED = Counter(
    "bb_media_frames_dropped_total",
    "Frames not forwarded (waiting for a keyframe, subscriber too slow)",
    ["kind"],
)
for _kind in ("audio", "video"):  # series at 0: the first drop counts in rate()
    FRAMES_DROPPED.labels(_kind)
BYTES_RECEIVED = Counter(
    "bb_media_received_bytes_total", "Media payload bytes received from publishers", ["kind"]
)
BYTES_SENT = Counter(
    "bb_media_sent_bytes_total", "Media payload bytes forwarded to subscribers", ["kind"]
)
KEYFRAME_REQUESTS = Counter(
    "bb_media_keyframe_requests_total",
    "Keyframe requests: from subscribers (PLI/FIR or the room's own), and sent to publishers",
    ["direction"],
)
