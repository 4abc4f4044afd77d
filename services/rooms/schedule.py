"""Opening hours: pure functions over a weekly plan, closed days and a time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    weekday: int  # 0 = Monday
    opens: str  # "HH:MM"
    closes: str  # "HH:MM", "24:00" for midnight


def parse_clock(value: str) -> time | None:
    """'HH:MM' as a time; None for '24:00' (the end of the day)."""
    hours, minutes = (int(p) for p in value.split(":"))
    if hours == 24 and minutes == 0:
        return None
    return time(hours, minutes)


def validate_period(period: Period) -> None:
    if not 0 <= period.weekday <= 6:
        raise ValueError("weekday must be 0 (Monday) to 6 (Sunday)")
    try:
        opens = parse_clock(period.opens)
        closes = parse_clock(period.closes)
    except ValueError as error:
        raise ValueError("times are written HH:MM, e.g. 08:30") from error
    if opens is None:
        raise ValueError("an office cannot open at 24:00")
    if closes is not None and closes <= opens:
        raise ValueError(f"{period.opens}-{period.closes}: closing must come after opening")


def _intervals_on(day: date, plan: list[Period], closed: set[date], tz: ZoneInfo):  # type: ignore[no-untyped-def]
    if day in closed:
        return
    for period in plan:
        if period.weekday != day.weekday():
            continue
        opens = datetime.combine(day, parse_clock(period.opens) or time(0), tz)
        close_clock = parse_clock(period.closes)
        closes = (
            datetime.combine(day + timedelta(days=1), time(0), tz)
            if close_clock is None
            else datetime.combine(day, close_clock, tz)
        )
        yield opens, closes


def open_interval(
    plan: list[Period], closed: set[date], tz_name: str, at: datetime
) -> tuple[datetime, datetime] | None:
    """The opening interval containing ``at`` (merged across midnight), or None when closed."""
    tz = ZoneInfo(tz_name)
    local = at.astimezone(tz)
    for day in (local.date() - timedelta(days=1), local.date()):
        for opens, closes in _intervals_on(day, plan, closed, tz):
            if opens <= local < closes:
                return opens, _merged_end(plan, closed, tz, closes)
    return None


def _merged_end(plan: list[Period], closed: set[date], tz: ZoneInfo, end: datetime) -> datetime:
    """Follow intervals that start exactly where the previous ends (e.g. open around the clock)."""
    for _ in range(14):
        following = [c for o, c in _intervals_on(end.date(), plan, closed, tz) if o == end]
        if not following:
            return end
        end = max(following)
    return end


def next_opening(
    plan: list[Period], closed: set[date], tz_name: str, after: datetime
) -> datetime | None:
    """The first opening strictly after ``after`` within the next 60 days, or None."""
    tz = ZoneInfo(tz_name)
    local = after.astimezone(tz)
    for offset in range(61):
        day = local.date() + timedelta(days=offset)
        starts = sorted(o for o, _ in _intervals_on(day, plan, closed, tz) if o > local)
        if starts:
            return starts[0]
    return None
