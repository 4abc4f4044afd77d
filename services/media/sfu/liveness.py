"""Is a participant's media path alive, judged by what arrives on its peer connection?

A participant whose UDP stops (a NAT or firewall timed out, a TURN allocation was
lost) keeps its signalling socket, and aiortc notices only when ICE consent
expires, about 30 s later. The room therefore counts the datagrams arriving on
each participant's DTLS transport (RTP, RTCP, DTLS) every ``check_interval``:

* connected, media expected, and silent for ``stall_after``: ``STALLED`` (the
  room asks the participant to replace its peer connection);
* silent for ``drop_after``: ``DROP_SILENT``;
* not connected ``connect_within`` after joining: ``DROP_NEVER_CONNECTED``;
* heard again after ``STALLED``: ``RESUMED``.

Media is expected from a participant that publishes a track (RTP) or receives
one (its receiver reports); one alone in a room sending nothing is never silent.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from .aiortc_internals import received_datagrams
from .participant import Participant


class Verdict(Enum):
    UNCHANGED = "unchanged"
    STALLED = "stalled"
    RESUMED = "resumed"
    DROP_SILENT = "drop silent"
    DROP_NEVER_CONNECTED = "drop never connected"


@dataclass(frozen=True)
class LivenessBounds:
    check_interval: float = 1.0
    stall_after: float = 3.0
    drop_after: float = 8.0
    connect_within: float = 15.0


@dataclass
class MediaClock:
    """When something last arrived from one participant's peer connection."""

    started: float
    bounds: LivenessBounds = field(default_factory=LivenessBounds)
    heard_count: int | None = None
    heard_at: float | None = None
    stalled: bool = False

    def assess(self, now: float, received: int | None, connected: bool, expecting: bool) -> Verdict:
        """``received``: datagrams received so far (None: not known yet)."""
        if not connected:
            if now - self.started >= self.bounds.connect_within:
                return Verdict.DROP_NEVER_CONNECTED
            return Verdict.UNCHANGED
        if self.heard_at is None or received != self.heard_count or not expecting:
            self.heard_count = received
            self.heard_at = now
        silence = now - self.heard_at
        if silence >= self.bounds.drop_after:
            return Verdict.DROP_SILENT
        if silence >= self.bounds.stall_after:
            if self.stalled:
                return Verdict.UNCHANGED
            self.stalled = True
            return Verdict.STALLED
        if self.stalled:
            self.stalled = False
            return Verdict.RESUMED
        return Verdict.UNCHANGED


class LivenessWatch:
    """Assesses every participant of a room each ``check_interval`` (a room task)."""

    def __init__(
        self,
        bounds: LivenessBounds,
        participants: Callable[[], list[Participant]],
        on_verdict: Callable[[Participant, Verdict], None],
    ) -> None:
        self.bounds = bounds
        self._participants = participants
        self._on_verdict = on_verdict
        self._clocks: dict[int, MediaClock] = {}

    def start(self, participant: Participant) -> None:
        loop = asyncio.get_running_loop()
        self._clocks[id(participant)] = MediaClock(loop.time(), self.bounds)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.bounds.check_interval)
            present = self._participants()
            for participant in present:
                clock = self._clocks.get(id(participant))
                if clock is None or participant.gone:
                    continue
                verdict = clock.assess(
                    loop.time(),
                    received_datagrams(participant.pc),
                    participant.connected,
                    expects_media(participant),
                )
                if verdict is not Verdict.UNCHANGED:
                    self._on_verdict(participant, verdict)
            alive = {id(p) for p in present}
            self._clocks = {key: c for key, c in self._clocks.items() if key in alive}


def expects_media(participant: Participant) -> bool:
    """It publishes (RTP comes) or receives something (its receiver reports come)."""
    return bool(participant.publications()) or any(
        s.track.frames_forwarded > 0 for s in participant.subscriptions.values()
    )
