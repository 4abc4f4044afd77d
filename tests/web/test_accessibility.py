"""Every page in both languages: axe-core (WCAG 2 A/AA) finds nothing, at desktop and phone
width; screenshots of each are written to artifacts/screenshots/. Plus a keyboard-only visit
and the headers every page must carry."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import SystemProcess
from tests.helpers import department_id, eventually
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

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
SHOTS = ARTIFACTS / "screenshots"
AXE = Axe()
MAIN_PAGES = {
    "start",
    "knock",
    "waiting",
    "declined",
    "consultation",
    "staff-dashboard",
    "staff-consultation",
    "consultation-ended",
}


class Checker:
    """Runs axe on a page at both widths and keeps a screenshot of each."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.violations: list[str] = []
        self.checked: list[str] = []
        SHOTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Page, name: str) -> None:
        """The main pages also at phone width, with screenshots; the others at desktop width."""
        page.wait_for_timeout(150)  # let the last live update settle
        main = name in MAIN_PAGES
        for label, size in (
            (("desktop", DESKTOP), ("phone", PHONE)) if main else (("desktop", DESKTOP),)
        ):
            page.set_viewport_size(size)  # type: ignore[arg-type]
            results = AXE.run(page, options=WCAG)
            for violation in results.response["violations"]:
                nodes = [n.get("target") for n in violation["nodes"]][:3]
                self.violations.append(
                    f"{name} [{self.lang}, {label}]: {violation['id']}: {violation['help']} {nodes}"
                )
            if main:
                path = SHOTS / f"{name}-{self.lang}-{label}.png"
                page.screenshot(path=str(path), full_page=True)
        page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
        self.checked.append(name)


def _close_kataster(system: SystemProcess) -> str:
    anna = staff_api(system, "anna")
    with system.client() as client:
        kataster = department_id(client, "kataster")
    weekday = (dt.datetime.now(ZoneInfo("Europe/Berlin")).weekday() + 2) % 7
    response = anna.http.put(
        f"/offices/{kataster}/hours",
        json={"weekly": [{"weekday": weekday, "opens": "08:30", "closes": "12:00"}]},
        headers={"X-CSRF-Token": anna.csrf},
    )
    assert response.status_code == 200, response.text
    with system.client() as client:
        eventually(lambda: client.get(f"/departments/{kataster}").json()["opens_at"])
    return kataster


def _knock_in_browser(context: BrowserContext, demo: str, lang: str, name: str) -> Page:
    page = context.new_page()
    page.goto(f"/office/{demo}?lang={lang}")
    page.fill("#display-name", name)
    page.click("#knock-form button[type=submit]")
    page.wait_for_url("**/visit")
    expect(page.locator("[data-slot=place]")).not_to_have_text("–")
    return page


def _ticket(page: Page) -> dict[str, Any]:
    return dict(json.loads(page.evaluate("sessionStorage.getItem('bb.ticket')")))


@pytest.mark.parametrize("lang", ["de", "en"])
def test_every_page_passes_axe_in_both_languages(
    lang: str, web_system: SystemProcess, new_context: ContextFactory
) -> None:
    check = Checker(lang)
    demo = demo_id(web_system)
    kataster = _close_kataster(web_system)
    staff_http = staff_api(web_system)

    citizen_context = new_context()
    citizen = citizen_context.new_page()
    errors = watch_errors(citizen)
    citizen.goto(f"/?lang={lang}")
    expect(citizen.locator("#departments .card").first).to_be_visible()
    assert citizen.evaluate("document.documentElement.lang") == lang
    check(citizen, "start")

    citizen.goto(f"/office/{kataster}")
    expect(citizen.locator("#closed")).to_be_visible()
    check(citizen, "closed")

    citizen.goto(f"/office/{demo}")
    expect(citizen.locator("#knock")).to_be_visible()
    citizen.click("[data-device-check] [data-action=start-check]")
    expect(citizen.locator("[data-slot=check-preview]")).to_be_visible()
    check(citizen, "knock")

    citizen.fill("#display-name", "Maria Muster")
    citizen.select_option("#topic", "antrag")
    citizen.click("#knock-form button[type=submit]")
    citizen.wait_for_url("**/visit")
    expect(citizen.locator("[data-slot=place]")).to_have_text("1")
    ticket = _ticket(citizen)
    staff_http.post(f"/tickets/{ticket['ticket_id']}/message", {"text": "Gleich geht es los."})
    expect(citizen.locator("#messages li")).to_have_count(1)
    check(citizen, "waiting")

    staff_context = new_context()
    staff = staff_context.new_page()
    staff_errors = watch_errors(staff)
    staff.goto(f"/staff/login?lang={lang}")
    check(staff, "staff-login")
    sign_in(staff)
    entry = staff.locator("li[data-ticket]", has_text="Maria Muster")
    expect(entry).to_be_visible()
    entry.locator("[data-slot=decline] summary").click()
    check(staff, "staff-dashboard")

    staff.goto(f"/staff/office/{demo}")
    expect(staff.locator("#hours-form")).to_be_visible()
    expect(staff.locator("#offer-topics > li").first).to_be_visible()
    check(staff, "staff-office")
    # The languages-and-topics form with an error from the API and a live language name.
    staff.fill("#new-language", "pl")
    staff.locator("#offer-topics [data-field=id]").first.fill("Kein Id")
    staff.click("#offer-form button[type=submit]")
    expect(staff.locator("#offer-error")).to_be_visible()
    check(staff, "staff-office-error")
    staff.locator("#offer-form").screenshot(path=str(SHOTS / f"staff-office-offer-{lang}.png"))

    staff_http.post(f"/tickets/{ticket['ticket_id']}/admit")
    citizen.wait_for_url("**/visit/consultation/*", timeout=20_000)
    expect(citizen.locator("#in-call")).to_be_visible()

    consultation_id = citizen.url.rsplit("/", 1)[1]
    staff.goto(f"/staff/consultation/{consultation_id}")
    expect(staff.locator("#in-call")).to_be_visible()
    # Both with the other's video and the connection hint, as people will see them.
    expect_video_moving(citizen, "staff")
    expect_video_moving(staff, "citizen")
    expect(citizen.locator("[data-slot=quality]")).to_be_visible(timeout=10_000)
    check(citizen, "consultation")
    staff.click("#invite")
    expect(staff.locator("#invitations input")).to_have_count(1)
    link = staff.locator("#invitations input").first.input_value()
    check(staff, "staff-consultation")

    guest = new_context().new_page()
    guest.goto(f"/?lang={lang}")
    guest.goto(link.replace(web_system.base, ""))
    expect(guest.locator("#invite-form")).to_be_visible()
    check(guest, "invite")
    guest.goto(link.split("#")[0].replace(web_system.base, ""))
    guest.evaluate("sessionStorage.clear()")
    guest.reload()
    expect(guest.locator("#invite-invalid")).to_be_visible()
    check(guest, "invite-invalid")

    staff.click("#end")
    staff.click("#end-dialog-confirm")  # the page's own dialog, not the browser's confirm()
    expect(staff.locator("#ended")).to_be_visible()
    expect(citizen.locator("#ended")).to_be_visible(timeout=15_000)
    check(citizen, "consultation-ended")

    declined = _knock_in_browser(new_context(), demo, lang, "Otto Ohne")
    staff_http.post(
        f"/tickets/{_ticket(declined)['ticket_id']}/decline",
        {"reason": "appointment_required", "message": "Bitte buchen Sie einen Termin."},
    )
    expect(declined.locator("#declined")).to_be_visible()
    expect(declined.locator("#declined .messages li")).to_have_count(1)
    check(declined, "declined")

    leaving = _knock_in_browser(new_context(), demo, lang, "Lea Geht")
    leaving.click("#leave")
    expect(leaving.locator("#leave-dialog")).to_be_visible()  # the page's own question
    check(leaving, "leave dialog")
    leaving.click("#leave-dialog-confirm")
    expect(leaving.locator("#withdrawn")).to_be_visible()
    check(leaving, "withdrawn")

    nobody = new_context().new_page()
    nobody.goto(f"/visit?lang={lang}")
    expect(nobody.locator("#no-visit")).to_be_visible()
    check(nobody, "no-visit")

    for path in ("accessibility", "imprint", "privacy"):
        nobody.goto(f"/{path}")
        check(nobody, path)

    assert not check.violations, "\n".join(check.violations)
    assert errors == [] and staff_errors == []


def test_keyboard_only_visit(web_system: SystemProcess, new_context: ContextFactory) -> None:
    """Tab and Enter only: skip link, department, knock form, waiting room, conversation."""
    demo = demo_id(web_system)
    page = new_context().new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/")
    expect(page.locator("#departments .card").first).to_be_visible()

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    def tab_to(selector: str, limit: int = 80) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("(s) => document.activeElement.matches(s)", selector):
                outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"no visible focus on {selector}"
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to(f"a[href='/office/{demo}']")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/office/{demo}")
    expect(page.locator("#knock")).to_be_visible()
    tab_to("#display-name")
    page.keyboard.type("Karl Tastatur")
    tab_to("#language")
    tab_to("#topic")
    page.keyboard.press("ArrowDown")
    tab_to("#knock-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/visit")
    expect(page.locator("[data-slot=place]")).to_have_text("1")
    expect(page.locator("#place-sentence")).not_to_be_empty()

    tab_to("#sound-on")
    tab_to("#leave")
    ticket = _ticket(page)
    staff_api(web_system).post(f"/tickets/{ticket['ticket_id']}/admit")
    page.wait_for_url("**/visit/consultation/*", timeout=20_000)
    tab_to("#leave-call")
    page.keyboard.press("Enter")
    # The page's own dialog asks first; focus starts on "stay", Tab reaches "leave".
    expect(page.locator("#leave-dialog")).to_be_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#left")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "left-heading"


PAGES = [
    "/",
    "/?lang=en",
    "/office/00000000-0000-0000-0000-000000000001",
    "/visit",
    "/visit/consultation/00000000-0000-0000-0000-000000000001",
    "/invite/00000000-0000-0000-0000-000000000001",
    "/staff/login",
    "/staff",
    "/staff/office/00000000-0000-0000-0000-000000000001",
    "/staff/consultation/00000000-0000-0000-0000-000000000001",
    "/accessibility",
    "/imprint",
    "/privacy",
    "/static/js/common.js",
    "/static/css/app.css",
    "/static/img/logo.svg",
]


def test_every_page_and_asset_carries_the_csp_and_no_referrer(web_system: SystemProcess) -> None:
    with httpx.Client(base_url=web_system.base) as client:
        for path in PAGES:
            response = client.get(path)
            # Signed out, the dashboard is the sign-in page: redirected on the server.
            assert response.status_code == (303 if path == "/staff" else 200), path
            csp = response.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp, path
            assert "unsafe-inline" not in csp and "http" not in csp, path
            assert response.headers["referrer-policy"] == "no-referrer", path
        page = client.get("/").text
        assert (
            "<script>" not in page
            and " style=" not in page
            and "http" not in page.split("</head>")[0]
        )
        assert client.get("/static/../api.py").status_code == 404
    with httpx.Client(base_url=web_system.base) as client:
        english = client.get("/?lang=en")
        assert english.cookies.get("bb_lang") == "en"
        assert 'lang="en"' in english.text
