"""Bandwidth adaptation: what a forwarding room on aiortc can do for a constrained
subscriber, and the rule it follows.

What aiortc allows (1.16): receivers send REMB (receiver-estimated maximum bitrate,
``goog-remb``) and receiver reports (loss); senders use REMB only to set their own
encoder's target, and in a forwarding room there is no encoder. transport-cc is not
implemented (only its header extension id is parsed), there is no simulcast and no
SVC, so the room cannot give one subscriber a smaller copy of a track: every
subscriber gets what the publisher sends. NACK/RTX retransmission and keyframe
requests work per subscriber (aiortc's sender and ``forwarding.py``).

What the room does: each subscriber's REMB and receiver reports for a video track
are seen as they arrive (``observe_sender_rtcp``). Every ``CHECK_INTERVAL`` a track
whose subscribers are *all* constrained (estimate below what the publisher sends,
or more than 5 % loss) gets a ``SendLimits`` for its publisher: the lowest estimate
(at least ``MIN_BITRATE``), 15 fps below 400 kbit/s, half the resolution below
250 kbit/s; the page applies it with ``RTCRtpSender.setParameters``. While everyone
stays constrained the limit only goes down; when every subscriber has room again
(estimate at least 1.25 times the limit, under 2 % loss) it goes up to the lowest
estimate (REMB grows only a little above what arrives, so this takes a few steps),
and it is lifted (a ``SendLimits`` of ``None``s) once that reaches the rate the
publisher sent before, once any subscriber is no longer constrained at that rate,
or when nobody receives the track any more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiortc import rtp

from .forwarding import Publication

CHECK_INTERVAL = 2.0
MIN_BITRATE = 100_000
CONSTRAINED_RATIO = 0.85
CONSTRAINED_LOSS = 0.05
LIFT_HEADROOM = 1.25
LIFT_LOSS = 0.02
LOSS_BACKOFF = 0.7


@dataclass
class Feedback:
    """What one subscriber's RTCP says about one forwarded video track."""

    estimate: float | None = None  # bit/s: its REMB, shared among the streams it covers
    loss: float = 0.0  # fraction lost in the last receiver report

    def observe(self, packet: object, ssrc: int | None) -> None:
        if isinstance(packet, rtp.RtcpPsfbPacket) and packet.fmt == rtp.RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = rtp.unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if ssrcs:
                self.estimate = bitrate / len(ssrcs)
        elif isinstance(packet, rtp.RtcpRrPacket | rtp.RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc == ssrc:
                    self.loss = report.fraction_lost / 256


@dataclass(frozen=True)
class Limits:
    max_bitrate: int | None
    max_framerate: float | None
    scale_resolution_down_by: float | None

    @classmethod
    def for_bitrate(cls, bitrate: int) -> Limits:
        return cls(
            bitrate,
            15.0 if bitrate < 400_000 else None,
            2.0 if bitrate < 250_000 else None,
        )


LIFTED = Limits(None, None, None)


class TrackAdaptation:
    """The limit in effect for one published video track."""

    def __init__(self) -> None:
        self.limit: int | None = None
        self.full_rate = 0.0  # what the publisher sent before it was limited

    def decide(self, sent_bitrate: float, subscribers: Iterable[Feedback]) -> Limits | None:
        """New limits for the publisher (``LIFTED`` to lift), or None: no change."""
        feedback = list(subscribers)
        if not feedback:
            return self._lift()
        if self.limit is None:
            if sent_bitrate <= 0 or not all(_constrained(f, sent_bitrate) for f in feedback):
                return None
            self.full_rate = sent_bitrate
            return self._limit(min(_affordable(f, sent_bitrate) for f in feedback))
        if any(not _constrained(f, self.full_rate) for f in feedback):
            return self._lift()
        if all(_constrained(f, self.limit) for f in feedback):
            target = min(_affordable(f, self.limit) for f in feedback)
            return self._limit(target) if target < self.limit * 0.9 else None
        if all(_has_room(f, self.limit) for f in feedback):
            # REMB grows only a little above what arrives: raise the limit step by step.
            target = min(f.estimate or self.limit * LIFT_HEADROOM for f in feedback)
            if target >= self.full_rate * CONSTRAINED_RATIO:
                return self._lift()
            return self._limit(target)
        return None

    def _limit(self, bitrate: float) -> Limits:
        self.limit = max(MIN_BITRATE, int(bitrate))
        return Limits.for_bitrate(self.limit)

    def _lift(self) -> Limits | None:
        if self.limit is None:
            return None
        self.limit = None
        return LIFTED


def _constrained(feedback: Feedback, reference: float) -> bool:
    low_estimate = feedback.estimate is not None and (
        feedback.estimate < reference * CONSTRAINED_RATIO
    )
    return low_estimate or feedback.loss > CONSTRAINED_LOSS


def _affordable(feedback: Feedback, reference: float) -> float:
    if feedback.estimate is not None and feedback.estimate < reference:
        return feedback.estimate
    return reference * LOSS_BACKOFF


def _has_room(feedback: Feedback, limit: int) -> bool:
    estimate_ok = feedback.estimate is None or feedback.estimate >= limit * LIFT_HEADROOM
    return estimate_ok and feedback.loss < LIFT_LOSS


TrackFeedback = tuple[Publication, list[Feedback]]


class BandwidthWatch:
    """Every ``interval``: a decision for each published video track (a room task)."""

    def __init__(
        self,
        tracks: Callable[[], list[TrackFeedback]],
        send: Callable[[Publication, Limits], None],
        interval: float = CHECK_INTERVAL,
    ) -> None:
        self._tracks = tracks
        self._send = send
        self._interval = interval
        self._adaptations: dict[str, TrackAdaptation] = {}
        self._bytes: dict[str, int] = {}
        self._checked_at: float | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.check()

    def check(self) -> None:
        now = time.monotonic()
        elapsed = now - self._checked_at if self._checked_at is not None else 0.0
        self._checked_at = now
        seen = set()
        for publication, feedback in self._tracks():
            track_id = publication.info.track_id
            seen.add(track_id)
            previous = self._bytes.get(track_id)
            self._bytes[track_id] = publication.bytes_received
            if previous is None or elapsed <= 0:
                continue
            sent_bitrate = (publication.bytes_received - previous) * 8 / elapsed
            adaptation = self._adaptations.setdefault(track_id, TrackAdaptation())
            limits = adaptation.decide(sent_bitrate, feedback)
            if limits is not None:
                self._send(publication, limits)
        self._adaptations = {k: v for k, v in self._adaptations.items() if k in seen}
        self._bytes = {k: v for k, v in self._bytes.items() if k in seen}
