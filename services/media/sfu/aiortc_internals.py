"""Every private aiortc name the forwarding unit touches, in one place, pinned.

aiortc decodes every received track and has no public switch to get encoded
frames out; its senders ignore keyframe requests when they are fed encoded
packets. Forwarding encoded media therefore needs a few private hooks. They are
all here, checked against the pinned aiortc version when installed, and covered
by ``tests/media/test_aiortc_internals.py`` so that an aiortc upgrade fails
loudly instead of silently decoding again or dropping keyframe requests.

Internals used (aiortc 1.16.0):

* ``aiortc.rtcrtpreceiver.decoder_worker(loop, input_q, output_q, decode_error)``:
  a module global looked up by ``RTCRtpReceiver.receive()``; the thread it runs
  gets ``(codec, JitterFrame)`` tuples (``JitterFrame.data``/``.timestamp``) and
  ``None`` at the end, and feeds ``output_q``, the track's ``_queue``.
* ``RemoteStreamTrack._queue``: the asyncio queue ``recv()`` reads.
* ``RTCRtpSender._send_keyframe()``: called on a received PLI/FIR.
* ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)``: sends a PLI to the publisher.
* ``RTCRtpReceiver.__jitter_buffer`` (``_RTCRtpReceiver__jitter_buffer``): replaced
  per receiver before it starts; ``JitterBuffer`` keeps ``_packets``, ``_origin``,
  ``_capacity``, ``remove()`` and calls ``_remove_frame()`` from ``add()``.
* ``RTCRtpSender._stream_id``: the stream id written into ``a=msid``.
* ``MediaStreamTrack._id``: the track id written into ``a=msid``.
* ``RTCRtpSender`` packs (never re-encodes) anything that is not an ``av.Frame``.
* ``RTCPeerConnection`` starts a sender by calling its ``send()`` once the
  transport is connected; a retired sender's ``send`` is replaced by a no-op so
  that an answer arriving after it was stopped cannot start it again.
* ``RTCRtpTransceiver._codecs`` / ``._headerExtensions``: the payload types and
  header extension ids of an m-line. ``RTCPeerConnection.createOffer()`` resets
  them to aiortc's defaults (``CODECS``/``HEADER_EXTENSIONS``) and writes the
  offer from them (``create_media_description_for_transceiver``), after having
  placed every transceiver on its m-line (``_set_mline_index``; read back with
  ``_get_mline_index()``); ``setRemoteDescription`` replaces them with the
  remote side's numbering (``find_common_codecs``/``find_common_header_extensions``),
  and senders and receivers are started from them (``__localRtp``/``__remoteRtp``).
  ``create_offer_keeping_numbering`` renumbers them after ``createOffer`` as the
  session agreed and rewrites the offer's m-lines from them (``numbering.py``).
* ``RtpPacket._data``: the depayloaded payload ``RTCRtpReceiver._handle_rtp_packet``
  stores on each packet before the jitter buffer (read by ``jitter.py``).
* ``RTCDtlsTransport._get_stats()``: ``packetsReceived`` counts every datagram that
  arrived on the transport (the room's liveness check, ``liveness.py``).
* ``RTCRtpSender._handle_rtcp_packet(packet)``: every RTCP packet for a sender,
  wrapped to see the subscriber's receiver estimated maximum bitrate (REMB) and its
  receiver reports (``RTCRtpSender._ssrc`` names the sender's stream in them).

A failed check must not take the whole process down: the media service calls
``check_aiortc_internals`` through ``services/media/availability.py`` and runs
without media rooms if it fails.
"""

import asyncio
import contextlib
import fractions
import inspect
import queue
import threading
from collections.abc import Callable
from importlib.metadata import version

import av
from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
    rtcpeerconnection,
    rtcrtpreceiver,
)
from aiortc import sdp as aiortc_sdp
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from aiortc.rtp import RtpPacket

from .numbering import SessionNumbering

SUPPORTED_AIORTC_VERSIONS = frozenset({"1.16.0"})

DECODER_WORKER_PARAMETERS = ("loop", "input_q", "output_q", "decode_error")


class UnsupportedAiortc(RuntimeError):
    """The installed aiortc is not the one whose internals were verified."""


class EncodedFrameQueue(asyncio.Queue):
    """Marks a remote track whose receiver must hand out encoded ``av.Packet``s."""


_original_decoder_worker = rtcrtpreceiver.decoder_worker
_install_lock = threading.Lock()


def installed_aiortc_version() -> str:
    return version("aiortc")


def check_aiortc_internals() -> None:
    """Raise UnsupportedAiortc unless every internal listed above is as expected."""
    found = installed_aiortc_version()
    if found not in SUPPORTED_AIORTC_VERSIONS:
        raise UnsupportedAiortc(
            f"aiortc {found} is installed; the media forwarding hooks were verified "
            f"with {sorted(SUPPORTED_AIORTC_VERSIONS)} only"
        )
    problems = structure_problems()
    if problems:
        raise UnsupportedAiortc("aiortc internals changed: " + "; ".join(problems))


def structure_problems() -> list[str]:
    """What no longer is as the hooks expect, whatever the version (empty: all fine)."""
    problems = []
    for check in _STRUCTURE_CHECKS:
        try:
            problem = check()
        except (AttributeError, TypeError, ValueError) as error:
            problem = f"{check.__name__.removeprefix('_check_')}: {error}"
        if problem:
            problems.append(problem)
    return problems


def _check_decoder_worker() -> str | None:
    parameters = tuple(inspect.signature(_original_decoder_worker).parameters)
    if parameters != DECODER_WORKER_PARAMETERS:
        return f"decoder_worker takes {parameters}"
    if "decoder_worker" not in RTCRtpReceiver.receive.__code__.co_names:
        return "RTCRtpReceiver.receive no longer looks up the global decoder_worker"
    return None


def _check_keyframe_hooks() -> str | None:
    if "_send_keyframe" not in RTCRtpSender._handle_rtcp_packet.__code__.co_names:
        return "RTCRtpSender._handle_rtcp_packet no longer calls _send_keyframe"
    if not inspect.iscoroutinefunction(getattr(RTCRtpReceiver, "_send_rtcp_pli", None)):
        return "RTCRtpReceiver._send_rtcp_pli is gone"
    return None


def _check_msid_sources() -> str | None:
    names = rtcpeerconnection.create_media_description_for_transceiver.__code__.co_names
    if "_stream_id" not in names or "_track_id" not in names:
        return "a=msid is no longer built from sender._stream_id and sender._track_id"
    if "_id" not in MediaStreamTrack.id.fget.__code__.co_names:  # type: ignore[attr-defined]
        return "MediaStreamTrack.id no longer reads _id"
    return None


def _check_jitter_buffer() -> str | None:
    if "_RTCRtpReceiver__jitter_buffer" not in RTCRtpReceiver._handle_rtp_packet.__code__.co_names:
        return "RTCRtpReceiver no longer keeps its jitter buffer in __jitter_buffer"
    if "_remove_frame" not in JitterBuffer.add.__code__.co_names:
        return "JitterBuffer.add no longer calls _remove_frame"
    used = set(JitterBuffer._remove_frame.__code__.co_names)
    if not {"_origin", "_capacity", "_packets", "remove"} <= used:
        return "JitterBuffer no longer keeps _packets/_origin/_capacity"
    return None


def _check_sender_start() -> str | None:
    connect = rtcpeerconnection.RTCPeerConnection._RTCPeerConnection__connect  # type: ignore[attr-defined]
    if "send" not in connect.__code__.co_names:
        return "RTCPeerConnection no longer starts senders with sender.send()"
    return None


def _check_remote_track_queue() -> str | None:
    if "_queue" not in rtcrtpreceiver.RemoteStreamTrack.recv.__code__.co_names:
        return "RemoteStreamTrack.recv no longer reads _queue"
    if {"data", "timestamp"} - set(inspect.signature(JitterFrame).parameters):
        return "JitterFrame lost data or timestamp"
    return None


def _check_offer_numbering() -> str | None:
    create_offer = rtcpeerconnection.RTCPeerConnection.createOffer.__code__.co_names
    if not {"_codecs", "_headerExtensions", "CODECS", "HEADER_EXTENSIONS"} <= set(create_offer):
        return "RTCPeerConnection.createOffer no longer resets _codecs/_headerExtensions"
    if "_set_mline_index" not in create_offer:
        return "RTCPeerConnection.createOffer no longer places transceivers on m-lines"
    if not callable(getattr(RTCRtpTransceiver, "_get_mline_index", None)):
        return "RTCRtpTransceiver._get_mline_index is gone"
    describe = rtcpeerconnection.create_media_description_for_transceiver.__code__.co_names
    if not {"_codecs", "_headerExtensions"} <= set(describe):
        return "m-lines are no longer written from _codecs/_headerExtensions"
    pc_class = rtcpeerconnection.RTCPeerConnection
    for name in ("_RTCPeerConnection__localRtp", "_RTCPeerConnection__remoteRtp"):
        method = getattr(pc_class, name, None)
        if method is None or not {"_codecs", "_headerExtensions"} <= set(method.__code__.co_names):
            return f"{name} no longer reads _codecs/_headerExtensions"
    remote = pc_class.setRemoteDescription.__code__.co_names
    if not {"find_common_codecs", "_codecs", "_headerExtensions"} <= set(remote):
        return "setRemoteDescription no longer takes the remote side's numbering"
    return None


def _check_rtp_packet_data() -> str | None:
    if "_data" not in RTCRtpReceiver._handle_rtp_packet.__code__.co_names:
        return "RTCRtpReceiver._handle_rtp_packet no longer stores the payload in packet._data"
    return None


def _check_transport_stats() -> str | None:
    if not callable(getattr(RTCDtlsTransport, "_get_stats", None)):
        return "RTCDtlsTransport._get_stats is gone"
    if "_RTCDtlsTransport__rx_packets" not in RTCDtlsTransport._recv_next.__code__.co_names:
        return "RTCDtlsTransport no longer counts received datagrams"
    return None


def _check_sender_rtcp() -> str | None:
    handler = getattr(RTCRtpSender, "_handle_rtcp_packet", None)
    if handler is None or list(inspect.signature(handler).parameters) != ["self", "packet"]:
        return "RTCRtpSender._handle_rtcp_packet(packet) is gone"
    if "_handle_rtcp_packet" not in RTCDtlsTransport._handle_rtcp_data.__code__.co_names:
        return "RTCP no longer reaches senders through _handle_rtcp_packet"
    if "_ssrc" not in RTCRtpSender._handle_rtcp_packet.__code__.co_names:
        return "RTCRtpSender no longer keeps its SSRC in _ssrc"
    return None


_STRUCTURE_CHECKS: tuple[Callable[[], str | None], ...] = (
    _check_offer_numbering,
    _check_decoder_worker,
    _check_keyframe_hooks,
    _check_msid_sources,
    _check_remote_track_queue,
    _check_sender_start,
    _check_jitter_buffer,
    _check_rtp_packet_data,
    _check_transport_stats,
    _check_sender_rtcp,
)


def install_encoded_frame_passthrough() -> None:
    """Let receivers marked with ``receive_encoded_frames`` skip decoding.

    Receivers that are not marked (test clients, the stock relay) still decode.
    Idempotent and process-wide.
    """
    with _install_lock:
        if rtcrtpreceiver.decoder_worker is _dispatching_worker:
            return
        check_aiortc_internals()
        rtcrtpreceiver.decoder_worker = _dispatching_worker


def receive_encoded_frames(track: MediaStreamTrack) -> None:
    """Make the receiver of this remote track hand out ``av.Packet``s.

    Must be called before the receiver starts, i.e. right after the remote
    description that created the track was applied.
    """
    remote_queue = track._queue  # type: ignore[attr-defined]
    if isinstance(remote_queue, EncodedFrameQueue):
        return
    if not remote_queue.empty():
        raise RuntimeError("the receiver already delivered decoded frames")
    track._queue = EncodedFrameQueue()  # type: ignore[attr-defined]


def _dispatching_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue,
    output_q: asyncio.Queue,
    decode_error: threading.Event,
) -> None:
    if isinstance(output_q, EncodedFrameQueue):
        _passthrough_worker(loop, input_q, output_q)
    else:
        _original_decoder_worker(loop, input_q, output_q, decode_error)


def _passthrough_worker(
    loop: asyncio.AbstractEventLoop, input_q: queue.Queue, output_q: asyncio.Queue
) -> None:
    while True:
        task = input_q.get()
        if task is None:
            _put_threadsafe(loop, output_q, None)
            return
        codec, encoded_frame = task
        if encoded_frame.data:
            _put_threadsafe(loop, output_q, encoded_packet(codec, encoded_frame))


def encoded_packet(codec: RTCRtpCodecParameters, encoded_frame: JitterFrame) -> av.Packet:
    """An ``av.Packet`` that an aiortc sender will re-packetise without re-encoding."""
    packet = av.Packet(encoded_frame.data)
    packet.pts = encoded_frame.timestamp
    packet.time_base = fractions.Fraction(1, codec.clockRate)
    if codec.mimeType.lower() == "video/vp8":
        packet.is_keyframe = is_vp8_keyframe(encoded_frame.data)
    return packet


def is_vp8_keyframe(frame: bytes) -> bool:
    """RFC 6386 section 9.1: bit 0 of the frame tag is 0 for a key frame."""
    return len(frame) > 0 and frame[0] & 0x01 == 0


def _put_threadsafe(loop: asyncio.AbstractEventLoop, output_q: asyncio.Queue, item: object) -> None:
    # A closed event loop has nobody left to listen.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(output_q.put_nowait, item)


def redirect_keyframe_requests(sender: RTCRtpSender, on_request: Callable[[], None]) -> None:
    """Route PLI/FIR received by this sender to ``on_request`` (aiortc drops them
    when the sender is fed encoded packets)."""
    sender._send_keyframe = on_request  # type: ignore[method-assign]


async def send_picture_loss_indication(receiver: RTCRtpReceiver) -> bool:
    """Ask the publisher behind this receiver for a keyframe. False if it has not
    sent anything yet (its SSRC is unknown)."""
    sources = receiver.getSynchronizationSources()
    for source in sources:
        await receiver._send_rtcp_pli(source.source)
    return bool(sources)


def never_start_again(sender: RTCRtpSender) -> None:
    """Keep a stopped sender stopped even if a late answer would start it."""

    async def ignore_start(parameters: RTCRtpSendParameters) -> None:
        return None

    sender.send = ignore_start  # type: ignore[method-assign]


def replace_jitter_buffer(receiver: RTCRtpReceiver, jitter_buffer: JitterBuffer) -> None:
    """Give a receiver that has not received anything yet another jitter buffer."""
    receiver._RTCRtpReceiver__jitter_buffer = jitter_buffer  # type: ignore[attr-defined]


def set_sender_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """Set the stream id aiortc writes into this sender's ``a=msid`` line."""
    sender._stream_id = stream_id


def set_track_id(track: MediaStreamTrack, track_id: str) -> None:
    """Set the track id aiortc writes into the ``a=msid`` line of its sender."""
    track._id = track_id


async def create_offer_keeping_numbering(pc: RTCPeerConnection) -> RTCSessionDescription:
    """``pc.createOffer()`` with the payload types and header extension ids already
    agreed in this session instead of aiortc's defaults.

    The transceivers end up with exactly the numbering written into the offer,
    so the senders and receivers started from them match what was signalled.
    """
    transceivers = pc.getTransceivers()
    agreed = {
        transceiver: (list(transceiver._codecs), list(transceiver._headerExtensions))
        for transceiver in transceivers
    }
    remote, local = pc.remoteDescription, pc.localDescription
    numbering = SessionNumbering.of(
        ((t.kind, codecs, extensions) for t, (codecs, extensions) in agreed.items()),
        (remote.sdp if remote else None, local.sdp if local else None),
    )
    offer = await pc.createOffer()
    description = aiortc_sdp.SessionDescription.parse(offer.sdp)
    for transceiver in transceivers:
        index = transceiver._get_mline_index()
        if index is None or index >= len(description.media):
            continue
        media = description.media[index]
        if media.kind != transceiver.kind or (
            transceiver.mid is not None and media.rtp.muxId != transceiver.mid
        ):
            continue
        codecs, extensions = agreed[transceiver]
        transceiver._codecs = numbering.renumber_codecs(
            transceiver.kind, transceiver._codecs, codecs
        )
        transceiver._headerExtensions = numbering.renumber_extensions(
            transceiver._headerExtensions, extensions
        )
        media.fmt = [codec.payloadType for codec in transceiver._codecs]
        media.rtp.codecs = transceiver._codecs
        media.rtp.headerExtensions = transceiver._headerExtensions
    return RTCSessionDescription(sdp=str(description), type=offer.type)


def packet_payload(packet: RtpPacket) -> bytes:
    """The depayloaded media of a received RTP packet (what the decoder would get)."""
    return packet._data  # type: ignore[attr-defined,no-any-return]


def received_datagrams(pc: RTCPeerConnection) -> int | None:
    """Datagrams that arrived on the peer connection's (bundled) DTLS transport so far;
    None before it has one."""
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is None:
            continue
        for stats in transport._get_stats().values():
            if stats.type == "transport":
                return int(stats.packetsReceived)
    return None


RtcpObserver = Callable[[object], None]


def sender_ssrc(sender: RTCRtpSender) -> int:
    """The SSRC a sender sends with (receiver reports name it)."""
    return sender._ssrc


def observe_sender_rtcp(sender: RTCRtpSender, observer: RtcpObserver) -> None:
    """Show ``observer`` every RTCP packet routed to this sender (before aiortc handles
    it): receiver reports, NACKs, PLI/FIR, REMB."""
    handle = sender._handle_rtcp_packet

    async def observed(packet: object) -> None:
        with contextlib.suppress(Exception):
            observer(packet)
        await handle(packet)  # type: ignore[arg-type]

    sender._handle_rtcp_packet = observed  # type: ignore[method-assign]
