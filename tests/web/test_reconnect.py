"""The waiting room's stream survives a restart of the whole system."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.helpers import knock, open_department
from tests.web.conftest import DESKTOP, staff_api


def test_waiting_room_reconnects_after_the_system_restarts(
    browser: Browser, tmp_path: Path, nats_server: EmbeddedNats
) -> None:
    system = SystemProcess(tmp_path / "data", nats_server.url)
    system.start()
    try:
        with system.client() as client:
            demo = open_department(client, "demo")
            ahead = knock(client, demo, display_name="Vorne")
        context = browser.new_context(base_url=system.base, viewport=DESKTOP, locale="de-DE")
        citizen = context.new_page()
        citizen.goto(f"/office/{demo}")
        citizen.fill("#display-name", "Geduldig")
        citizen.click("#knock-form button[type=submit]")
        citizen.wait_for_url("**/visit")
        expect(citizen.locator("[data-slot=place]")).to_have_text("2")

        system.kill()
        expect(citizen.locator("#connection")).to_be_visible(timeout=10_000)
        expect(citizen.locator("#waiting")).to_be_visible()  # never a blank page

        system.start()
        staff_api(system).post(f"/tickets/{ahead['ticket_id']}/admit")
        expect(citizen.locator("[data-slot=place]")).to_have_text("1", timeout=30_000)
        expect(citizen.locator("#connection")).to_be_hidden()
        context.close()
    finally:
        system.stop()


def test_a_lost_media_server_says_what_to_do(
    browser: Browser, tmp_path: Path, nats_server: EmbeddedNats
) -> None:
    """The media socket drops without a close frame (the replica is gone): the page keeps
    the conversation on screen and says what happened and what to do, with a button."""
    system = SystemProcess(tmp_path / "data", nats_server.url)
    system.start()
    try:
        with system.client() as client:
            demo = open_department(client, "demo")
        context = browser.new_context(
            base_url=system.base,
            viewport=DESKTOP,
            locale="de-DE",
            permissions=["camera", "microphone"],
        )
        citizen = context.new_page()
        citizen.goto(f"/office/{demo}")
        citizen.fill("#display-name", "Verbunden")
        citizen.click("#knock-form button[type=submit]")
        citizen.wait_for_url("**/visit")
        expect(citizen.locator("[data-slot=place]")).to_have_text("1")
        ticket = citizen.evaluate("JSON.parse(sessionStorage.getItem('bb.ticket')).ticket_id")
        staff_api(system).post(f"/tickets/{ticket}/admit")
        citizen.wait_for_url("**/visit/consultation/*", timeout=20_000)
        expect(citizen.locator("[data-action=mute]")).to_be_enabled(timeout=20_000)

        system.kill()
        problem = citizen.locator("[data-slot=media-problem]")
        expect(problem).to_be_visible(timeout=15_000)
        expect(problem).to_contain_text("Verbindung zum Videodienst ist abgebrochen")
        expect(problem.locator("[data-action=reconnect]")).to_be_visible()
        expect(citizen.locator("#in-call")).to_be_visible()  # never a blank page
        assert citizen.evaluate("document.activeElement.dataset.action") == "reconnect"
        context.close()
    finally:
        system.stop()
