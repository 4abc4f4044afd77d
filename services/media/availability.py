"""Can this process run media rooms? Decided once, at start, without taking it down.

The rooms forward media through private aiortc hooks (sfu/aiortc_internals.py).
With another aiortc a hook may be gone (an ImportError or AttributeError while
importing the forwarding code, as with aiortc 1.12–1.15) or have changed (the
structure checks). Either way the media service starts without rooms: a log line
``media_forwarding_disabled``, the gauge ``bb_media_forwarding_available`` at 0,
and ``GET /api/v1/media/status`` / the room lookup saying video is unavailable,
while the queue, the rooms service and the audit go on.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from prometheus_client import Gauge

from services.common.logging import get_logger

log = get_logger(__name__)

FORWARDING_AVAILABLE = Gauge(
    "bb_media_forwarding_available",
    "1 if this media server can forward audio and video, 0 if aiortc does not fit",
    multiprocess_mode="livemin",
)

REASON_AIORTC = "aiortc-internals"


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None = None  # for pages: REASON_AIORTC
    detail: str = ""  # for the log and operators only


def load_forwarding(loopback_candidates: bool = False) -> Availability:
    """Import the forwarding unit, check and install its aiortc hooks."""
    try:
        internals = importlib.import_module("services.media.sfu.aiortc_internals")
        importlib.import_module("services.media.sfu.room")
        internals.install_encoded_frame_passthrough()
        if loopback_candidates:
            importlib.import_module("services.media.sfu.ice").add_loopback_host_candidate()
    except Exception as error:  # ImportError, AttributeError, UnsupportedAiortc, ...
        detail = f"{type(error).__name__}: {error}"
        log.error("media_forwarding_disabled", reason=REASON_AIORTC, detail=detail)
        FORWARDING_AVAILABLE.set(0)
        return Availability(False, REASON_AIORTC, detail)
    FORWARDING_AVAILABLE.set(1)
    return Availability(True)
