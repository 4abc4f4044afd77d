"""Slot arithmetic: which appointment slots a department offers, as pure functions.

Slots are laid out in local wall-clock time, period by period, from each
period's opening in steps of the slot length, and each wall-clock start is
turned into an instant with zoneinfo. So the changes of daylight saving time
come out as a person at the counter sees them:

- spring (last Sunday of March, 02:00 -> 03:00): a wall-clock time that does
  not exist (02:00-02:45) yields no slot;
- autumn (last Sunday of October, 03:00 -> 02:00): a wall-clock time that
  occurs twice (02:00-02:45) yields one slot, at its first occurrence
  (``fold=0``, still summer time). The second pass of that hour has no slots.
  The first occurrence is also how RFC 5545 reads an ambiguous local time, so
  the slot and its .ics entry name the same instant.

Every instant this module returns is in UTC. A slot lasts ``slot_minutes`` of
real time from its start.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import holidays

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class BookingHours:
    """On one weekday, from ``opens`` to ``closes`` (local "HH:MM"), appointments are taken."""

    weekday: int  # 0 = Monday
    opens: str
    closes: str  # "24:00" for midnight

    @property
    def span(self) -> tuple[int, int]:
        """Opening and closing as minutes of the day (closing at midnight is 1440)."""
        return minute_of_day(self.opens), minute_of_day(self.closes)


@dataclass(frozen=True)
class SlotPlan:
    """Everything that decides where a department's slots lie, and how many places each has."""

    hours: tuple[BookingHours, ...]
    slot_minutes: int = 15
    capacity: int = 1
    closed_days: frozenset[date] = field(default_factory=frozenset)
    state: str | None = "NW"  # German federal state whose public holidays take no slots
    timezone: str = "Europe/Berlin"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class FreeSlot:
    start: datetime
    end: datetime
    remaining: int


def minute_of_day(clock: str) -> int:
    """'HH:MM' as minutes since midnight; '24:00' is 1440, the end of the day."""
    try:
        hours_text, minutes_text = clock.split(":")
        hours, minutes = int(hours_text), int(minutes_text)
    except ValueError as error:
        raise ValueError(f"{clock!r}: times are written HH:MM, e.g. 08:30") from error
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise ValueError(f"{clock!r} is not a time of day between 00:00 and 24:00")
    return hours * 60 + minutes


def validate_hours(hours: tuple[BookingHours, ...], slot_minutes: int) -> None:
    """Raise ValueError, in words a department admin understands, for hours that cannot be."""
    by_weekday: dict[int, list[tuple[int, int]]] = {}
    for period in hours:
        if not 0 <= period.weekday <= 6:
            raise ValueError("weekday must be 0 (Monday) to 6 (Sunday)")
        opens, closes = period.span
        if closes <= opens:
            raise ValueError(f"{period.opens}-{period.closes}: the end must come after the start")
        if closes - opens < slot_minutes:
            raise ValueError(
                f"{period.opens}-{period.closes} is shorter than one {slot_minutes}-minute slot"
            )
        by_weekday.setdefault(period.weekday, []).append((opens, closes))
    for spans in by_weekday.values():
        spans.sort()
        for (_, earlier_end), (later_start, _) in pairwise(spans):
            if later_start < earlier_end:
                raise ValueError("the hours of one weekday overlap")


@lru_cache(maxsize=256)
def public_holidays(state: str | None, year: int) -> frozenset[date]:
    """The public holidays of a German federal state (e.g. "NW") in one year."""
    if state is None:
        return frozenset()
    return frozenset(holidays.country_holidays("DE", subdiv=state, years=year))


def takes_appointments_on(plan: SlotPlan, day: date) -> bool:
    return day not in plan.closed_days and day not in public_holidays(plan.state, day.year)


def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a local wall-clock time (first occurrence), None if it does not exist."""
    local = datetime.combine(day, time(minute // 60, minute % 60), zone)  # fold=0
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None  # skipped by the spring change: the clock jumps over it
    return instant


def slots_on(plan: SlotPlan, day: date) -> list[datetime]:
    """The slot starts of one local calendar day, in order."""
    return list(_slots_on(plan, day))


# A year's search of a department open around the clock visits 35,000 slots: the days'
# starts are worked out once per plan (the plan is a frozen value, a changed schedule a
# new key).
@lru_cache(maxsize=20_000)
def _slots_on(plan: SlotPlan, day: date) -> tuple[datetime, ...]:
    if not takes_appointments_on(plan, day):
        return ()
    zone = plan.zone
    starts: list[datetime] = []
    for period in plan.hours:
        if period.weekday != day.weekday():
            continue
        opens, closes = period.span
        for minute in range(opens, closes - plan.slot_minutes + 1, plan.slot_minutes):
            instant = _instant(day, minute, zone)
            if instant is not None:
                starts.append(instant)
    return tuple(sorted(starts))


def slot_starts(plan: SlotPlan, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every slot start in [start, end), in order."""
    zone = plan.zone
    day = start.astimezone(zone).date()
    last_day = end.astimezone(zone).date()
    while day <= last_day:
        for instant in _slots_on(plan, day):
            if start <= instant < end:
                yield instant
        day += timedelta(days=1)


def free_slots(
    plan: SlotPlan, start: datetime, end: datetime, taken: Mapping[datetime, int]
) -> list[FreeSlot]:
    """The slots in [start, end) with a place left; ``taken`` counts places held per start (UTC)."""
    length = timedelta(minutes=plan.slot_minutes)
    free = []
    for instant in slot_starts(plan, start, end):
        remaining = plan.capacity - taken.get(instant, 0)
        if remaining > 0:
            free.append(FreeSlot(start=instant, end=instant + length, remaining=remaining))
    return free


def is_slot_start(plan: SlotPlan, at: datetime) -> bool:
    """Whether ``at`` is where one of the plan's slots begins."""
    # In UTC: an ambiguous local time never compares equal to a time in another zone.
    at = at.astimezone(UTC)
    return at in _slots_on(plan, at.astimezone(plan.zone).date())


def bookable_window(
    now: datetime, days_ahead: int, notice_minutes: int, timezone: str
) -> tuple[datetime, datetime]:
    """[earliest, latest): no sooner than the notice, up to the end of the local day
    ``days_ahead`` days from today."""
    zone = ZoneInfo(timezone)
    earliest = now + timedelta(minutes=notice_minutes)
    last_day = now.astimezone(zone).date() + timedelta(days=days_ahead)
    latest = datetime.combine(last_day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return earliest, latest


def nearest_free_slots(
    plan: SlotPlan,
    requested: datetime,
    taken: Mapping[datetime, int],
    window: tuple[datetime, datetime],
    count: int = 3,
) -> list[FreeSlot]:
    """The ``count`` free slots in the bookable window closest in time to ``requested``
    (which itself is left out), the nearest first; on a tie the earlier first."""
    earliest, latest = window
    requested = requested.astimezone(UTC)
    span = timedelta(days=1)
    while True:
        low, high = max(earliest, requested - span), min(latest, requested + span)
        found = [s for s in free_slots(plan, low, high, taken) if s.start != requested]
        # Whatever lies outside [requested - span, requested + span] is farther than
        # anything inside, so once enough are inside they are the nearest.
        if len(found) >= count or (low == earliest and high == latest):
            break
        span *= 2
    found.sort(key=lambda s: (abs(s.start - requested), s.start))
    return found[:count]
