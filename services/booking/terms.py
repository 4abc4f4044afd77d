"""The terms of a department's appointment schedule, as its admin sets them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from services.booking import slots
from services.booking.errors import InvalidSchedule
from services.booking.slots import BookingHours, SlotPlan


@dataclass(frozen=True)
class ScheduleTerms:
    """What a department admin sets: when slots are, how many places, who may book when."""

    hours: tuple[BookingHours, ...] = ()
    slot_minutes: int = 15
    capacity: int = 1
    days_ahead: int = 60
    notice_minutes: int = 60
    closed_days: frozenset[date] = field(default_factory=frozenset)
    state: str | None = "NW"
    timezone: str = "Europe/Berlin"
    check_in_before_minutes: int = 10
    check_in_after_minutes: int = 15

    @property
    def plan(self) -> SlotPlan:
        return SlotPlan(
            hours=self.hours,
            slot_minutes=self.slot_minutes,
            capacity=self.capacity,
            closed_days=self.closed_days,
            state=self.state,
            timezone=self.timezone,
        )

    def validate(self) -> None:
        """Raise InvalidSchedule with a message a department admin understands."""
        checks = [
            (5 <= self.slot_minutes <= 240, "slot_minutes", "a slot lasts from 5 to 240 minutes"),
            (1 <= self.capacity <= 100, "capacity", "a slot has from 1 to 100 places"),
            (1 <= self.days_ahead <= 366, "days_ahead", "booking ahead goes from 1 to 366 days"),
            (0 <= self.notice_minutes <= 14 * 24 * 60, "notice_minutes",
             "the notice is 0 minutes to 14 days"),
            (0 <= self.check_in_before_minutes <= 120, "check_in_before_minutes",
             "check-in opens 0-120 minutes before"),
            (0 <= self.check_in_after_minutes <= 120, "check_in_after_minutes",
             "check-in closes 0-120 minutes after"),
            (self.state is None or self.state in holidays.country_holidays("DE").subdivisions,
             "state", f"{self.state!r} is not a German federal state code such as 'NW'"),
        ]
        for holds, field_name, message in checks:
            if not holds:
                raise InvalidSchedule(message, field_name)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise InvalidSchedule(f"unknown time zone {self.timezone!r}", "timezone") from error
        try:
            slots.validate_hours(self.hours, self.slot_minutes)
        except ValueError as error:
            raise InvalidSchedule(str(error), "hours") from error

    def to_record(self) -> dict[str, Any]:
        """As stored in an event: plain JSON values."""
        return {
            "hours": [
                {"weekday": h.weekday, "opens": h.opens, "closes": h.closes} for h in self.hours
            ],
            "slot_minutes": self.slot_minutes,
            "capacity": self.capacity,
            "days_ahead": self.days_ahead,
            "notice_minutes": self.notice_minutes,
            "closed_days": sorted(d.isoformat() for d in self.closed_days),
            "state": self.state,
            "timezone": self.timezone,
            "check_in_before_minutes": self.check_in_before_minutes,
            "check_in_after_minutes": self.check_in_after_minutes,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ScheduleTerms:
        """From a stored event (earlier ones also carry ``reminder_minutes``, unused now:
        the reminders' lead times are the setting ``booking_mail_reminder_minutes``)."""
        return cls(
            hours=tuple(BookingHours(**h) for h in record["hours"]),
            closed_days=frozenset(date.fromisoformat(d) for d in record["closed_days"]),
            **{k: v for k, v in record.items() if k in _SCALAR_TERMS},
        )


_SCALAR_TERMS = {
    "slot_minutes", "capacity", "days_ahead", "notice_minutes", "state", "timezone",
    "check_in_before_minutes", "check_in_after_minutes",
}

