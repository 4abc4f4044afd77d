"""One participant of a media room: its peer connection and what flows through it."""

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc import sdp as aiortc_sdp
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from .adaptation import Feedback
from .events import ParticipantMessage
from .forwarding import ForwardedTrack, InboundTrack, Publication
from .tracks import TrackInfo, TrackSource

# Forwarding re-packetises what publishers send, so every leg must use the same
# codec: VP8 (with RTX retransmission) for video, Opus for audio.
FORWARDED_MIME_TYPES = {"audio": ("audio/opus",), "video": ("video/VP8", "video/rtx")}


def forwarded_codecs(kind: str) -> list[RTCRtpCodecCapability]:
    wanted = FORWARDED_MIME_TYPES[kind]
    return [
        codec for codec in RTCRtpSender.getCapabilities(kind).codecs if codec.mimeType in wanted
    ]


def offered_media(offer_sdp: str) -> list[tuple[str, str]]:
    """(kind, mid) of every audio/video m-line of an SDP offer, in order."""
    description = aiortc_sdp.SessionDescription.parse(offer_sdp)
    return [
        (media.kind, media.rtp.muxId)
        for media in description.media
        if media.kind in ("audio", "video")
    ]


_ICE_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)


def ice_username_fragment(sdp: str) -> str | None:
    """The first ``a=ice-ufrag`` of an SDP (all m-lines share it with BUNDLE)."""
    found = _ICE_UFRAG.search(sdp)
    return found.group(1) if found else None


@dataclass
class Subscription:
    """A published track of someone else, sent to this participant."""

    publication: Publication
    transceiver: RTCRtpTransceiver
    track: ForwardedTrack
    feedback: Feedback = field(default_factory=Feedback)  # the subscriber's REMB and loss


@dataclass
class Participant:
    participant_id: str
    role: str
    pc: RTCPeerConnection
    negotiation: asyncio.Lock = field(default_factory=asyncio.Lock)
    outbox: asyncio.Queue[ParticipantMessage] = field(default_factory=asyncio.Queue)
    inbound: dict[RTCRtpTransceiver, InboundTrack] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    sending_transceivers: set[RTCRtpTransceiver] = field(default_factory=set)
    source_hints: dict[str, TrackSource] = field(default_factory=dict)
    needs_offer: bool = False
    connected: bool = False
    gone: bool = False
    state: str = ""

    def remember_sources(self, sources: Mapping[str, TrackSource | str] | None) -> None:
        """Hints keyed by the publisher's msid track id or by mid."""
        for key, source in (sources or {}).items():
            self.source_hints[key] = TrackSource(source)

    def add_receiving_transceivers(self, offer_sdp: str) -> None:
        """Create a receive-only transceiver, restricted to the forwarded codecs,
        for each m-line of the offer that is new; aiortc then binds them to those
        m-lines in order instead of creating unrestricted ones."""
        known_mids = {t.mid for t in self.pc.getTransceivers() if t.mid is not None}
        for kind, mid in offered_media(offer_sdp):
            if mid not in known_mids:
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(forwarded_codecs(kind))

    def receiving_transceivers(self) -> list[RTCRtpTransceiver]:
        return [t for t in self.pc.getTransceivers() if t not in self.sending_transceivers]

    def is_receiving(self, transceiver: RTCRtpTransceiver) -> bool:
        inbound = self.inbound.get(transceiver)
        return (
            transceiver.currentDirection in ("recvonly", "sendrecv")
            and inbound is not None
            and not inbound.ended
        )

    def source_of(self, transceiver: RTCRtpTransceiver, track_id: str) -> TrackSource:
        hint = self.source_hints.get(track_id) or self.source_hints.get(transceiver.mid or "")
        if hint is not None and hint.kind == transceiver.kind:
            return hint
        if transceiver.kind == "audio":
            return TrackSource.AUDIO
        return TrackSource.SCREEN if self.publishes(TrackSource.CAMERA) else TrackSource.CAMERA

    def publications(self) -> list[Publication]:
        return [
            inbound.publication
            for inbound in self.inbound.values()
            if inbound.publication is not None and not inbound.publication.ended
        ]

    def publishes(self, source: TrackSource) -> bool:
        return any(publication.info.source is source for publication in self.publications())

    def forwarded_tracks(self) -> dict[str, TrackInfo]:
        """mid -> track, for every track currently sent to this participant."""
        return {
            subscription.transceiver.mid: subscription.publication.info
            for subscription in self.subscriptions.values()
            if subscription.transceiver.mid is not None
        }
