"""The expected wait: from recent consultation durations and the staff on duty.

Honest about itself: it says what it is based on, gives a range, and says when a staff
member is free, so there is no wait at all.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class WaitEstimate:
    seconds: int
    low_seconds: int
    high_seconds: int
    consultations_sampled: int
    staff_on_duty: int
    basis: str  # "recent_consultations" or "default_duration"
    staff_free: bool = False  # a staff member is free for this place: no wait


def estimate_wait(
    place: int, staff_on_duty: int, recent_durations: list[float], default_minutes: float
) -> WaitEstimate:
    """``place`` 1 is next in line.

    ``staff_on_duty`` are the staff following the line on their dashboards: at their
    desks and free (a staff member in a consultation is on its page instead). They take
    the first places at once, then each works through the line in turn, so place
    ``staff + 1`` waits one consultation. With nobody on duty, the one we wait for is
    taken to be busy and on average half way through a consultation."""
    busy = staff_on_duty == 0
    consultations = (place - 1) + 0.5 if busy else float((place - 1) // staff_on_duty)
    if len(recent_durations) >= 3:
        ordered = sorted(recent_durations)
        typical = statistics.median(ordered)
        low, high = _quartiles(ordered)
        basis = "recent_consultations"
    else:
        typical = default_minutes * 60
        low, high = typical * 0.5, typical * 1.5
        basis = "default_duration"
    return WaitEstimate(
        seconds=math.ceil(consultations * typical),
        low_seconds=math.floor(consultations * low),
        high_seconds=math.ceil(consultations * high),
        consultations_sampled=len(recent_durations),
        staff_on_duty=staff_on_duty,
        basis=basis,
        staff_free=consultations == 0,
    )


def _quartiles(ordered: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(ordered, n=4, method="inclusive")
    return q[0], q[2]
