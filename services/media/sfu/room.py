"""A media room: a selective forwarding unit on aiortc.

Every participant has one ``RTCPeerConnection`` with the room. Each audio,
camera or screen track a participant publishes is forwarded, as encoded VP8 or
Opus frames, to every other participant on its own send-only m-line.

Signalling protocol (the room never talks to the network itself):

1. ``await room.join(pid, role, offer_sdp, sources)``; then relay everything
   ``room.messages(pid)`` yields to that participant, in order. The first
   message is the ``Answer`` to the join offer.
2. Whenever the tracks sent to a participant change (someone joins, leaves,
   starts or stops a screen share) the room yields an ``Offer`` for it; the
   participant answers and the signalling layer calls
   ``await room.accept_answer(pid, answer_sdp)``. One offer is outstanding at a
   time; later changes are folded into the next offer.
3. A participant that adds or removes its own tracks (screen share) offers:
   ``await room.handle_offer(pid, offer_sdp, sources)``; the ``Answer`` comes
   through ``messages``. If the room's own offer is still unanswered this
   raises ``NegotiationCollision``: the room is the impolite peer, the
   participant rolls back, answers the room's offer and offers again.
4. Trickled ICE candidates: ``await room.add_ice_candidate(pid, candidate)``.
5. ``await room.leave(pid)``; ``await room.close()`` disconnects everyone. The
   participant's last message is ``Disconnected(reason)``.

``sources`` labels the participant's own tracks: ``{msid track id or mid:
"audio" | "camera" | "screen"}``; unlabelled audio is "audio", the first
unlabelled video "camera", further video "screen".
"""

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from .aiortc_internals import (
    create_offer_keeping_numbering,
    install_encoded_frame_passthrough,
    never_start_again,
    observe_sender_rtcp,
    receive_encoded_frames,
    redirect_keyframe_requests,
    replace_jitter_buffer,
    sender_ssrc,
    set_sender_stream_id,
)
from .events import (
    REASON_CONNECTION_FAILED,
    REASON_LEFT,
    REASON_MEDIA_LOST,
    REASON_ROOM_CLOSED,
    STATE_CONNECTED,
    STATE_CONNECTING,
    STATE_LEFT,
    STATE_RECONNECTING,
    STATE_STALLED,
    Answer,
    Disconnected,
    IceRestartUnsupported,
    MediaResumed,
    MediaStalled,
    NegotiationCollision,
    NoOfferPending,
    Offer,
    ParticipantAlreadyJoined,
    ParticipantConnected,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMessage,
    ParticipantStateChanged,
    RoomClosed,
    RoomClosedError,
    RoomEvent,
    RoomEventHandler,
    TrackEnded,
    TrackStarted,
    UnknownParticipant,
)
from .forwarding import DEFAULT_KEYFRAME_INTERVAL, InboundTrack, Publication
from .ice import rtc_configuration
from .jitter import ForwardingJitterBuffer
from .liveness import LivenessBounds, Verdict
from .participant import Participant, Subscription, forwarded_codecs, ice_username_fragment
from .stats import room_stats
from .tracks import TrackInfo, TrackSource, check_participant_id, make_track_info
from .upkeep import RoomUpkeep

logger = logging.getLogger(__name__)

Sources = Mapping[str, TrackSource | str]


class ForwardingRoom:
    def __init__(
        self,
        room_id: str,
        *,
        configuration: RTCConfiguration | None = None,
        on_event: RoomEventHandler | None = None,
        keyframe_interval: float = DEFAULT_KEYFRAME_INTERVAL,
        liveness: LivenessBounds | None = None,
    ) -> None:
        install_encoded_frame_passthrough()
        self.room_id = room_id
        self._configuration = configuration or rtc_configuration()
        self._on_event = on_event
        self._keyframe_interval = keyframe_interval
        self._participants: dict[str, Participant] = {}
        self._publications: dict[str, Publication] = {}
        self._serials = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._close_reason: str | None = None  # set once: the room is closed
        self._upkeep = RoomUpkeep(
            liveness or LivenessBounds(),
            lambda: self._participants,
            lambda: self._publications,
            self._on_liveness,
        )

    # --- what is in the room ------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._close_reason is not None

    @property
    def close_reason(self) -> str | None:
        """Why the room was closed (what its participants' ``Disconnected`` say), or None."""
        return self._close_reason

    def participants(self) -> dict[str, str]:
        """participant id -> role."""
        return {pid: p.role for pid, p in self._participants.items()}

    def participant_states(self) -> dict[str, str]:
        """participant id -> the state of its connection (``STATE_*``)."""
        return {pid: p.state for pid, p in self._participants.items()}

    def published_tracks(self) -> list[TrackInfo]:
        return [publication.info for publication in self._publications.values()]

    def peer_connections(self) -> dict[str, RTCPeerConnection]:
        """participant id -> its peer connection with the room (for statistics)."""
        return {pid: p.pc for pid, p in self._participants.items()}

    def stats(self) -> dict[str, Any]:
        return room_stats(list(self._participants.values()), list(self._publications.values()))

    # --- signalling ---------------------------------------------------------

    async def join(
        self, participant_id: str, role: str, offer_sdp: str, sources: Sources | None = None
    ) -> None:
        """Admit a participant; its ``Answer`` is the first of its ``messages``."""
        self._check_open()
        check_participant_id(participant_id)
        if participant_id in self._participants:
            raise ParticipantAlreadyJoined(participant_id)
        participant = Participant(participant_id, role, RTCPeerConnection(self._configuration))
        await self._admit(participant, offer_sdp, sources)
        self._emit(ParticipantJoined(self.room_id, participant_id, role))

    async def rejoin(
        self, participant_id: str, offer_sdp: str, sources: Sources | None = None
    ) -> None:
        """Replace the participant's peer connection by a new one (its media path died):
        the old one closes, its tracks end; the ``Answer`` comes through ``messages``,
        which go on."""
        self._check_open()
        old = self._participant(participant_id)
        self._set_state(old, STATE_RECONNECTING)
        await self._drop(old, STATE_RECONNECTING, announce=False, final=False)
        participant = Participant(
            participant_id, old.role, RTCPeerConnection(self._configuration), outbox=old.outbox
        )
        participant.state = STATE_RECONNECTING
        await self._admit(participant, offer_sdp, sources)

    async def _admit(
        self, participant: Participant, offer_sdp: str, sources: Sources | None
    ) -> None:
        self._participants[participant.participant_id] = participant
        self._watch(participant)
        self._upkeep.admit(participant)
        if not participant.state:
            self._set_state(participant, STATE_CONNECTING)
        try:
            await self._answer(participant, offer_sdp, sources)
        except BaseException:
            await self._drop(participant, REASON_CONNECTION_FAILED, announce=False)
            raise

    async def messages(self, participant_id: str) -> AsyncIterator[ParticipantMessage]:
        """Everything to relay to the participant, in order, ending with ``Disconnected``."""
        outbox = self._participant(participant_id).outbox
        while True:
            message = await outbox.get()
            yield message
            if isinstance(message, Disconnected):
                return

    async def handle_offer(
        self, participant_id: str, offer_sdp: str, sources: Sources | None = None
    ) -> None:
        """A renegotiation offer of the participant; the ``Answer`` comes as a message."""
        self._check_open()
        participant = self._participant(participant_id)
        remote = participant.pc.remoteDescription
        if remote is not None and ice_username_fragment(offer_sdp) not in (
            None,
            ice_username_fragment(remote.sdp),
        ):
            raise IceRestartUnsupported(participant_id)
        await self._answer(participant, offer_sdp, sources)

    async def accept_answer(self, participant_id: str, answer_sdp: str) -> None:
        self._check_open()
        participant = self._participant(participant_id)
        async with participant.negotiation:
            if participant.pc.signalingState != "have-local-offer":
                raise NoOfferPending(participant_id)
            answer = RTCSessionDescription(sdp=answer_sdp, type="answer")
            await participant.pc.setRemoteDescription(answer)
            await self._offer_pending_changes(participant)

    async def add_ice_candidate(
        self, participant_id: str, candidate: RTCIceCandidate | None
    ) -> None:
        await self._participant(participant_id).pc.addIceCandidate(candidate)

    async def leave(self, participant_id: str, reason: str = REASON_LEFT) -> None:
        if self.closed:
            # Its close drops everyone with the room's reason ("consultation ended"), even
            # when a participant's socket ends in the same moment and leaves: "left" would
            # be the last word its page hears, and the page would not say the call ended.
            return
        participant = self._participants.get(participant_id)
        if participant is not None:
            await self._drop(participant, reason)

    async def close(self, reason: str = REASON_ROOM_CLOSED) -> None:
        """Disconnect everyone; the room cannot be used afterwards."""
        if self.closed:
            return
        self._close_reason = reason
        self._upkeep.stop()
        participants = list(self._participants.values())
        await asyncio.gather(*(self._drop(p, reason) for p in participants))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._emit(RoomClosed(self.room_id))

    # --- negotiation --------------------------------------------------------

    async def _answer(
        self, participant: Participant, offer_sdp: str, sources: Sources | None
    ) -> None:
        async with participant.negotiation:
            pc = participant.pc
            if pc.signalingState != "stable":
                raise NegotiationCollision(participant.participant_id)
            participant.remember_sources(sources)
            participant.add_receiving_transceivers(offer_sdp)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            answer = Answer(pc.localDescription.sdp, participant.forwarded_tracks())
            participant.outbox.put_nowait(answer)
            self._sync_publications(participant)
            await self._offer_pending_changes(participant)

    async def _renegotiate(self, participant: Participant) -> None:
        try:
            async with participant.negotiation:
                await self._offer_pending_changes(participant)
        except Exception:
            if not (participant.gone or self.closed):
                raise  # else: its connection closed under our feet, nothing to offer

    async def _offer_pending_changes(self, participant: Participant) -> None:
        """Bring the participant's subscriptions up to date; offer if that changed
        its session and no offer is outstanding. Call with the negotiation lock."""
        if participant.gone or self.closed:
            return
        await self._retire_ended_subscriptions(participant)
        pc = participant.pc
        if pc.signalingState != "stable" or not participant.connected:
            return
        self._add_missing_subscriptions(participant)
        if not participant.needs_offer:
            return
        participant.needs_offer = False
        # Not pc.createOffer(): it would renumber payload types and header
        # extension ids by aiortc's defaults, also for the participant's own m-lines.
        await pc.setLocalDescription(await create_offer_keeping_numbering(pc))
        offer = Offer(pc.localDescription.sdp, participant.forwarded_tracks())
        participant.outbox.put_nowait(offer)

    def _add_missing_subscriptions(self, participant: Participant) -> None:
        for track_id, publication in self._publications.items():
            mine = publication.info.publisher_id == participant.participant_id
            if mine or track_id in participant.subscriptions:
                continue
            participant.subscriptions[track_id] = self._subscribe(participant, publication)
            participant.needs_offer = True

    def _subscribe(self, participant: Participant, publication: Publication) -> Subscription:
        track = publication.subscribe(participant.participant_id)
        transceiver = participant.pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(forwarded_codecs(track.kind))
        set_sender_stream_id(transceiver.sender, publication.info.stream_id)
        redirect_keyframe_requests(transceiver.sender, publication.request_keyframe)
        participant.sending_transceivers.add(transceiver)
        subscription = Subscription(publication, transceiver, track)
        sender = transceiver.sender
        observe_sender_rtcp(sender, lambda p: subscription.feedback.observe(p, sender_ssrc(sender)))
        return subscription

    async def _retire_ended_subscriptions(self, participant: Participant) -> None:
        """Stop sending tracks whose publication ended (the RTCP BYE ends them at
        the participant at once); their m-lines go inactive with the next offer."""
        for track_id, subscription in list(participant.subscriptions.items()):
            if not subscription.publication.ended:
                continue
            del participant.subscriptions[track_id]
            subscription.track.stop()
            sender = subscription.transceiver.sender
            never_start_again(sender)
            await sender.stop()
            subscription.transceiver.direction = "inactive"
            participant.needs_offer = True

    # --- publications -------------------------------------------------------

    def _sync_publications(self, participant: Participant) -> None:
        """Publish what the participant now sends, unpublish what it stopped sending."""
        for transceiver in participant.receiving_transceivers():
            inbound = participant.inbound.get(transceiver)
            if inbound is None:
                continue
            receiving = participant.is_receiving(transceiver)
            if receiving and inbound.publication is None:
                self._publish(participant, transceiver, inbound)
            elif not receiving and inbound.publication is not None:
                self._unpublish(inbound.publication)
                inbound.publication = None

    def _publish(
        self, participant: Participant, transceiver: RTCRtpTransceiver, inbound: InboundTrack
    ) -> None:
        source = participant.source_of(transceiver, inbound.track.id)
        info = make_track_info(
            participant.participant_id, participant.role, source, next(self._serials)
        )
        publication = Publication(info, transceiver.receiver, self._keyframe_interval)
        publication.mid = transceiver.mid
        inbound.publication = publication
        self._publications[info.track_id] = publication
        self._emit(TrackStarted(self.room_id, info))
        self._renegotiate_all_but(participant.participant_id)

    def _unpublish(self, publication: Publication) -> None:
        if publication.ended:
            return
        publication.end()
        self._publications.pop(publication.info.track_id, None)
        self._emit(TrackEnded(self.room_id, publication.info))
        self._renegotiate_all_but(publication.info.publisher_id)

    def _renegotiate_all_but(self, participant_id: str) -> None:
        for other in self._participants.values():
            if other.participant_id != participant_id:
                self._spawn(self._renegotiate(other))

    # --- peer connection events ---------------------------------------------

    def _watch(self, participant: Participant) -> None:
        pc = participant.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._on_remote_track(participant, track)

        @pc.on("connectionstatechange")
        def on_connection_state_change() -> None:
            self._on_connection_state(participant)

    def _on_remote_track(self, participant: Participant, track: MediaStreamTrack) -> None:
        # Emitted by setRemoteDescription, before the receiver starts: the only
        # moment to switch it to encoded frames.
        transceiver = next(t for t in participant.pc.getTransceivers() if t.receiver.track is track)
        receive_encoded_frames(track)
        replace_jitter_buffer(transceiver.receiver, ForwardingJitterBuffer(track.kind))
        participant.inbound[transceiver] = InboundTrack(
            track, lambda inbound: self._on_inbound_ended(inbound)
        )

    def _on_inbound_ended(self, inbound: InboundTrack) -> None:
        if inbound.publication is not None:
            self._unpublish(inbound.publication)
            inbound.publication = None

    def _on_connection_state(self, participant: Participant) -> None:
        state = participant.pc.connectionState
        if state == "connected" and not participant.connected:
            participant.connected = True
            pid = participant.participant_id
            self._set_state(participant, STATE_CONNECTED)
            self._emit(ParticipantConnected(self.room_id, pid, participant.role))
            self._spawn(self._renegotiate(participant))
        elif state in ("failed", "closed") and not participant.gone:
            # A close the room did not initiate (the room marks a participant gone
            # first): aiortc ends a peer whose ICE consent expired in "closed".
            self._spawn(self._drop(participant, REASON_CONNECTION_FAILED))

    def _on_liveness(self, participant: Participant, verdict: Verdict) -> None:
        bounds = self._upkeep.liveness.bounds
        if verdict is Verdict.STALLED:
            participant.outbox.put_nowait(MediaStalled(bounds.stall_after, bounds.drop_after))
            self._set_state(participant, STATE_STALLED)
        elif verdict is Verdict.RESUMED:
            participant.outbox.put_nowait(MediaResumed())
            self._set_state(participant, STATE_CONNECTED)
        elif verdict is Verdict.DROP_SILENT:
            self._spawn(self._drop(participant, REASON_MEDIA_LOST))
        elif verdict is Verdict.DROP_NEVER_CONNECTED:
            self._spawn(self._drop(participant, REASON_CONNECTION_FAILED))

    def _set_state(self, participant: Participant, state: str, reason: str = "") -> None:
        if participant.state == state:
            return
        participant.state = state
        self._emit(
            ParticipantStateChanged(
                self.room_id, participant.participant_id, participant.role, state, reason
            )
        )

    # --- leaving --------------------------------------------------------------

    async def _drop(
        self, participant: Participant, reason: str, announce: bool = True, final: bool = True
    ) -> None:
        """``final``: the participant's messages end (``Disconnected``); else it rejoins."""
        if participant.gone:
            return
        participant.gone = True
        if self._participants.get(participant.participant_id) is participant:
            del self._participants[participant.participant_id]
        for publication in participant.publications():
            self._unpublish(publication)
        for subscription in participant.subscriptions.values():
            subscription.publication.unsubscribe(participant.participant_id)
        if final:
            participant.outbox.put_nowait(Disconnected(reason))
        await participant.pc.close()
        await asyncio.gather(*(inbound.stop() for inbound in participant.inbound.values()))
        if announce:
            self._set_state(participant, STATE_LEFT, reason)
            self._emit(ParticipantLeft(self.room_id, participant.participant_id, reason))

    # --- helpers ------------------------------------------------------------

    def _participant(self, participant_id: str) -> Participant:
        participant = self._participants.get(participant_id)
        if participant is None:
            raise UnknownParticipant(participant_id)
        return participant

    def _check_open(self) -> None:
        if self.closed:
            raise RoomClosedError(self.room_id)

    def _emit(self, event: RoomEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            logger.exception("room event handler failed on %s", event)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("media room %s task failed", self.room_id, exc_info=task.exception())
