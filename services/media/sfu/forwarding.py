"""Fan-out of encoded frames from one received track to many senders.

A received track is drained for as long as it lives (``InboundTrack``), whether
anyone subscribes or not, so frames never pile up in aiortc's unbounded track
queue. While the track is published, each frame goes to every subscriber's
``ForwardedTrack``, a bounded queue read by that subscriber's ``RTCRtpSender``,
which re-packetises the frame without re-encoding it.

Keyframes: a video subscriber forwards nothing until it has seen a keyframe; it
asks for one when its sender starts pulling, when its queue overflows, and
whenever the subscriber itself sends a PLI/FIR. The requests of all subscribers
of a track are merged by ``KeyframeRequester``: at most one PLI per interval to
the publisher, repeated until a keyframe arrives.
"""

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable

import av
from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from . import telemetry
from .aiortc_internals import send_picture_loss_indication, set_track_id
from .tracks import TrackInfo

logger = logging.getLogger(__name__)

DEFAULT_KEYFRAME_INTERVAL = 0.5
# About two seconds of media: a sender that falls further behind is reset.
MAX_QUEUED_VIDEO_FRAMES = 60
MAX_QUEUED_AUDIO_FRAMES = 100


class KeyframeRequester:
    """Asks the publisher for a keyframe until one arrives, at most once per interval."""

    def __init__(self, send_request: Callable[[], Awaitable[bool]], min_interval: float) -> None:
        self._send_request = send_request
        self._min_interval = min_interval
        self._wanted = False
        self._last_sent = -math.inf
        self._task: asyncio.Task[None] | None = None
        self.requests_received = 0
        self.requests_sent = 0

    def request(self) -> None:
        self.requests_received += 1
        telemetry.KEYFRAME_REQUESTS.labels("from_subscribers").inc()
        self._wanted = True
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._send_until_keyframe())

    def keyframe_seen(self) -> None:
        self._wanted = False

    def close(self) -> None:
        self._wanted = False
        if self._task is not None:
            self._task.cancel()

    async def _send_until_keyframe(self) -> None:
        loop = asyncio.get_running_loop()
        while self._wanted:
            wait = self._last_sent + self._min_interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if await self._send_request():
                self.requests_sent += 1
                telemetry.KEYFRAME_REQUESTS.labels("to_publishers").inc()
            self._last_sent = loop.time()


class ForwardedTrack(MediaStreamTrack):
    """The copy of a published track that one subscriber's sender reads."""

    def __init__(self, kind: str, track_id: str, request_keyframe: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        set_track_id(self, track_id)
        self._request_keyframe = request_keyframe
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()
        self._max_queued = MAX_QUEUED_VIDEO_FRAMES if kind == "video" else MAX_QUEUED_AUDIO_FRAMES
        self._pulling = False
        self._needs_keyframe = kind == "video"
        self.frames_forwarded = 0
        self.frames_dropped = 0
        self._forwarded_frames = telemetry.FRAMES_FORWARDED.labels(kind)
        self._sent_bytes = telemetry.BYTES_SENT.labels(kind)
        self._dropped_frames = telemetry.FRAMES_DROPPED.labels(kind)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._pulling:
            self._pulling = True
            if self._needs_keyframe:
                self._request_keyframe()
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.frames_forwarded += 1
        self._forwarded_frames.inc()
        self._sent_bytes.inc(packet.size)
        return packet

    def push(self, packet: av.Packet) -> None:
        """Queue a frame for the sender; drops what it cannot decode from."""
        if not self._pulling or self.readyState != "live":
            return
        if self._queue.qsize() >= self._max_queued:
            self._overflow()
        if self._needs_keyframe:
            if not packet.is_keyframe:
                self.frames_dropped += 1
                self._dropped_frames.inc()
                return
            self._needs_keyframe = False
        self._queue.put_nowait(packet)

    def stop(self) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(None)
        super().stop()

    def _overflow(self) -> None:
        if self.kind == "audio":
            self._queue.get_nowait()
            self.frames_dropped += 1
            self._dropped_frames.inc()
            return
        self.frames_dropped += self._queue.qsize()
        self._dropped_frames.inc(self._queue.qsize())
        while not self._queue.empty():
            self._queue.get_nowait()
        self._needs_keyframe = True
        self._request_keyframe()


class Publication:
    """One published track of a participant and its subscribers."""

    def __init__(self, info: TrackInfo, receiver: RTCRtpReceiver, keyframe_interval: float) -> None:
        self.info = info
        self.keyframes = KeyframeRequester(
            lambda: send_picture_loss_indication(receiver), keyframe_interval
        )
        self._subscribers: dict[str, ForwardedTrack] = {}
        self.ended = False
        self.frames_received = 0
        self.bytes_received = 0
        self.mid: str | None = None  # the publisher's m-line of the track

    def subscribe(self, subscriber_id: str) -> ForwardedTrack:
        track = ForwardedTrack(self.info.kind, self.info.track_id, self.request_keyframe)
        self._subscribers[subscriber_id] = track
        return track

    def unsubscribe(self, subscriber_id: str) -> None:
        track = self._subscribers.pop(subscriber_id, None)
        if track is not None:
            track.stop()

    def request_keyframe(self) -> None:
        if self.info.kind == "video" and not self.ended:
            self.keyframes.request()

    def deliver(self, packet: av.Packet) -> None:
        self.frames_received += 1
        self.bytes_received += packet.size
        if packet.is_keyframe:
            self.keyframes.keyframe_seen()
        for track in self._subscribers.values():
            track.push(packet)

    def end(self) -> None:
        self.ended = True
        self.keyframes.close()
        for track in self._subscribers.values():
            track.stop()
        self._subscribers.clear()


class InboundTrack:
    """Drains one received track until it ends, feeding the current publication."""

    def __init__(self, track: MediaStreamTrack, on_ended: Callable[["InboundTrack"], None]) -> None:
        self.track = track
        self.publication: Publication | None = None
        self._on_ended = on_ended
        self._received_frames = telemetry.FRAMES_RECEIVED.labels(track.kind)
        self._received_bytes = telemetry.BYTES_RECEIVED.labels(track.kind)
        self._task = asyncio.ensure_future(self._drain())

    @property
    def ended(self) -> bool:
        return self._task.done()

    async def _drain(self) -> None:
        try:
            while True:
                packet = await self.track.recv()
                if not isinstance(packet, av.Packet):
                    raise TypeError("the receiver decodes: it was not switched to encoded frames")
                self._received_frames.inc()
                self._received_bytes.inc(packet.size)
                if self.publication is not None:
                    self.publication.deliver(packet)
        except MediaStreamError:
            pass
        except Exception:
            logger.exception("forwarding of track %s failed", self.track.id)
        finally:
            self._on_ended(self)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
