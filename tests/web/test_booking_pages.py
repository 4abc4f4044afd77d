"""The booking pages in Chromium: book at the demo office (slots around the clock) with the
keyboard-friendly picker, download and parse the .ics, find the confirmation mail in the
embedded outbox, move, cancel; and in English book from the start page, knock at the
appointment's time and be admitted, while staff follow it on their appointments page, book
for a caller and cancel that with a reason. Every page axe-clean."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from icalendar import Calendar
from playwright.sync_api import Page, expect

from services.common.natsserver import EmbeddedNats
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


def mail_to(system: SystemProcess, address: str) -> Message:
    def find() -> Message | None:
        for path in Path(system.data_dir, "mail").rglob("*.eml"):
            mail = message_from_bytes(path.read_bytes())
            if address in str(mail["To"]):
                return mail
        return None

    return eventually(find, timeout=20)


def booked_start(page: Page) -> dt.datetime:
    """The start of the appointment the page shows, asked with the token of its fragment."""
    shown = page.evaluate(
        """() => {
             const token = new URLSearchParams(location.hash.slice(1)).get("token");
             return fetch(`/api/v1/appointments/${location.pathname.split("/").pop()}`, {
               headers: {Authorization: `Bearer ${token}`},
             }).then((r) => r.json());
           }""")
    return dt.datetime.fromisoformat(shown["start"])


def axe_clean_on_a_phone_too(page: Page, name: str) -> None:
    axe_clean(page, name)
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    axe_clean(page, f"{name} (phone)")
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


def choose(page: Page, day_index: int, time_index: int) -> str:
    """Pick a day and a time by keyboard-reachable radio buttons; answers the slot's start."""
    page.locator("#days input[type=radio]").nth(day_index).check()
    announced = re.compile(r"^\d+ (Termine frei am|appointments free on) ")
    expect(page.locator("#announcer")).to_have_text(announced)
    time = page.locator("#times input[type=radio]").nth(time_index)
    time.check()
    return str(time.get_attribute("value"))


def test_book_in_german_get_the_ics_and_the_mail_move_and_cancel(
    new_context: ContextFactory, web_system: SystemProcess
) -> None:
    demo = demo_id(web_system)
    page = new_context(accept_downloads=True).new_page()
    errors = watch_errors(page)
    page.goto(f"/office/{demo}")
    expect(page.locator("#book")).to_be_visible()
    axe_clean(page, "knock de")
    page.get_by_role("link", name="Termin buchen").click()
    page.wait_for_url(f"**/office/{demo}/book")
    expect(page.locator("#days legend")).to_have_text("1. Tag wählen")
    start = choose(page, 1, 4)  # tomorrow, the fifth free time
    page.fill("#display-name", "Erika Mustermann")
    page.fill("#email", "erika@example.org")
    axe_clean_on_a_phone_too(page, "booking de")
    # Meanwhile two others take both places of that time: the page offers the nearest.
    with web_system.client() as others:
        for _ in range(2):
            taken = others.post(f"/departments/{demo}/appointments", json={"start": start})
            assert taken.status_code == 201, taken.text
    page.get_by_role("button", name="Diesen Termin buchen").click()
    expect(page.locator("#booking-error")).to_contain_text("Diese Zeit wurde gerade vergeben.")
    axe_clean(page, "booking de, slot taken")
    page.locator("#booking-error button").first.click()

    page.wait_for_url("**/appointments/*")
    assert "#token=" in page.url
    expect(page.locator("[data-slot=status]")).to_have_text("Gebucht. Wir freuen uns auf Sie.")
    berlin = booked_start(page)
    assert berlin != dt.datetime.fromisoformat(start)
    assert abs(berlin - dt.datetime.fromisoformat(start)) <= dt.timedelta(hours=1)
    expect(page.locator("[data-slot=when]")).to_contain_text(" Uhr")
    expect(page.locator("#personal-link")).to_have_value(page.url)
    axe_clean_on_a_phone_too(page, "appointment de")

    with page.expect_download() as download:
        page.get_by_role("button", name="Kalender (.ics)").click()
    event = Calendar.from_ical(Path(download.value.path()).read_bytes()).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == berlin
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"

    mail = mail_to(web_system, "erika@example.org")
    assert any(part.get_filename() == "termin.ics" or part.get_content_type() == "text/calendar"
               for part in mail.walk())

    # Move: back to the picker, a time on the day after, then the same page again.
    page.get_by_role("link", name="Termin verschieben").click()
    page.wait_for_url("**/book?move=*")
    expect(page.locator("h1")).to_have_text("Termin verschieben")
    moved_to = choose(page, 2, 0)
    page.get_by_role("button", name="Auf diese Zeit verschieben").click()
    page.wait_for_url("**/appointments/*")
    expect(page.locator("[data-slot=status]")).to_have_text("Gebucht. Wir freuen uns auf Sie.")
    assert booked_start(page) == dt.datetime.fromisoformat(moved_to)

    # Cancel, with a confirmation step.
    page.get_by_role("button", name="Termin absagen").click()
    expect(page.get_by_role("heading", name="Diesen Termin wirklich absagen?")).to_be_focused()
    page.get_by_role("button", name="Ja, absagen").click()
    expect(page.locator("[data-slot=status]")).to_have_text("Dieser Termin wurde abgesagt.")
    expect(page.get_by_role("button", name="Termin absagen")).to_be_hidden()

    # A link with a wrong token says what to do instead of showing an empty page.
    page.goto(page.url.split("#")[0] + "#token=not-the-token")
    page.reload()
    expect(page.get_by_role("heading", name="Dieser Link funktioniert nicht")).to_be_focused()
    expect(page.locator("#link-problem")).to_contain_text("vollständigen Link")
    assert not errors, errors


def test_book_in_english_knock_at_the_time_and_be_admitted(
    new_context: ContextFactory, web_system: SystemProcess
) -> None:
    demo = demo_id(web_system)
    anna = staff_api(web_system, "anna")
    # Check-in opens 20 minutes before: the next free slot (at most 15 minutes away) is open.
    terms = {"hours": DEMO_HOURS, "capacity": 2, "notice_minutes": 0, "days_ahead": 14,
             "state": None, "check_in_before_minutes": 20}
    answer = anna.http.put(f"/offices/{demo}/schedule", json=terms,
                           headers={"X-CSRF-Token": anna.csrf})
    assert answer.status_code == 200, answer.text

    page = new_context(locale="en-GB").new_page()
    errors = watch_errors(page)
    page.goto("/?lang=en")
    book = page.locator(f"a[href='/office/{demo}/book']")
    expect(book).to_have_attribute("aria-label", re.compile("^Book an appointment: "))
    axe_clean_on_a_phone_too(page, "start en")
    book.click()
    expect(page.locator("#days legend")).to_have_text("1. Choose a day")
    choose(page, 0, 0)
    page.fill("#display-name", "Alex Example")
    page.get_by_role("button", name="Book this appointment").click()
    page.wait_for_url("**/appointments/*")
    expect(page.locator("[data-slot=status]")).to_have_text(
        "Booked. We look forward to seeing you.")
    knock = page.get_by_role("button", name="Knock now")
    expect(knock).to_be_visible()
    axe_clean(page, "appointment en")

    # Staff see it on their appointments page, linked from the dashboard.
    staff = new_context(locale="en-GB").new_page()
    staff.goto("/staff/login?lang=en")  # English from here on (the page sets its cookie)
    sign_in(staff)
    staff.locator(f"a[href='/staff/appointments/{demo}']").click()
    entry = staff.locator("#appointment-days li[data-status]").first
    expect(entry).to_contain_text("Booked")

    knock.click()
    page.wait_for_url("**/visit")
    expect(entry).to_contain_text("Checked in")  # live, from booking's stream
    # The dashboard's line says it is an appointment, and for which time.
    board = staff.context.new_page()
    board.goto("/staff")
    waiting = board.locator("li[data-ticket]", has_text="Alex Example")
    expect(waiting).to_contain_text(re.compile(r"\(appointment at \d\d:\d\d\)"))
    board.close()

    # A citizen calls: staff book the next free time for them, then cancel it with a reason.
    staff.get_by_text("Book for a citizen (e.g. on the phone)").click()
    expect(staff.locator("#book-time option").first).to_have_attribute("value", re.compile("T"))
    staff.fill("#book-name", "Chris Caller")
    staff.get_by_role("button", name="Book", exact=True).click()
    expect(staff.locator("#book-link")).to_have_value(re.compile(r"/appointments/.+#token=.+"))
    by_phone = staff.locator("#appointment-days li[data-status=booked]", has_text="booked by staff")
    expect(by_phone).to_have_count(1)
    axe_clean(staff, "staff appointments en")
    by_phone.locator("summary").click()
    by_phone.get_by_label("Reason").select_option("duplicate")
    by_phone.get_by_role("button", name="Cancel this appointment").click()
    cancelled = staff.locator("#appointment-days li[data-status=cancelled]")
    expect(cancelled).to_contain_text("cancelled: Booked twice")
    staff.get_by_label("Its week (Monday to Sunday)").check()
    expect(staff.locator("#appointment-days section")).to_have_count(7)

    admitted = anna.post(f"/departments/{demo}/queue/admit-next")
    assert admitted.status_code == 200, admitted.text
    page.wait_for_url("**/visit/consultation/*", timeout=20_000)
    assert not errors, errors

    # The DPO's timeline of that consultation: the booking and the check-in, in words.
    consultation = page.url.rsplit("/", 1)[-1]
    dpo = new_context(locale="en-GB").new_page()
    dpo.goto("/staff/login?lang=en")
    sign_in(dpo, "dora")
    dpo.fill("#search-id", consultation)
    steps = dpo.locator("#timeline-steps")

    def shown() -> bool:  # the audit log has the consultation's events a moment later
        dpo.get_by_role("button", name="Search", exact=True).click()
        expect(dpo.locator("#search-state")).not_to_be_empty()
        text = steps.inner_text() if steps.is_visible() else ""
        return "Appointment booked for" in text and "Checked in at" in text

    eventually(shown, timeout=30, interval=1)
    expect(steps).to_contain_text(re.compile(r"Checked in at \d\d:\d\d:\d\d for the "
                                             r"appointment at \d\d/\d\d/\d{4}, \d\d:\d\d"))
    axe_clean(dpo, "dpo timeline en")


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
