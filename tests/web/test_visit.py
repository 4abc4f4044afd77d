"""The citizen's whole visit in the browser, with the staff member in another context:
knock, wait, admission, video both ways (WebRTC statistics), screen share, interpreter,
end of the conversation."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from services.queue.view import DOOR_MAX_AGE
from tests.conftest import SystemProcess
from tests.helpers import department_id, eventually, knock
from tests.web.conftest import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    ContextFactory,
    demo_id,
    expect_video_moving,
    sign_in,
    staff_api,
    watch_errors,
)


def test_citizen_knocks_waits_moves_up_and_is_admitted(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    demo = demo_id(web_system)
    with web_system.client() as client:
        ahead = knock(client, demo, display_name="Erster Bürger")

    citizen = new_context().new_page()
    errors = watch_errors(citizen)
    citizen.goto("/")
    expect(citizen.locator("#departments .card").first).to_be_visible()
    citizen.click(f"a[href='/office/{demo}']")
    citizen.wait_for_url(f"**/office/{demo}")
    citizen.fill("#display-name", "Frau Test")
    citizen.select_option("#language", "en")
    citizen.select_option("#topic", "antrag")
    citizen.click("#knock-form button[type=submit]")
    citizen.wait_for_url("**/visit")
    assert "token" not in citizen.url
    expect(citizen.locator("[data-slot=place]")).to_have_text("2")
    expect(citizen.locator("#place-sentence")).to_contain_text("2")
    stored = citizen.evaluate("sessionStorage.getItem('bb.ticket')")
    assert stored and "token" in stored

    # The staff member sees both in the live queue, with language and topic.
    staff = new_context().new_page()
    staff_errors = watch_errors(staff)
    sign_in(staff)
    office = staff.locator(".office", has=staff.locator(f"a[href='/staff/office/{demo}']"))
    expect(office.locator("li[data-ticket]")).to_have_count(2)
    mine = office.locator("li[data-ticket]", has_text="Frau Test")
    expect(mine).to_contain_text("Frau Test")
    expect(mine.locator("[data-slot=topic]")).not_to_be_empty()

    # The one ahead is admitted: the citizen's place moves to 1, live.
    staff_api(web_system).post(f"/tickets/{ahead['ticket_id']}/admit")
    expect(citizen.locator("[data-slot=place]")).to_have_text("1")
    expect(office.locator("li[data-ticket]")).to_have_count(1)

    # A message from the office arrives while waiting.
    mine.locator("[data-slot=message] summary").click()
    mine.locator("[data-slot=message-text]").fill("Noch etwa 2 Minuten")
    mine.locator("[data-form=message-one] button").click()
    expect(citizen.locator("#messages li")).to_contain_text("Noch etwa 2 Minuten")

    # Staff admits the next person: the door opens, the title changes, the call page opens.
    office.locator("[data-action=admit-next]").click()
    staff.wait_for_url("**/staff/consultation/*")
    citizen.wait_for_url("**/visit/consultation/*", timeout=20_000)
    expect(citizen.locator("[data-slot=media-status]")).not_to_have_text("")
    expect(citizen.locator("#consultation-error")).to_be_hidden()
    consultation_id = citizen.url.rsplit("/", 1)[1]
    assert consultation_id in staff.url
    pass_stored = citizen.evaluate(f"sessionStorage.getItem('bb.pass.{consultation_id}')")
    assert pass_stored and "participant_token" in pass_stored
    expect(staff.locator("#in-call")).to_be_visible()
    expect(staff.locator("#participants li").first).to_be_visible()

    # Both see each other's video moving, in tiles labelled by role and source.
    expect_video_moving(citizen, "staff")
    expect_video_moving(staff, "citizen")
    expect(citizen.locator(".tile[data-role=staff][data-source=camera] .tile-label")).to_have_text(
        "Sachbearbeitung – Kamera"
    )
    expect(staff.locator(".tile[data-role=citizen][data-source=camera]")).to_be_visible()
    expect(citizen.locator("[data-slot=quality]")).to_be_visible(timeout=10_000)
    expect(citizen.locator("[data-slot=quality-level]")).not_to_be_empty()

    # Mute and camera off are toggle buttons that say their state.
    citizen.click("[data-action=mute]")
    expect(citizen.locator("[data-action=mute]")).to_have_attribute("aria-pressed", "true")
    citizen.click("[data-action=mute]")

    # The staff member shares the screen: the citizen gets a screen tile with frames decoded.
    staff.click("[data-action=screen]")
    expect(staff.locator("[data-action=screen]")).to_have_attribute("aria-pressed", "true")
    screen_tile = citizen.locator(".tile[data-role=staff][data-source=screen]")
    expect(screen_tile).to_be_visible(timeout=15_000)
    expect(screen_tile.locator(".tile-label")).to_have_text("Sachbearbeitung – Bildschirm")
    expect_video_moving(citizen, "staff", "screen")
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    citizen.screenshot(path=str(shots / "consultation-screen-share-de-desktop.png"), full_page=True)
    citizen.set_viewport_size(PHONE)
    citizen.screenshot(path=str(shots / "consultation-screen-share-de-phone.png"), full_page=True)
    citizen.set_viewport_size(DESKTOP)
    staff.click("[data-action=screen]")
    expect(screen_tile).to_have_count(0, timeout=15_000)

    # An interpreter's link: created by staff, opened in a third context, token leaves the URL.
    staff.click("#invite")
    link = staff.locator("#invitations input").first.input_value()
    assert f"/invite/{consultation_id}#token=" in link
    interpreter = new_context().new_page()
    interpreter.goto(link.replace(web_system.base, ""))
    expect(interpreter.locator("#invite-form")).to_be_visible()
    assert "#token" not in interpreter.url
    interpreter.fill("#guest-name", "Dolmetscherin")
    interpreter.click("#invite-form button[type=submit]")
    expect(interpreter.locator("#invite-joined")).to_be_visible()
    expect_video_moving(interpreter, "staff")
    expect_video_moving(interpreter, "citizen")
    expect(interpreter.locator(".tile[data-source=camera]")).to_have_count(2)
    expect_video_moving(citizen, "interpreter")
    # The interpreter by the name and language given (issue 15.3).
    expect(citizen.locator(".tile[data-role=interpreter] .tile-label")).to_have_text(
        "Dolmetscherin (Dolmetschung, Deutsch) – Kamera"
    )

    # The staff member withdraws the link: opening it again says what to do (410).
    staff.locator("#invitations button.danger").first.click()
    expect(staff.locator("#invitations li").first).not_to_contain_text("#token")
    again = new_context().new_page()
    again.goto(link.replace(web_system.base, ""))
    again.fill("#guest-name", "Dolmetscherin")
    again.click("#invite-form button[type=submit]")
    expect(again.locator("#invite-gone")).to_be_visible()
    # The interpreter who was in the call is dropped at once and told the same.
    expect(interpreter.locator("#invite-gone")).to_be_visible(timeout=15_000)
    expect(citizen.locator(".tile[data-role=interpreter]")).to_have_count(0, timeout=15_000)

    # A second interpreter, still in the call when it ends.
    staff.click("#invite")
    staff.wait_for_function(
        "old => [...document.querySelectorAll('#invitations input')]"
        ".some(e => e.value.includes('#token=') && e.value !== old)",
        arg=link,
    )
    listed = staff.locator("#invitations input").evaluate_all("els => els.map(e => e.value)")
    links = [value for value in listed if "#token=" in value and value != link]
    assert links, "the new invitation's link is listed"
    interpreter = new_context().new_page()
    interpreter.goto(links[0].replace(web_system.base, ""))
    interpreter.fill("#guest-name", "Dolmetscher")
    interpreter.click("#invite-form button[type=submit]")
    expect(interpreter.locator("#invite-joined")).to_be_visible()
    expect_video_moving(interpreter, "staff")

    # End the consultation for everyone: every page says so.
    staff.click("#end")
    staff.click("#end-dialog-confirm")  # the page's own dialog, not the browser's confirm()
    expect(staff.locator("#ended")).to_be_visible()
    expect(citizen.locator("#ended")).to_be_visible(timeout=15_000)
    expect(citizen.locator("#in-call")).to_be_hidden()
    assert citizen.evaluate("document.activeElement.id") == "ended-heading"
    expect(interpreter.locator("#invite-ended")).to_be_visible(timeout=15_000)
    assert errors == [] and staff_errors == []


def test_anonymous_department_asks_no_name(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    carla = staff_api(web_system, "carla")
    with web_system.client() as client:
        hiv = department_id(client, "hiv-beratung")
    around_the_clock = [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]
    response = carla.http.put(
        f"/offices/{hiv}/hours",
        json={"weekly": around_the_clock, "closed_days": []},
        headers={"X-CSRF-Token": carla.csrf},
    )
    assert response.status_code == 200, response.text
    with web_system.client() as client:
        eventually(lambda: client.get(f"/departments/{hiv}").json()["open"])

    citizen = new_context().new_page()
    citizen.goto(f"/office/{hiv}")
    expect(citizen.locator("#knock")).to_be_visible()
    expect(citizen.locator("#display-name")).to_have_count(0)
    expect(citizen.locator("[data-slot=anonymous-note]")).to_be_visible()
    citizen.click("#knock-form button[type=submit]")
    citizen.wait_for_url("**/visit")
    expect(citizen.locator("[data-slot=place]")).to_have_text("1")

    staff = new_context().new_page()
    sign_in(staff, "carla")
    office = staff.locator(".office", has=staff.locator(f"a[href='/staff/office/{hiv}']"))
    entry = office.locator("li[data-ticket]")
    expect(entry).to_have_count(1)
    expect(entry.locator("[data-slot=who]")).to_contain_text("Gast")
    # The pseudonym is the page's, in the reader's language (the server sends only the number).
    number = entry.locator("[data-slot=who]").inner_text().split()[1]
    expect(entry.locator("[data-slot=who]")).to_have_text(f"Nr. {number} – Gast {number}")
    expect(citizen.locator("[data-slot=number]")).to_contain_text(f"„Gast {number}“")
    english = new_context().new_page()
    sign_in(english, "carla")
    english.goto("/staff?lang=en")
    office_en = english.locator(".office", has=english.locator(f"a[href='/staff/office/{hiv}']"))
    expect(office_en.locator("li[data-ticket] [data-slot=who]")).to_have_text(
        f"No. {number} – Guest {number}"
    )

    citizen.click("#leave")
    citizen.keyboard.press("Escape")  # the page's own dialog: Escape keeps the place
    expect(citizen.locator("#leave-dialog")).to_have_count(0)
    expect(citizen.locator("#leave")).to_be_focused()
    citizen.click("#leave")
    citizen.click("#leave-dialog-confirm")
    expect(citizen.locator("#withdrawn")).to_be_visible()
    expect(entry).to_have_count(0)


def test_closed_department_refuses_the_knock_and_shows_the_next_opening(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    anna = staff_api(web_system, "anna")
    with web_system.client() as client:
        kataster = department_id(client, "kataster")
    berlin = dt.datetime.now(ZoneInfo("Europe/Berlin"))
    weekday = (berlin.weekday() + 2) % 7
    response = anna.http.put(
        f"/offices/{kataster}/hours",
        json={"weekly": [{"weekday": weekday, "opens": "08:30", "closes": "12:00"}]},
        headers={"X-CSRF-Token": anna.csrf},
    )
    assert response.status_code == 200, response.text
    with web_system.client() as client:
        eventually(lambda: client.get(f"/departments/{kataster}").json()["opens_at"])

    citizen = new_context().new_page()
    citizen.goto(f"/office/{kataster}")
    expect(citizen.locator("#closed")).to_be_visible()
    expect(citizen.locator("#knock")).to_be_hidden()
    expect(citizen.locator("#closed [data-slot=next-opening]")).to_contain_text("08:30")


def test_declined_citizen_sees_the_reason_the_message_and_what_to_do(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    demo = demo_id(web_system)
    citizen = new_context().new_page()
    citizen.goto(f"/office/{demo}")
    citizen.fill("#display-name", "Herr Abgelehnt")
    citizen.click("#knock-form button[type=submit]")
    citizen.wait_for_url("**/visit")
    expect(citizen.locator("[data-slot=place]")).to_have_text("1")

    staff = new_context().new_page()
    sign_in(staff)
    office = staff.locator(".office", has=staff.locator(f"a[href='/staff/office/{demo}']"))
    entry = office.locator("li[data-ticket]", has_text="Herr Abgelehnt")
    entry.locator("[data-slot=decline] summary").click()
    entry.locator("[data-slot=reason]").select_option("documents_missing")
    entry.locator("[data-slot=decline-text]").fill("Bitte Meldebescheinigung mitbringen")
    entry.locator("[data-form=decline] button").click()
    expect(entry).to_have_count(0)

    expect(citizen.locator("#declined")).to_be_visible()
    expect(citizen.locator("#declined [data-slot=reason]")).not_to_be_empty()
    expect(citizen.locator("#declined [data-slot=next-step]")).not_to_be_empty()
    expect(citizen.locator("#declined")).to_contain_text("Meldebescheinigung")
    assert citizen.evaluate("document.activeElement.id") == "declined-heading"


def test_transferred_citizen_keeps_waiting_and_sees_the_new_department(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    demo = demo_id(web_system)
    ben = staff_api(web_system, "ben")
    with web_system.client() as client:
        integration = department_id(client, "integration")
    around_the_clock = [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]
    response = ben.http.put(
        f"/offices/{integration}/hours",
        json={"weekly": around_the_clock, "closed_days": []},
        headers={"X-CSRF-Token": ben.csrf},
    )
    assert response.status_code == 200, response.text
    with web_system.client() as client:
        eventually(lambda: client.get(f"/departments/{integration}").json()["open"])

    citizen = new_context(locale="en-GB").new_page()
    citizen.goto(f"/office/{demo}?lang=en")
    citizen.fill("#display-name", "Weitergeleitet")
    citizen.click("#knock-form button[type=submit]")
    citizen.wait_for_url("**/visit")
    expect(citizen.locator("[data-slot=place]")).to_have_text("1")
    ticket = citizen.evaluate("JSON.parse(sessionStorage.getItem('bb.ticket')).ticket_id")

    staff = new_context().new_page()
    sign_in(staff, "ben")
    entry = staff.locator("li[data-ticket]", has_text="Weitergeleitet")
    entry.locator("[data-slot=transfer] summary").click()
    entry.locator("[data-slot=target]").select_option(integration)
    entry.locator("[data-form=transfer] button").click()

    expect(staff.locator("#action-result")).to_have_class("notice notice-ok")
    note = citizen.locator("#transferred")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Municipal integration centre")
    expect(citizen.locator("#waiting [data-slot=department]")).to_contain_text("integration")
    office = staff.locator(".office", has=staff.locator(f"a[href='/staff/office/{integration}']"))
    expect(office.locator(f"li[data-ticket='{ticket}']")).to_be_visible()
    citizen.click("#leave")
    citizen.click("#leave-dialog-confirm")
    expect(citizen.locator("#withdrawn")).to_be_visible()


def test_department_admin_sets_closed_days_and_the_roster(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    with web_system.client() as client:
        elterngeld = department_id(client, "elterngeld")
        integration = department_id(client, "integration")
    staff = new_context().new_page()
    sign_in(staff, "anna")
    # anna serves Elterngeld as staff only: the page says so and offers no form.
    staff.goto(f"/staff/office/{elterngeld}")
    expect(staff.locator("#office-state")).to_have_class("notice notice-warn")
    expect(staff.locator("#hours-form")).to_be_hidden()

    ben = new_context().new_page()
    sign_in(ben, "ben")
    ben.goto(f"/staff/office/{integration}")
    expect(ben.locator("#hours-form")).to_be_visible()
    rows = ben.locator("#hours-rows tr")
    before = rows.count()
    ben.click("#add-period")
    expect(rows).to_have_count(before + 1)
    ben.locator("#hours-rows tr").last.locator("[data-field=weekday]").select_option("6")
    holiday = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    ben.fill("#new-closed-day", holiday)
    ben.click("#add-closed-day")
    ben.click("#hours-form button[type=submit]")
    expect(ben.locator("#office-result")).to_have_class("notice notice-ok")

    ben.fill("#new-staff", "anna")
    ben.click("#roster-form button[type=submit]")
    expect(ben.locator("#roster-rows")).to_contain_text("anna")

    office = next(
        o for o in staff_api(web_system, "ben").get("/offices").json() if o["id"] == integration
    )
    assert holiday in office["closed_days"]
    assert any(p["weekday"] == 6 for p in office["weekly"])
    assert office["roster"]["anna"] == "staff"

    ben.locator("#roster-rows tr", has_text="anna").locator("button").click()
    expect(ben.locator("#roster-rows")).not_to_contain_text("anna")

    # Languages and topics: anna (admin of demo) drops Ukrainian, adds Polish, renames a
    # topic and adds one; a duplicate id comes back as the API's 422, next to the form.
    demo = demo_id(web_system)
    errors = watch_errors(staff)
    staff.goto(f"/staff/office/{demo}")
    form = staff.locator("#offer-form")
    expect(form).to_be_visible()
    languages = staff.locator("#offer-languages")
    expect(languages.locator("[data-language=uk]")).to_contain_text("Ukrainisch (uk)")
    languages.get_by_role("button", name="Sprache Ukrainisch (uk) entfernen").click()
    expect(languages.locator("[data-language=uk]")).to_have_count(0)
    expect(staff.locator("#new-language")).to_be_focused()
    staff.keyboard.type("pl")
    expect(staff.locator("#new-language-name")).to_have_text("Polnisch")
    staff.keyboard.press("Enter")
    expect(languages.locator("[data-language=pl]")).to_have_text("Polnisch (pl) ×")
    staff.fill("#new-language", "de")
    staff.click("#add-language")
    expect(staff.locator("#language-error")).to_have_text("Deutsch (de) steht schon in der Liste.")

    topics = staff.locator("#offer-topics > li")
    before = topics.count()
    staff.click("#add-topic")
    expect(topics).to_have_count(before + 1)
    new_topic = topics.last
    expect(new_topic.locator("legend")).to_have_text(f"Anliegen {before + 1}")
    new_topic.get_by_label("Kennung").fill("antrag")  # already taken
    new_topic.get_by_label("Bezeichnung auf Deutsch").fill("Wohnsitz anmelden")
    new_topic.get_by_label("Bezeichnung auf Englisch").fill("Register an address")
    form.locator("button[type=submit]").click()
    expect(staff.locator("#offer-error")).to_contain_text("each topic id only once")
    new_topic.get_by_label("Kennung").fill("wohnsitz")
    new_topic.get_by_role("button", name=f"Anliegen {before + 1} nach oben verschieben").click()
    expect(topics.nth(before - 1).get_by_label("Kennung")).to_have_value("wohnsitz")
    antrag = topics.filter(has=staff.locator("[data-field=id][value=antrag]"))
    antrag.get_by_label("Bezeichnung auf Deutsch").fill("Antrag abgeben (neu)")
    form.locator("button[type=submit]").click()
    expect(staff.locator("#office-result")).to_have_class("notice notice-ok")
    expect(staff.locator("#offer-error")).to_be_hidden()

    # rooms → NATS → queue: the knock page offers what was saved once the door has it.
    # One queue replica has it first; every other one reads it from the store once its
    # copy is DOOR_MAX_AGE old, so from then on any page load, on any replica, shows it.
    citizen = new_context().new_page()
    citizen.goto(f"/office/{demo}")
    citizen.wait_for_function(
        """async (id) => {
          const door = await (await fetch(`/api/v1/departments/${id}`)).json();
          return door.languages.includes("pl") && door.topics.some((t) => t.id === "wohnsitz");
        }""",
        arg=demo,
        polling=200,
    )
    citizen.wait_for_timeout(DOOR_MAX_AGE * 1000)
    citizen.reload()
    expect(citizen.locator("#language option[value=pl]")).to_have_text("Polnisch")
    expect(citizen.locator("#language option[value=uk]")).to_have_count(0)
    expect(citizen.locator("#topic option[value=wohnsitz]")).to_have_text("Wohnsitz anmelden")
    expect(citizen.locator("#topic option[value=antrag]")).to_have_text("Antrag abgeben (neu)")
    options = citizen.locator("#topic option").evaluate_all("(all) => all.map((o) => o.value)")
    assert options == ["", "allgemein", "wohnsitz", "antrag"]  # the order the admin chose
    citizen.goto(f"/office/{demo}?lang=en")
    expect(citizen.locator("#topic option[value=wohnsitz]")).to_have_text("Register an address")
    assert errors == []


def test_staff_switches_language_and_signs_out(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    page = new_context().new_page()
    page.goto("/staff/login")
    page.fill("#username", "anna")
    page.fill("#password", "falsch")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_be_visible()
    sign_in(page)
    expect(page.locator("html")).to_have_attribute("lang", "de")
    page.click("a[hreflang=en]")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("My departments")
    page.goto("/staff")  # the choice is remembered
    expect(page.locator("h1")).to_have_text("My departments")
    page.click("#sign-out")
    page.wait_for_url("**/staff/login")
    expect(page.locator("#signed-out")).to_be_visible()
    page.goto("/staff")
    page.wait_for_url("**/staff/login")
