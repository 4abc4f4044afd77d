"""The errors of the booking domain: commands the current state does not allow."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

NotBookableReason = Literal["past", "short_notice", "too_far_ahead", "not_a_slot"]


class DomainError(Exception):
    """A command that the current state does not allow."""


class InvalidSchedule(DomainError):
    """``field`` names the term at fault (as in the API), so a page can point to it."""

    def __init__(self, problem: str, field: str | None = None) -> None:
        super().__init__(f"The schedule cannot be set: {problem}.")
        self.field = field
        self.extra = {"field": field}


class SlotFull(DomainError):
    def __init__(self, start: datetime) -> None:
        super().__init__("This time is fully booked. Please choose another one.")
        self.start = start


class NotBookable(DomainError):
    """A requested start that is no slot, or lies outside the bookable window."""

    def __init__(self, reason: NotBookableReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.extra = {"reason": reason}


class AppointmentNotBooked(DomainError):
    def __init__(self, status: str) -> None:
        super().__init__(f"This appointment is {status.replace('_', ' ')}.")
        self.status = status


class OutsideCheckInWindow(DomainError):
    """Check-in is possible only from ``opens_at`` to ``closes_at``."""

    def __init__(self, opens_at: datetime, closes_at: datetime, timezone: str) -> None:
        zone = ZoneInfo(timezone)
        opens, closes = opens_at.astimezone(zone), closes_at.astimezone(zone)
        super().__init__(
            f"Check-in is possible on {opens:%Y-%m-%d} from {opens:%H:%M} to {closes:%H:%M}."
        )
        self.opens_at = opens_at
        self.closes_at = closes_at
        self.extra = {"opens_at": opens_at.isoformat(), "closes_at": closes_at.isoformat()}

