"""The expected wait: from recent consultation durations and the staff on duty.

Honest about itself: it says what it is based on, and gives a range.
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


def estimate_wait(
    place: int, staff_on_duty: int, recent_durations: list[float], default_minutes: float
) -> WaitEstimate:
    """``place`` 1 is next in line; each staff member works through the line in turn."""
    staff = max(1, staff_on_duty)
    rounds_ahead = (place - 1) // staff  # full consultations before a free desk is ours
    partial = 0.5 if place >= 1 else 0.0  # the desk we wait for is on average half way through
    if len(recent_durations) >= 3:
        ordered = sorted(recent_durations)
        typical = statistics.median(ordered)
        low, high = _quartiles(ordered)
        basis = "recent_consultations"
    else:
        typical = default_minutes * 60
        low, high = typical * 0.5, typical * 1.5
        basis = "default_duration"
    factor = rounds_ahead + partial
    return WaitEstimate(
        seconds=math.ceil(factor * typical),
        low_seconds=math.floor(factor * low),
        high_seconds=math.ceil(factor * high),
        consultations_sampled=len(recent_durations),
        staff_on_duty=staff,
        basis=basis,
    )


def _quartiles(ordered: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(ordered, n=4, method="inclusive")
    return q[0], q[2]
