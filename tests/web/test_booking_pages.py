"""The booking pages in Chromium, each citizen's step in German and in English: book at the
demo office (slots around the clock) with the keyboard-friendly picker, download and parse
the .ics, find the mails in the embedded outbox, move, cancel; and book from the start page,
knock at the appointment's time and be admitted, while staff follow it on their
appointments page, book for a caller and cancel that with a reason, and the DPO reads the
consultation's timeline (in the same language). The texts are the pages' own, from their
message catalogs (the mails' and the .ics's from booking's). Every page axe-clean."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from babel.support import NullTranslations
from icalendar import Calendar
from playwright.sync_api import Page, expect

from services.booking.calendar import _TEXT as ICS_TEXT
from services.booking.mail_templates import MONTHS, OPENINGS, SUBJECTS, WEEKDAYS, local_time
from services.common.natsserver import EmbeddedNats
from services.web.i18n import translations
from tests.conftest import SystemProcess
from tests.helpers import eventually
from tests.web.conftest import (
    DESKTOP,
    PHONE,
    ContextFactory,
    demo_id,
    sign_in,
    staff_api,
    watch_errors,
)

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
AXE = Axe()
DEMO_HOURS = [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]
BERLIN = ZoneInfo("Europe/Berlin")
LANGUAGES = ["de", "en"]
BROWSER_LOCALE = {"de": "de-DE", "en": "en-GB"}
HH_MM = r"\d\d:\d\d"


@cache
def catalog(lang: str) -> NullTranslations:
    return translations(lang)


def text(lang: str, msgid: str) -> str:
    """A page's text in `lang` from the compiled catalog the pages use (the msgids are
    English; a msgid the German catalog lacks would come back untranslated)."""
    translated = catalog(lang).gettext(msgid)
    assert lang == "en" or translated != msgid, f"not in the {lang} catalog: {msgid!r}"
    return translated


def words(lang: str, msgid: str, **values: object) -> str:
    """The text, its {placeholders} filled as the pages' t() fills them."""
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))),
                  text(lang, msgid))


def shaped(lang: str, msgid: str, **patterns: str) -> re.Pattern[str]:
    """The text as a pattern, each {placeholder} matching its own pattern."""
    parts = re.split(r"\{(\w+)\}", text(lang, msgid))
    return re.compile("".join(patterns[part] if i % 2 else re.escape(part)
                              for i, part in enumerate(parts)))


def long_day(lang: str, at: dt.datetime) -> str:
    """The pattern of a long date as the pages write it: "Samstag, 5. Dezember 2026",
    "Saturday 5 December 2026" (names from booking's mail tables)."""
    weekday, month = WEEKDAYS[lang][at.weekday()], MONTHS[lang][at.month - 1]
    return rf"{weekday},? {at.day}\.? {month} {at.year}"


@pytest.fixture(scope="module")
def web_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    """As tests/web/conftest.py's, with more time to start on a busy shared machine."""
    base = tmp_path_factory.mktemp("booking-pages")
    nats = EmbeddedNats(base / "nats")
    nats.start()
    processes = os.environ.get("BB_TEST_QUEUE_PROCESSES", "2")
    system = SystemProcess(base / "data", nats.url, args=["up", "--queue-processes", processes])
    system.start(timeout=120)
    yield system
    system.stop()
    nats.stop()


def axe_clean(page: Page, name: str) -> None:
    page.wait_for_timeout(150)  # let the last update settle
    violations = AXE.run(page, options=WCAG).response["violations"]
    assert not violations, (name, [(v["id"], [n["target"] for n in v["nodes"]][:3])
                                   for v in violations])


def mail(system: SystemProcess, appointment_id: str, kind: str) -> EmailMessage:
    """The outbox's mail of that kind (confirmation, rescheduled, cancellation), once written
    (``<appointment>.<kind>.<version>.eml``, whole or not at all)."""
    def find() -> EmailMessage | None:
        found = sorted(Path(system.data_dir, "mail").glob(f"{appointment_id}.{kind}.*.eml"))
        if not found:
            return None
        message = message_from_bytes(found[-1].read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message

    found: EmailMessage = eventually(find, timeout=20)
    return found


def subject(message: EmailMessage) -> str:
    """Unfolded, as a mail program shows it (the parser keeps the folding space)."""
    return " ".join(str(message["Subject"]).split())


def calendar_event(ics: bytes) -> Any:
    return Calendar.from_ical(ics).walk("VEVENT")[0]


def shown_appointment(page: Page) -> dict[str, Any]:
    """The appointment the page shows, asked with the token of its fragment."""
    shown: dict[str, Any] = page.evaluate(
        """() => {
             const token = new URLSearchParams(location.hash.slice(1)).get("token");
             return fetch(`/api/v1/appointments/${location.pathname.split("/").pop()}`, {
               headers: {Authorization: `Bearer ${token}`},
             }).then((r) => r.json());
           }""")
    return shown


def booked_start(page: Page) -> dt.datetime:
    return dt.datetime.fromisoformat(shown_appointment(page)["start"])


def expect_when(page: Page, lang: str, start: dt.datetime) -> None:
    """The appointment page's time: the long date and the time in the page's language."""
    local = start.astimezone(BERLIN)
    expect(page.locator("[data-slot=when]")).to_have_text(shaped(
        lang, "{day}, {time} (German time)", day=long_day(lang, local), time=f"{local:%H:%M}"))


def expect_mail(system: SystemProcess, appointment: dict[str, Any], kind: str,
                lang: str) -> EmailMessage:
    """The mail of `kind` in `lang`: subject and opening from booking's mail texts, the
    appointment's time in the language's long form, the .ics attached under its name."""
    message = mail(system, appointment["appointment_id"], kind)
    start = dt.datetime.fromisoformat(appointment["start"])
    when = local_time(start, "Europe/Berlin", lang)
    department = appointment["department_name"]
    assert message["Content-Language"] == lang
    assert subject(message) == SUBJECTS[lang][kind].format(when=when, department=department)
    body = message.get_body(("plain",))
    assert body is not None
    assert f"{OPENINGS[lang][kind].format(department=department)}\n{when}" in body.get_content()
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == {"de": "termin.ics", "en": "appointment.ics"}[lang]
    event = calendar_event(attachment.get_content().encode())
    assert event.decoded("DTSTART") == start
    assert str(event["SUMMARY"]) == ICS_TEXT[lang][0].format(name=department)
    return message


def axe_clean_on_a_phone_too(page: Page, name: str) -> None:
    axe_clean(page, name)
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    axe_clean(page, f"{name} (phone)")
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


def choose(page: Page, lang: str, day_index: int, time_index: int) -> str:
    """Pick a day and a time by keyboard-reachable radio buttons; answers the slot's start."""
    day = page.locator("#days input[type=radio]").nth(day_index)
    # An expectation, not check()'s bare timeout: a failure shows the page's state (once,
    # in 1 of 16 runs, the move page had no third day after 15 s, its state unrecorded).
    expect(day).to_be_visible()
    day.check()
    announced = shaped(lang, "{n} appointments free on {day}", n=r"\d+", day=".+")
    expect(page.locator("#announcer")).to_have_text(announced)
    time = page.locator("#times input[type=radio]").nth(time_index)
    time.check()
    return str(time.get_attribute("value"))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_book_get_the_ics_and_the_mail_move_and_cancel(
    lang: str, new_context: ContextFactory, web_system: SystemProcess
) -> None:
    demo = demo_id(web_system)
    email = f"erika.{lang}@example.org"
    page = new_context(locale=BROWSER_LOCALE[lang], accept_downloads=True).new_page()
    errors = watch_errors(page)
    page.goto(f"/office/{demo}?lang={lang}")  # the language from here on (its cookie)
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("#book")).to_be_visible()
    axe_clean(page, f"knock {lang}")
    page.get_by_role("link", name=words(lang, "Book an appointment")).click()
    page.wait_for_url(f"**/office/{demo}/book")
    expect(page.locator("#days legend")).to_have_text(words(lang, "1. Choose a day"))
    start = choose(page, lang, 1, 4)  # tomorrow, the fifth free time
    page.fill("#display-name", "Erika Mustermann")
    page.fill("#email", email)
    axe_clean_on_a_phone_too(page, f"booking {lang}")
    # Meanwhile others take every place of that time: the page offers the nearest.
    with web_system.client() as others:
        taken = [others.post(f"/departments/{demo}/appointments", json={"start": start})]
        while taken[-1].status_code == 201 and len(taken) <= 100:
            taken.append(others.post(f"/departments/{demo}/appointments", json={"start": start}))
    assert len(taken) > 1 and taken[-1].status_code == 409, [t.text for t in taken]
    page.get_by_role("button", name=words(lang, "Book this appointment")).click()
    expect(page.locator("#booking-error")).to_contain_text(words(
        lang, "This time has just been taken. These times near it are still free:"))
    axe_clean(page, f"booking {lang}, slot taken")
    page.locator("#booking-error button").first.click()

    page.wait_for_url("**/appointments/*")
    assert "#token=" in page.url
    status = page.locator("[data-slot=status]")
    expect(status).to_have_text(words(lang, "Booked. We look forward to seeing you."))
    booked = shown_appointment(page)
    assert booked["language"] == lang  # the form's language follows the page's
    berlin = dt.datetime.fromisoformat(booked["start"])
    assert berlin != dt.datetime.fromisoformat(start)
    assert abs(berlin - dt.datetime.fromisoformat(start)) <= dt.timedelta(hours=1)
    expect_when(page, lang, berlin)
    expect(page.locator("#personal-link")).to_have_value(page.url)
    axe_clean_on_a_phone_too(page, f"appointment {lang}")

    with page.expect_download() as download:
        page.get_by_role("button", name=words(lang, "Calendar (.ics)")).click()
    assert download.value.suggested_filename == words(lang, "appointment.ics")
    event = calendar_event(Path(download.value.path()).read_bytes())
    assert event.decoded("DTSTART") == berlin
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert str(event["SUMMARY"]) == ICS_TEXT[lang][0].format(name=booked["department_name"])
    expect_mail(web_system, booked, "confirmation", lang)

    # Move: back to the picker, a time on the day after, then the same page again.
    page.get_by_role("link", name=words(lang, "Move appointment")).click()
    page.wait_for_url("**/book?move=*")
    expect(page.locator("h1")).to_have_text(words(lang, "Move your appointment"))
    axe_clean(page, f"moving {lang}")
    moved_to = choose(page, lang, 2, 0)
    page.get_by_role("button", name=words(lang, "Move to this time")).click()
    page.wait_for_url("**/appointments/*")
    expect(status).to_have_text(words(lang, "Booked. We look forward to seeing you."))
    moved = shown_appointment(page)
    assert dt.datetime.fromisoformat(moved["start"]) == dt.datetime.fromisoformat(moved_to)
    expect_when(page, lang, dt.datetime.fromisoformat(moved_to))
    expect_mail(web_system, moved, "rescheduled", lang)

    # Cancel, with a confirmation step.
    page.get_by_role("button", name=words(lang, "Cancel appointment")).click()
    expect(page.get_by_role("heading", name=words(lang, "Really cancel this appointment?")))\
        .to_be_focused()
    axe_clean(page, f"cancelling {lang}")
    page.get_by_role("button", name=words(lang, "Yes, cancel it")).click()
    expect(status).to_have_text(words(lang, "This appointment has been cancelled."))
    expect(page.get_by_role("button", name=words(lang, "Cancel appointment"))).to_be_hidden()
    axe_clean(page, f"cancelled {lang}")
    expect_mail(web_system, moved, "cancellation", lang)

    # A link with a wrong token says what to do instead of showing an empty page.
    page.goto(page.url.split("#")[0] + "#token=not-the-token")
    page.reload()
    expect(page.get_by_role("heading", name=words(lang, "This link does not work")))\
        .to_be_focused()
    expect(page.locator("#link-problem")).to_contain_text(words(
        lang, "This link is not valid for this appointment. Please open the full link from "
              "your confirmation, or book again."))
    axe_clean(page, f"link problem {lang}")
    assert not errors, errors


@pytest.mark.parametrize("lang", LANGUAGES)
def test_book_from_the_start_page_knock_at_the_time_and_be_admitted(
    lang: str, new_context: ContextFactory, web_system: SystemProcess
) -> None:
    """The staff and the DPO use the same language. One place per time: the other
    language's run (same system) leaves its appointment at an earlier time, so each run's
    appointment is the only active one at its time."""
    demo = demo_id(web_system)
    anna = staff_api(web_system, "anna")
    name = {"de": "Max Mustermann", "en": "Alex Example"}[lang]
    # Check-in opens 35 minutes before: the next free slot (at most 30 minutes away, one
    # taken by the other run) is open.
    terms = {"hours": DEMO_HOURS, "capacity": 1, "notice_minutes": 0, "days_ahead": 14,
             "state": None, "check_in_before_minutes": 35}
    answer = anna.http.put(f"/offices/{demo}/schedule", json=terms,
                           headers={"X-CSRF-Token": anna.csrf})
    assert answer.status_code == 200, answer.text

    page = new_context(locale=BROWSER_LOCALE[lang]).new_page()
    errors = watch_errors(page)
    page.goto(f"/?lang={lang}")
    book = page.locator(f"a[href='/office/{demo}/book']")
    expect(book).to_have_attribute("aria-label", shaped(
        lang, "Book an appointment: {name}", name=".+"))
    axe_clean_on_a_phone_too(page, f"start {lang}")
    book.click()
    expect(page.locator("#days legend")).to_have_text(words(lang, "1. Choose a day"))
    choose(page, lang, 0, 0)
    page.fill("#display-name", name)
    page.get_by_role("button", name=words(lang, "Book this appointment")).click()
    page.wait_for_url("**/appointments/*")
    expect(page.locator("[data-slot=status]")).to_have_text(
        words(lang, "Booked. We look forward to seeing you."))
    start = booked_start(page).astimezone(BERLIN)
    expect_when(page, lang, start)
    expect(page.locator("[data-slot=check-in-note]")).to_have_text(words(
        lang, "You can knock now: you will be let in before the people without an "
              "appointment."))
    knock = page.get_by_role("button", name=words(lang, "Knock now"))
    expect(knock).to_be_visible()
    axe_clean(page, f"appointment {lang}, check-in open")

    # Staff see it on their appointments page, linked from the dashboard.
    staff = new_context(locale=BROWSER_LOCALE[lang]).new_page()
    staff.goto(f"/staff/login?lang={lang}")  # the language from here on (its cookie)
    sign_in(staff)
    staff.locator(f"a[href='/staff/appointments/{demo}']").click()
    times = f"{start:%H:%M}–{start + dt.timedelta(minutes=15):%H:%M}"
    entry = staff.locator("#appointment-days li:not([data-status=cancelled])", has_text=times)
    expect(entry).to_contain_text(words(lang, "Booked"))

    knock.click()
    page.wait_for_url("**/visit")
    expect(page.get_by_role("heading", name=words(lang, "Waiting room"))).to_be_visible()
    axe_clean(page, f"waiting room {lang}")
    expect(entry).to_contain_text(words(lang, "Checked in"))  # live, from booking's stream
    # The dashboard's line says it is an appointment, and for which time.
    board = staff.context.new_page()
    board.goto("/staff")
    waiting = board.locator("li[data-ticket]", has_text=name)
    expect(waiting).to_contain_text(words(lang, "(appointment at {time})", time=f"{start:%H:%M}"))
    board.close()

    # A citizen calls: staff book the next free time for them, then cancel it with a reason.
    staff.get_by_text(words(lang, "Book for a citizen (e.g. on the phone)")).click()
    expect(staff.locator("#book-time option").first).to_have_attribute("value", re.compile("T"))
    staff.fill("#book-name", "Chris Caller")
    staff.get_by_role("button", name=words(lang, "Book"), exact=True).click()
    expect(staff.locator("#book-link")).to_have_value(re.compile(r"/appointments/.+#token=.+"))
    by_phone = staff.locator("#appointment-days li[data-status=booked]",
                             has_text=words(lang, "booked by staff"))
    expect(by_phone).to_have_count(1)
    axe_clean(staff, f"staff appointments {lang}")
    phoned_times = by_phone.locator("strong").inner_text()
    by_phone.locator("summary").click()
    by_phone.get_by_label(words(lang, "Reason")).select_option("duplicate")
    by_phone.get_by_role("button", name=words(lang, "Cancel this appointment")).click()
    cancelled = staff.locator("#appointment-days li[data-status=cancelled]", has_text=phoned_times)
    expect(cancelled).to_contain_text(words(lang, "cancelled: {reason}",
                                            reason=words(lang, "Booked twice")))
    staff.get_by_label(words(lang, "Its week (Monday to Sunday)")).check()
    expect(staff.locator("#appointment-days section")).to_have_count(7)

    admitted = anna.post(f"/departments/{demo}/queue/admit-next")
    assert admitted.status_code == 200, admitted.text
    page.wait_for_url("**/visit/consultation/*", timeout=20_000)
    expect(page.get_by_role("heading", name=words(lang, "Your conversation with the office")))\
        .to_be_visible()
    axe_clean(page, f"consultation {lang}")
    assert not errors, errors

    # The DPO's timeline of that consultation: the booking and the check-in, in words.
    consultation = page.url.rsplit("/", 1)[-1]
    dpo = new_context(locale=BROWSER_LOCALE[lang]).new_page()
    dpo.goto(f"/staff/login?lang={lang}")
    sign_in(dpo, "dora")
    dpo.fill("#search-id", consultation)
    steps = dpo.locator("#timeline-steps")
    slot = r"\d\d[./]\d\d[./]\d{4}, " + HH_MM
    booked_step = shaped(lang, "Appointment booked for {slot} ({by}, appointment {appointment})",
                         slot=slot, by=".+", appointment=".+")
    checked_in_step = shaped(lang, "Checked in at {at} for the appointment at {slot}",
                             at=r"\d\d:\d\d:\d\d", slot=slot)

    def shown() -> bool:  # the audit log has the consultation's events a moment later
        dpo.get_by_role("button", name=words(lang, "Search"), exact=True).click()
        expect(dpo.locator("#search-state")).not_to_be_empty()
        text = steps.inner_text() if steps.is_visible() else ""
        return bool(booked_step.search(text) and checked_in_step.search(text))

    eventually(shown, timeout=30, interval=1)
    day = f"{start:%d.%m.%Y}" if lang == "de" else f"{start:%d/%m/%Y}"
    expect(steps).to_contain_text(shaped(lang, "Checked in at {at} for the appointment at {slot}",
                                         at=r"\d\d:\d\d:\d\d",
                                         slot=re.escape(f"{day}, {start:%H:%M}")))
    axe_clean(dpo, f"dpo timeline {lang}")


def kataster_id(system: SystemProcess) -> str:
    with system.client() as client:
        return str(next(d["id"] for d in client.get("/departments").json()
                        if d["slug"] == "kataster"))


def test_admins_set_the_appointment_schedule_on_the_office_page(
    new_context: ContextFactory, web_system: SystemProcess
) -> None:
    """German first: by keyboard, a problem named at its field (the page's own check and
    the booking API's refusal alike), then saved; then the same page in English."""
    kataster = kataster_id(web_system)
    page = new_context().new_page()
    errors = watch_errors(page)
    sign_in(page)
    page.goto(f"/staff/office/{kataster}")
    form = page.locator("#schedule-form")
    expect(form.get_by_role("heading", name="Termine", exact=True)).to_be_visible()
    expect(page.get_by_label("Dauer eines Termins (Minuten)")).to_have_value("15")
    periods = form.locator("#schedule-rows tr")
    existing = periods.count()
    assert existing > 0  # the cadastre office's seeded hours
    axe_clean(page, "office schedule de")

    # A period added by keyboard, on Saturday, ending before it begins.
    page.get_by_role("button", name="Terminzeitraum hinzufügen").focus()
    page.keyboard.press("Enter")
    n = existing + 1
    day = page.get_by_label(f"Tag des Terminzeitraums {n}")
    expect(day).to_be_focused()
    day.select_option("5")
    page.get_by_label(f"Von, Terminzeitraum {n}").fill("09:00")
    page.get_by_label(f"Bis, Terminzeitraum {n}").fill("08:30")
    page.get_by_role("button", name="Terminplan speichern").click()
    alert = page.locator("#schedule-error")
    expect(alert).to_have_text(f"Der Terminplan wurde nicht gespeichert: Terminzeitraum {n} "
                               "endet, bevor er beginnt.")
    expect(page.get_by_label(f"Bis, Terminzeitraum {n}")).to_be_focused()
    expect(page.get_by_label(f"Bis, Terminzeitraum {n}")).to_have_attribute(
        "aria-invalid", "true")
    axe_clean(page, "office schedule de, a problem")
    page.get_by_label(f"Bis, Terminzeitraum {n}").fill("11:00")

    # What only the booking API checks arrives in the page's words, at its field.
    def tampered(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.method != "PUT":
            route.continue_()
            return
        body = {**(route.request.post_data_json or {}), "state": "XX"}
        route.continue_(post_data=json.dumps(body))

    page.route(f"**/api/v1/offices/{kataster}/schedule", tampered)
    page.get_by_role("button", name="Terminplan speichern").click()
    expect(alert).to_have_text("Der Terminplan wurde nicht gespeichert: Bitte wählen Sie ein "
                               "Bundesland aus der Liste.")
    expect(page.get_by_label("Feiertage von")).to_be_focused()
    page.unroute(f"**/api/v1/offices/{kataster}/schedule")

    page.get_by_label("Plätze je Termin").fill("3")
    page.get_by_label("Wie weit im Voraus (Tage)").fill("90")
    closed = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    page.get_by_label("Tag ohne Termine", exact=True).fill(closed)
    page.get_by_role("button", name="Tag ohne Termine hinzufügen").click()
    expect(page.get_by_role("button", name=f"Tag ohne Termine {closed} entfernen")).to_be_visible()
    page.get_by_role("button", name="Terminplan speichern").click()
    expect(page.locator("#office-result")).to_have_text("Terminplan gespeichert.")
    expect(alert).to_be_hidden()

    saved = staff_api(web_system).get(f"/offices/{kataster}/schedule").json()
    assert (saved["capacity"], saved["days_ahead"], saved["state"]) == (3, 90, "NW")
    assert {"weekday": 5, "opens": "09:00", "closes": "11:00"} in saved["hours"]
    assert closed in saved["closed_days"]

    page.goto(f"/staff/office/{kataster}?lang=en")
    expect(page.get_by_role("heading", name="Appointments", exact=True)).to_be_visible()
    expect(page.get_by_label("Places per slot")).to_have_value("3")
    expect(page.get_by_label("Public holidays of")).to_have_value("NW")
    expect(page.get_by_role("button", name=f"Remove day without appointments {closed}"))\
        .to_be_visible()
    axe_clean(page, "office schedule en")
    assert not errors, errors


def test_staff_see_the_no_shows_of_each_day(
    new_context: ContextFactory, web_system: SystemProcess
) -> None:
    """A day with a missed appointment, as the API answers it: marked, and counted."""
    demo = demo_id(web_system)
    page = new_context(locale="en-GB").new_page()
    page.goto("/staff/login?lang=en")
    sign_in(page)
    today = dt.datetime.now(dt.UTC).astimezone(ZoneInfo("Europe/Berlin")).date()
    start = dt.datetime.combine(today, dt.time(9, 0), ZoneInfo("Europe/Berlin"))
    missed = {"appointment_id": "7d0c8a8e-0000-4000-8000-000000000001",
              "start": start.isoformat(), "end": (start + dt.timedelta(minutes=15)).isoformat(),
              "status": "missed", "booked_by_staff": None, "checked_in_at": None,
              "cancelled_by": None, "cancel_reason": None}
    view = {"department_id": demo, "first_day": today.isoformat(), "days": 1,
            "appointments": [missed], "no_shows": {today.isoformat(): 1}}
    page.route(f"**/api/v1/offices/{demo}/appointments?*",
               lambda route: route.fulfill(json=view))
    page.goto(f"/staff/appointments/{demo}")
    day = page.locator("#appointment-days section")
    expect(day).to_contain_text("No-shows: 1")
    expect(day.locator("li[data-status=missed]")).to_contain_text("09:00–09:15 Missed")
    axe_clean(page, "staff appointments en, a no-show")
