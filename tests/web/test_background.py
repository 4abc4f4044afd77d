"""The staff member's background, segmented in the browser with the model the app ships."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from tests.conftest import SystemProcess
from tests.helpers import eventually, knock
from tests.web.conftest import (
    ARTIFACTS,
    ContextFactory,
    demo_id,
    expect_video_moving,
    sign_in,
    staff_api,
    watch_errors,
)

SHOTS = ARTIFACTS / "screenshots"
SELF_TRACK = (
    "document.querySelector('[data-slot=self-video]').srcObject.getVideoTracks()[0]"
    ".constructor.name"
)


def _admitted_consultation(system: SystemProcess) -> str:
    demo = demo_id(system)
    with system.client() as client:
        ticket = knock(client, demo, display_name="Hinter Grund")
    staff_api(system).post(f"/tickets/{ticket['ticket_id']}/admit")

    def consultation() -> Any:
        with system.client() as client:
            answer = client.get(
                f"/tickets/{ticket['ticket_id']}",
                headers={"Authorization": f"Bearer {ticket['token']}"},
            )
            return answer.json().get("consultation_id")

    return str(eventually(consultation))


def test_staff_background_blur_and_image_are_sent_instead_of_the_camera(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    consultation = _admitted_consultation(web_system)
    staff = new_context().new_page()
    errors = watch_errors(staff)
    sign_in(staff)
    staff.goto(f"/staff/consultation/{consultation}")
    expect(staff.locator("#in-call")).to_be_visible()
    expect(staff.locator("[data-action=mute]")).to_be_enabled(timeout=20_000)

    # A guest joins to look at what the staff member sends.
    invitation = staff_api(web_system).post(f"/consultations/{consultation}/invitations").json()
    guest = new_context().new_page()
    guest.goto(invitation["link"].replace(web_system.base, ""))
    guest.fill("#guest-name", "Gast")
    guest.click("#invite-form button[type=submit]")
    expect_video_moving(guest, "staff")

    staff.check("input[name=background][value=blur]")
    status = staff.locator("[data-slot=background-status]")
    expect(status).to_have_text("Ihr Hintergrund ist weichgezeichnet.", timeout=40_000)
    assert staff.evaluate(SELF_TRACK) == "CanvasCaptureMediaStreamTrack"
    expect_video_moving(guest, "staff", timeout=40)

    staff.check("input[name=background][value=image]")
    expect(status).to_have_text("Ihr Hintergrund zeigt das Bild der Verwaltung.")
    expect_video_moving(guest, "staff", timeout=40)
    guest.wait_for_timeout(1500)
    SHOTS.mkdir(parents=True, exist_ok=True)
    staff.screenshot(path=str(SHOTS / "staff-background-de-desktop.png"), full_page=True)
    guest.screenshot(path=str(SHOTS / "interpreter-sees-background-de-desktop.png"))

    staff.check("input[name=background][value=none]")
    expect(status).to_have_text("Ihr Kamerabild wird unverändert gesendet.")
    assert staff.evaluate(SELF_TRACK) != "CanvasCaptureMediaStreamTrack"
    expect_video_moving(guest, "staff")
    assert errors == []


def test_the_background_image_is_served_by_the_app(web_system: SystemProcess) -> None:
    base = web_system.base
    answer = httpx.get(f"{base}/staff/background")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert "Kreis Musterstadt" in answer.text
    wasm = httpx.get(
        f"{base}/static/vendor/selfie_segmentation/selfie_segmentation_solution_simd_wasm_bin.wasm"
    )
    assert wasm.headers["content-type"] == "application/wasm"
