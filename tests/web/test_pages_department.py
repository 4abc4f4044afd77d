"""The department's page for its first view, worded on the server (services/web/department.py)
as its script words it: the week's hours, the next opening, the expected wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.web.department import department_page_context, wait_range, weekly_hours, when
from services.web.i18n import translations

BERLIN = ZoneInfo("Europe/Berlin")


def _wait(**fields: object) -> dict[str, object]:
    return {
        "seconds": 720,
        "low_seconds": 360,
        "high_seconds": 1080,
        "consultations_sampled": 0,
        "staff_on_duty": 1,
        "basis": "default_duration",
        "staff_free": False,
        **fields,
    }


def test_the_week_from_monday_with_closed_days_named() -> None:
    periods = [
        {"weekday": 0, "opens": "14:00", "closes": "16:00"},
        {"weekday": 0, "opens": "08:00", "closes": "12:00"},
        {"weekday": 3, "opens": "08:30", "closes": "18:00"},
    ]
    german = weekly_hours(periods, "de")
    assert german[0] == ("Montag", "08:00–12:00, 14:00–16:00")
    assert german[3] == ("Donnerstag", "08:30–18:00")
    assert german[6] == ("Sonntag", "geschlossen")
    assert weekly_hours(periods, "en")[1] == ("Tuesday", "closed")


def test_the_next_opening_in_words() -> None:
    now = datetime.now(BERLIN)
    tomorrow = (now + timedelta(days=1)).replace(hour=8, minute=30, second=0, microsecond=0)
    assert when(tomorrow.astimezone(UTC).isoformat(), "de", BERLIN) == "morgen um 08:30 Uhr"
    later = (now + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    assert when(later.isoformat(), "en", BERLIN).endswith(" at 09:00")
    assert when(None, "de", BERLIN) == "Derzeit sind keine Öffnungszeiten geplant."


def test_the_wait_as_a_range_with_its_basis() -> None:
    de = translations("de").gettext
    en = translations("en").gettext
    assert wait_range(_wait(), de) == "geschätzt 6–18 Minuten"
    recent = _wait(basis="recent_consultations", low_seconds=180, high_seconds=540)
    assert wait_range(recent, de) == "erfahrungsgemäß 3–9 Minuten"
    assert wait_range(_wait(), en) == "6–18 minutes, estimated"
    assert wait_range(_wait(staff_free=True, low_seconds=0, high_seconds=0), de) == "sofort"
    assert wait_range(_wait(low_seconds=0, high_seconds=30), en) == "less than a minute"


def test_a_free_staff_member_means_no_wait() -> None:
    department = {
        "name": "Demo",
        "open": True,
        "waiting": 0,
        "languages": ["de", "tr"],
        "topics": [{"id": "antrag", "de": "Antrag", "en": "Application"}],
        "weekly": [],
        "expected_wait": _wait(staff_free=True, seconds=0, low_seconds=0, high_seconds=0),
    }
    context = department_page_context(department, "de")
    assert context["expected_wait_text"] == (
        "Eine Mitarbeiterin oder ein Mitarbeiter ist frei: Sie kommen sofort dran."
    )
    assert context["language_options"] == [("de", "Deutsch"), ("tr", "Türkisch")]
    assert context["topic_options"] == [("antrag", "Antrag")]
    waiting = department_page_context({**department, "waiting": 2, "expected_wait": _wait()}, "en")
    assert waiting["expected_wait_text"] == (
        "If you knock now: 2 waiting before you, expected wait 6–18 minutes, estimated."
    )
