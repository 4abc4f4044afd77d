"""A department's page for its first view: what the public API says, in words of the page.

The same words as the page's script (knock.js, common.js) uses, from the same catalog, so
the script finds the page as it would have drawn it. Every message id here is also marked
in a template (knock.html's and base.html's strings), which is where the catalog tool
finds them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_skeleton, format_time, get_day_names

from services.web.i18n import translations

TIME_ZONE = "Europe/Berlin"
STAFF_FREE = "A staff member is free: you will be seen right away."
RANGE_RECENT = "{low}–{high} minutes, going by recent conversations"
RANGE_ESTIMATED = "{low}–{high} minutes, estimated"
ABOUT_RECENT = "about {n} minutes, going by recent conversations"
ABOUT_ESTIMATED = "about {n} minutes, estimated"


def department_page_context(department: dict[str, Any], locale: str) -> dict[str, Any]:
    """What knock.html shows of a department (as ``GET /api/v1/departments/{id}`` gives it)."""
    gettext = translations(locale).gettext
    zone = _zone(str(department.get("timezone") or TIME_ZONE))
    return {
        "department": department,
        "next_opening": when(department.get("opens_at"), locale, zone),
        "weekly_hours": weekly_hours(department.get("weekly", []), locale),
        "language_options": [
            (code, language_name(code, locale)) for code in department.get("languages", [])
        ],
        "topic_options": [
            (topic["id"], topic.get(locale) or topic.get("de") or topic["id"])
            for topic in department.get("topics", [])
        ],
        "expected_wait_text": expected_wait_text(department, gettext),
    }


def weekly_hours(periods: list[dict[str, Any]], locale: str) -> list[tuple[str, str]]:
    """Monday to Sunday: the day's name and its hours ("08:00–12:00, 14:00–16:00"), or
    "closed"."""
    gettext = translations(locale).gettext
    names = get_day_names("wide", locale=locale)
    days: list[tuple[str, str]] = []
    for weekday in range(7):
        spans = sorted(
            (p["opens"], p["closes"]) for p in periods if int(p["weekday"]) == weekday
        )
        text = ", ".join(f"{o}–{c}" for o, c in spans) if spans else gettext("closed")
        days.append((str(names[weekday]), text))
    return days


def when(iso: str | None, locale: str, zone: ZoneInfo) -> str:
    """"today at 08:30", "tomorrow at …", "Tuesday, 2 December at …", as formatWhen."""
    gettext = translations(locale).gettext
    if not iso:
        return gettext("No opening hours are planned at the moment.")
    moment = datetime.fromisoformat(iso).astimezone(zone)
    today = datetime.now(zone).date()
    time = format_time(moment, "HH:mm", locale=locale)
    if moment.date() == today:
        return gettext("today at {time}").replace("{time}", time)
    if moment.date() == today + timedelta(days=1):
        return gettext("tomorrow at {time}").replace("{time}", time)
    day = format_skeleton("EEEEdMMMM", moment, locale=locale)
    return gettext("{day} at {time}").replace("{day}", day).replace("{time}", time)


def expected_wait_text(department: dict[str, Any], gettext: Any) -> str:
    """The knock form's sentence on the wait, as knock.js words it."""
    wait = department.get("expected_wait") or {}
    waiting = int(department.get("waiting", 0))
    if wait.get("staff_free"):
        return str(gettext(STAFF_FREE))
    return (
        gettext("If you knock now: {n} waiting before you, expected wait {wait}.")
        .replace("{n}", str(waiting))
        .replace("{wait}", wait_range(wait, gettext))
    )


def wait_range(wait: dict[str, Any], gettext: Any) -> str:
    """"going by recent conversations, 3–9 minutes" / "an estimated 6–18 minutes", as
    formatExpectedWait in common.js."""
    if not wait:
        return "–"
    if wait.get("staff_free"):
        return str(gettext("right away"))
    if int(wait.get("high_seconds", 0)) < 60:
        return str(gettext("less than a minute"))
    low = int(wait.get("low_seconds", 0)) // 60
    high = -(-int(wait.get("high_seconds", 0)) // 60)
    recent = wait.get("basis") == "recent_consultations"
    if low == high:
        key = ABOUT_RECENT if recent else ABOUT_ESTIMATED
        return str(gettext(key)).replace("{n}", str(high))
    key = RANGE_RECENT if recent else RANGE_ESTIMATED
    return str(gettext(key)).replace("{low}", str(low)).replace("{high}", str(high))


def language_name(code: str, locale: str) -> str:
    name = Locale.parse(locale).languages.get(code, code)
    return name[:1].upper() + name[1:]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(TIME_ZONE)
