"""A room's background checks: is each participant's media path alive
(liveness.py), and does each video track's publisher have to send less
(adaptation.py)? Both run as tasks from the first participant on."""

import asyncio
from collections.abc import Callable

from .adaptation import BandwidthWatch, Limits, TrackFeedback
from .events import SendLimits
from .forwarding import Publication
from .liveness import LivenessBounds, LivenessWatch, Verdict
from .participant import Participant


class RoomUpkeep:
    def __init__(
        self,
        bounds: LivenessBounds,
        participants: Callable[[], dict[str, Participant]],
        publications: Callable[[], dict[str, Publication]],
        on_verdict: Callable[[Participant, Verdict], None],
    ) -> None:
        self._participants = participants
        self._publications = publications
        self.liveness = LivenessWatch(bounds, lambda: list(participants().values()), on_verdict)
        self.bandwidth = BandwidthWatch(self._video_feedback, self._send_limits)
        self._tasks: list[asyncio.Task[None]] = []

    def admit(self, participant: Participant) -> None:
        self.liveness.start(participant)
        if not self._tasks:
            self._tasks = [
                asyncio.ensure_future(self.liveness.run()),
                asyncio.ensure_future(self.bandwidth.run()),
            ]

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    def _video_feedback(self) -> list[TrackFeedback]:
        participants = self._participants().values()
        return [
            (
                publication,
                [
                    p.subscriptions[track_id].feedback
                    for p in participants
                    if track_id in p.subscriptions
                ],
            )
            for track_id, publication in self._publications().items()
            if publication.info.kind == "video"
        ]

    def _send_limits(self, publication: Publication, limits: Limits) -> None:
        publisher = self._participants().get(publication.info.publisher_id)
        if publisher is None or publication.mid is None:
            return
        publisher.outbox.put_nowait(
            SendLimits(
                publication.mid,
                publication.info.track_id,
                limits.max_bitrate,
                limits.max_framerate,
                limits.scale_resolution_down_by,
            )
        )
