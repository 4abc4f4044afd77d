"""The room's offers keep the payload types and header extension ids of the session.

aiortc numbers every offer by its own defaults (opus 96, VP8 97, rtx 98;
sdes:mid 1, ssrc-audio-level 2, abs-send-time 3). A browser numbers its offer
its own way (Chromium: opus 111, VP8 96, ssrc-audio-level 1, abs-send-time 2,
sdes:mid 4) and refuses a later offer that gives an active extension id another
meaning ("RTP extension ID reassignment not supported"); the room's receivers,
started with the browser's payload types, would drop whatever follows a
renumbering. The client here numbers its join offer like a browser (and unlike
aiortc) and refuses offers as Chromium would.
"""

import asyncio
import re

from aiortc import sdp as aiortc_sdp
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters

from services.media.sfu import ForwardingRoom, TrackSource
from services.media.sfu.numbering import SessionNumbering
from tests.media.peers import (
    GREEN,
    RED,
    RoomClient,
    SolidColourVideoTrack,
    ToneAudioTrack,
    Yuv,
    eventually,
)

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

# aiortc's default numbers -> the client's (none of them aiortc's).
PAYLOAD_TYPES = {
    "audio": {96: 111},
    "video": {97: 120, 98: 121, 99: 122, 100: 123, 101: 124, 102: 125},
}
EXTENSION_IDS = {MID: 4, AUDIO_LEVEL: 1, ABS_SEND_TIME: 2}
CLIENT_NUMBERING = {"opus": 111, "VP8": 120, "rtx": 121}


def renumber_like_a_browser(sdp: str) -> str:
    """Rewrite an aiortc offer to the client's payload types and extension ids."""
    lines, kind = [], None
    for line in sdp.split("\r\n"):
        if media := re.match(r"m=(\w+) (\S+ \S+) (.*)$", line):
            kind = media[1]
            mapping = PAYLOAD_TYPES.get(kind, {})
            formats = " ".join(str(mapping.get(int(pt), pt)) for pt in media[3].split())
            line = f"m={kind} {media[2]} {formats}"
        elif extension := re.match(r"a=extmap:(\d+) (\S+)$", line):
            line = f"a=extmap:{EXTENSION_IDS[extension[2]]} {extension[2]}"
        elif kind and (attribute := re.match(r"a=(rtpmap|rtcp-fb|fmtp):(\d+)(.*)$", line)):
            mapping = PAYLOAD_TYPES.get(kind, {})
            rest = re.sub(
                r"apt=(\d+)",
                lambda m, mapping=mapping: f"apt={mapping.get(int(m[1]), m[1])}",
                attribute[3],
            )
            line = f"a={attribute[1]}:{mapping.get(int(attribute[2]), attribute[2])}{rest}"
        lines.append(line)
    return "\r\n".join(lines)


def numbering_of(media: aiortc_sdp.MediaDescription) -> dict[str, object]:
    codecs: dict[str, int] = {}
    for codec in media.rtp.codecs:
        codecs.setdefault(codec.name, codec.payloadType)
    rtx = [codec for codec in media.rtp.codecs if codec.name == "rtx"]
    return {
        "codecs": codecs,
        "rtx_repairs": [codec.parameters.get("apt") for codec in rtx],
        "extensions": {ext.uri: ext.id for ext in media.rtp.headerExtensions},
    }


class BrowserLikeClient(RoomClient):
    """Offers with a browser's numbering; refuses offers the way Chromium does."""

    def __init__(self, room: ForwardingRoom, participant_id: str, role: str) -> None:
        super().__init__(room, participant_id, role)
        self.room_offers: list[str] = []
        self.refusals: list[str] = []

    async def join(self) -> None:
        offer = await self.pc.createOffer()
        offer.sdp = renumber_like_a_browser(offer.sdp)
        await self.pc.setLocalDescription(offer)
        await self.room.join(
            self.participant_id, self.role, self.pc.localDescription.sdp, self._sources
        )
        self._tasks.append(asyncio.ensure_future(self._relay_messages()))

    async def _answer(self, offer_sdp: str) -> None:
        self.room_offers.append(offer_sdp)
        refusal = self._refusal(offer_sdp)
        if refusal:
            self.refusals.append(refusal)
            return  # like a browser whose setRemoteDescription rejected the offer
        await super()._answer(offer_sdp)

    def _refusal(self, offer_sdp: str) -> str | None:
        active: dict[int, str] = {}
        agreed: dict[str, dict[str, int]] = {}
        for description in (self.pc.localDescription, self.pc.remoteDescription):
            for media in aiortc_sdp.SessionDescription.parse(description.sdp).media:
                for ext in media.rtp.headerExtensions:
                    active.setdefault(ext.id, ext.uri)
                agreed.setdefault(media.rtp.muxId, {}).update(
                    {codec.name: codec.payloadType for codec in media.rtp.codecs}
                )
        for media in aiortc_sdp.SessionDescription.parse(offer_sdp).media:
            for ext in media.rtp.headerExtensions:
                if active.get(ext.id, ext.uri) != ext.uri:
                    return f"RTP extension ID reassignment not supported (id={ext.id})"
            before = agreed.get(media.rtp.muxId, {})
            for codec in media.rtp.codecs:
                if codec.name in before and before[codec.name] != codec.payloadType:
                    return f"mid {media.rtp.muxId}: {codec.name} renumbered"
        return None


def sees(client: RoomClient, publisher_id: str, colour: Yuv, frames: int = 0) -> bool:
    camera = client.live_track(publisher_id, TrackSource.CAMERA)
    return (
        camera is not None
        and camera.frames > frames
        and camera.colour is not None
        and camera.colour.close_to(colour)
    )


async def test_renegotiation_keeps_the_participants_numbering(join_client, room) -> None:
    citizen = BrowserLikeClient(room, "citizen", "citizen")
    citizen.publish(SolidColourVideoTrack(RED), TrackSource.CAMERA)
    citizen.publish(ToneAudioTrack(440.0), TrackSource.AUDIO)
    try:
        await citizen.join()
        join_offer = aiortc_sdp.SessionDescription.parse(citizen.pc.localDescription.sdp)
        own = {media.rtp.muxId: numbering_of(media) for media in join_offer.media}

        staff = await join_client("staff", "staff", GREEN, 660.0)  # the room renegotiates
        await eventually(lambda: citizen.offers_answered >= 1 or bool(citizen.refusals))
        assert citizen.refusals == []

        offer = aiortc_sdp.SessionDescription.parse(citizen.room_offers[0])
        assert len(offer.media) == 4  # the citizen's two, the staff member's two
        for media in offer.media:
            numbering = numbering_of(media)
            if media.rtp.muxId in own:
                # (1) the citizen's own m-lines: exactly its payload types and ids.
                own_codecs = own[media.rtp.muxId]["codecs"]
                assert numbering["codecs"].items() <= own_codecs.items()  # type: ignore[union-attr]
                assert numbering["extensions"] == own[media.rtp.muxId]["extensions"]
            # Every m-line of the bundle: the same number means the same thing.
            for name, payload_type in numbering["codecs"].items():
                assert payload_type == CLIENT_NUMBERING[name], (media.rtp.muxId, name)
            assert numbering["rtx_repairs"] in ([], [CLIENT_NUMBERING["VP8"]])
            for uri, extension_id in numbering["extensions"].items():
                assert extension_id == EXTENSION_IDS[uri], (media.rtp.muxId, uri)

        # (2) media keeps flowing both ways after the renegotiation.
        await eventually(lambda: sees(staff, "citizen", RED) and sees(citizen, "staff", GREEN))
        decoded = staff.live_track("citizen", TrackSource.CAMERA).frames
        await eventually(lambda: sees(staff, "citizen", RED, frames=decoded + 30))
        assert room.stats()["frames_forwarded"] > 0
    finally:
        await room.close()
        await citizen.close()


def test_numbers_new_to_the_session_avoid_those_in_use() -> None:
    numbering = SessionNumbering.of(
        [
            (
                "audio",
                [RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, payloadType=97)],
                [RTCRtpHeaderExtensionParameters(id=1, uri=AUDIO_LEVEL)],
            )
        ],
        [],
    )
    video = numbering.renumber_codecs(
        "video",
        [
            RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97),
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=98, parameters={"apt": 97}
            ),
        ],
    )
    assert [(c.name, c.payloadType) for c in video] == [("VP8", 96), ("rtx", 98)]
    assert video[1].parameters["apt"] == 96
    extensions = numbering.renumber_extensions(
        [
            RTCRtpHeaderExtensionParameters(id=1, uri=MID),
            RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME),
        ]
    )
    assert [(e.uri, e.id) for e in extensions] == [(MID, 2), (ABS_SEND_TIME, 3)]
