"""Keep a session's RTP payload types and header extension ids across the room's offers.

aiortc numbers every offer it creates by its own defaults (opus 96, VP8 97, its
RTX 98; sdes:mid 1, ssrc-audio-level 2, abs-send-time 3), even for m-lines
whose numbering the participant chose. Browsers refuse an offer that gives an
active extension id another meaning (Chromium: "RTP extension ID reassignment
not supported"), and a receiver of the room, started with the participant's
payload types, would drop everything sent under the new ones. So the room's
offers number codecs and extensions as already agreed in the session:

1. what this m-line agreed (its transceiver's negotiated codecs/extensions);
2. else what the session uses for that codec / extension elsewhere (the other
   m-lines' agreements, then the remote and the local description), so that a
   payload type or an extension id means the same on every m-line of the bundle;
3. else aiortc's default number if the session does not use it yet, else the
   lowest free one.
"""

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiortc import sdp as aiortc_sdp
from aiortc.codecs import is_rtx
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters

# RFC 3551 dynamic range first, then the range RFC 7587/JSEP implementations
# also use for dynamic payload types (35-63).
FREE_PAYLOAD_TYPES = (*range(96, 128), *range(35, 64))
# One-byte header extension ids (RFC 8285).
FREE_EXTENSION_IDS = range(1, 15)


@dataclass
class SessionNumbering:
    """The numbers a participant's session already uses, per media kind."""

    codecs: dict[str, list[RTCRtpCodecParameters]] = field(default_factory=dict)
    extension_ids: dict[str, int] = field(default_factory=dict)
    used_payload_types: set[int] = field(default_factory=set)
    used_extension_ids: set[int] = field(default_factory=set)

    @classmethod
    def of(
        cls,
        agreed: Iterable[
            tuple[str, Sequence[RTCRtpCodecParameters], Sequence[RTCRtpHeaderExtensionParameters]]
        ],
        descriptions: Iterable[str | None],
    ) -> "SessionNumbering":
        """From the transceivers' agreements ``(kind, codecs, extensions)``, then
        the SDP of the session's descriptions (remote first)."""
        numbering = cls()
        for kind, codecs, extensions in agreed:
            numbering._learn(kind, codecs, extensions)
        for sdp in descriptions:
            if not sdp:
                continue
            for media in aiortc_sdp.SessionDescription.parse(sdp).media:
                if media.kind not in ("audio", "video"):
                    continue
                numbering.used_payload_types.update(pt for pt in media.fmt if isinstance(pt, int))
                numbering._learn(media.kind, media.rtp.codecs, media.rtp.headerExtensions)
        return numbering

    def _learn(
        self,
        kind: str,
        codecs: Iterable[RTCRtpCodecParameters],
        extensions: Iterable[RTCRtpHeaderExtensionParameters],
    ) -> None:
        for codec in codecs:
            self.codecs.setdefault(kind, []).append(codec)
            self.used_payload_types.add(_payload_type(codec))
        for extension in extensions:
            self.extension_ids.setdefault(extension.uri, extension.id)
            self.used_extension_ids.add(extension.id)

    def renumber_codecs(
        self,
        kind: str,
        offered: Sequence[RTCRtpCodecParameters],
        agreed: Sequence[RTCRtpCodecParameters] = (),
    ) -> list[RTCRtpCodecParameters]:
        """``offered`` (aiortc's default numbering) with the session's payload types."""
        session = self.codecs.setdefault(kind, [])
        new_payload_types: dict[int, int] = {}
        renumbered = []
        for codec in offered:
            if is_rtx(codec):
                continue
            payload_type = _compatible_payload_type(codec, agreed)
            if payload_type is None:
                payload_type = _compatible_payload_type(codec, session)
            if payload_type is None:
                payload_type = self._free_payload_type(_payload_type(codec))
            new_payload_types[_payload_type(codec)] = payload_type
        for codec in offered:
            renumbered_codec = copy.deepcopy(codec)
            if is_rtx(codec):
                base = new_payload_types.get(codec.parameters.get("apt"))  # type: ignore[arg-type]
                if base is None:
                    continue  # repairs nothing that is offered
                payload_type = _rtx_payload_type(base, agreed)
                if payload_type is None:
                    payload_type = _rtx_payload_type(base, session)
                if payload_type is None:
                    payload_type = self._free_payload_type(_payload_type(codec))
                renumbered_codec.parameters = {**codec.parameters, "apt": base}
            else:
                payload_type = new_payload_types[_payload_type(codec)]
            renumbered_codec.payloadType = payload_type
            renumbered.append(renumbered_codec)
        # Later m-lines of this offer use the same numbers for the same codecs.
        self._learn(kind, renumbered, ())
        return renumbered

    def renumber_extensions(
        self,
        offered: Sequence[RTCRtpHeaderExtensionParameters],
        agreed: Sequence[RTCRtpHeaderExtensionParameters] = (),
    ) -> list[RTCRtpHeaderExtensionParameters]:
        """``offered`` (aiortc's default ids) with the session's ids."""
        agreed_ids = {extension.uri: extension.id for extension in agreed}
        renumbered = []
        for extension in offered:
            extension_id = agreed_ids.get(extension.uri) or self.extension_ids.get(extension.uri)
            if extension_id is None:
                extension_id = _first_free(
                    extension.id, FREE_EXTENSION_IDS, self.used_extension_ids
                )
            self.extension_ids.setdefault(extension.uri, extension_id)
            self.used_extension_ids.add(extension_id)
            renumbered.append(RTCRtpHeaderExtensionParameters(id=extension_id, uri=extension.uri))
        return renumbered

    def _free_payload_type(self, default: int) -> int:
        payload_type = _first_free(default, FREE_PAYLOAD_TYPES, self.used_payload_types)
        self.used_payload_types.add(payload_type)
        return payload_type


def _compatible_payload_type(
    codec: RTCRtpCodecParameters, candidates: Iterable[RTCRtpCodecParameters]
) -> int | None:
    for candidate in candidates:
        if not is_rtx(candidate) and is_codec_compatible(codec, candidate):
            return candidate.payloadType
    return None


def _rtx_payload_type(base: int, candidates: Iterable[RTCRtpCodecParameters]) -> int | None:
    for candidate in candidates:
        if is_rtx(candidate) and candidate.parameters.get("apt") == base:
            return candidate.payloadType
    return None


def _first_free(default: int, numbers: Iterable[int], used: set[int]) -> int:
    if default not in used:
        return default
    return next((number for number in numbers if number not in used), default)


def _payload_type(codec: RTCRtpCodecParameters) -> int:
    """Codecs in a session description always carry their payload type."""
    assert codec.payloadType is not None
    return codec.payloadType
