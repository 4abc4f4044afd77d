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
