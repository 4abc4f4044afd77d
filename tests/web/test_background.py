"""The staff member's background, segmented in the browser with the model the app ships."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import SystemProcess
from tests.helpers import eventually, knock
from tests.web import patience
from tests.web.conftest import (
    ARTIFACTS,
    ContextFactory,
    demo_id,
    expect_video_moving,
    sign_in,
    staff_api,
    watch_errors,
)

patient_web_system = patience.patient_web_system  # web_system, with a longer start

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


RENDERER = """() => {
  const gl = document.createElement("canvas").getContext("webgl");
  const info = gl && gl.getExtension("WEBGL_debug_renderer_info");
  return gl ? gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) : "";
}"""
# framesDecoded of the staff camera over `seconds`, by the receiving page's own clock.
RECEIVED_FPS = """async (seconds) => {
  const frames = async () => {
    const stats = await window.bbMediaStats();
    const staff = stats.filter(
      (s) => s.direction === "inbound" && s.role === "staff" && s.source === "camera",
    );
    return Math.max(0, ...staff.map((s) => s.framesDecoded));
  };
  const before = await frames();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return (await frames() - before) / ((performance.now() - started) / 1000);
}"""
BLUR_STATES = {
    "Ihr Hintergrund ist weichgezeichnet.": "full",
    "Ihr Hintergrund zeigt das Bild der Verwaltung.": "full",
    "Ihr Hintergrund zeigt das Bild der Verwaltung. Dieser Computer ist langsam, deshalb "
    "folgt der Umriss Ihrer Person etwas verzögert.": "reduced",
    "Ihr Hintergrund ist weichgezeichnet. Dieser Computer ist langsam, deshalb folgt der "
    "Umriss Ihrer Person etwas verzögert.": "reduced",
    "Dieser Computer ist für diesen Effekt bei flüssigem Bild zu langsam: Ihr Hintergrund "
    "zeigt stattdessen die einfache Farbe der Verwaltung.": "colour",
    "Dieser Computer ist für einen Hintergrund-Effekt bei flüssigem Bild für die anderen zu "
    "langsam. Ihr Kamerabild wird unverändert gesendet.": "off",
}


def _settled_state(staff: Page) -> str:
    status = staff.locator("[data-slot=background-status]")
    expect(status).not_to_have_text("Der Hintergrund wird vorbereitet …", timeout=60_000)
    text = status.inner_text()
    assert text in BLUR_STATES, text
    return BLUR_STATES[text]


def _smooth_at_the_other_side(guest: Page) -> list[float]:
    """Windows of received frame rate until two in a row reach 15 fps (the effect adapts
    in its first windows), at most eight."""
    rates: list[float] = []
    for _ in range(8):
        rates.append(float(guest.evaluate(RECEIVED_FPS, 3)))
        if len(rates) >= 2 and min(rates[-2:]) >= 15:
            return rates
    raise AssertionError(f"the staff camera arrives at {rates} fps")


def test_blur_on_software_webgl_keeps_the_picture_smooth_for_the_others(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    """Issue 15.1: on a PC without a graphics card (WebGL in SwiftShader) blur once sent
    0.7-5 fps. Now segmentation fits the machine, or the effect steps down and says so."""
    consultation = _admitted_consultation(web_system)
    staff = new_context().new_page()
    errors = watch_errors(staff)
    sign_in(staff)
    assert "SwiftShader" in staff.evaluate(RENDERER)  # software WebGL, as on thin clients
    staff.goto(f"/staff/consultation/{consultation}")
    expect(staff.locator("[data-action=mute]")).to_be_enabled(timeout=20_000)

    # A guest joins to look at what the staff member sends.
    invitation = staff_api(web_system).post(f"/consultations/{consultation}/invitations").json()
    guest = new_context().new_page()
    guest.goto(invitation["link"].replace(web_system.base, ""))
    guest.fill("#guest-name", "Gast")
    guest.click("#invite-form button[type=submit]")
    expect_video_moving(guest, "staff")

    staff.check("input[name=background][value=blur]")
    level = _settled_state(staff)
    if level != "off":
        assert staff.evaluate(SELF_TRACK) == "CanvasCaptureMediaStreamTrack"
    rates = _smooth_at_the_other_side(guest)
    level = _settled_state(staff)  # where the effect came to rest while measured
    if level == "off":
        assert staff.evaluate(SELF_TRACK) != "CanvasCaptureMediaStreamTrack"
        expect(staff.locator("input[name=background][value=none]")).to_be_checked()
    SHOTS.mkdir(parents=True, exist_ok=True)
    staff.screenshot(path=str(SHOTS / "staff-background-de-desktop.png"), full_page=True)
    guest.screenshot(path=str(SHOTS / "interpreter-sees-background-de-desktop.png"))
    print(f"blur on software WebGL: {level}, received {rates} fps")

    staff.check("input[name=background][value=image]")
    assert _settled_state(staff) in ("full", "reduced", "colour", "off")
    staff.check("input[name=background][value=none]")
    status = staff.locator("[data-slot=background-status]")
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


# The ladder alone (backgroundladder.js, in the browser that runs it): each window's frame
# rate in, the rung after it out ("level/budget"; "-" where the colour keeps the budget).
LADDER = """async ([windows, options]) => {
  const { createLadder } = await import("/static/js/backgroundladder.js");
  const unusable = new Set(options.unusable ?? []);
  const ladder = createLadder({
    stepDownFps: 16,
    stepUpFps: 18,
    usable: (rung) => !unusable.has(rung.budget),
  });
  const name = (rung) => `${rung.level}/${rung.budget ?? "-"}`;
  const seen = [];
  for (const fps of windows) {
    const changed = ladder.window(fps);
    seen.push(changed ? name(changed) : "");
  }
  return { changes: seen, rung: name(ladder.rung), wait: ladder.calmWindowsNeeded };
}"""


def _ladder(page: Page, windows: Sequence[float], **options: Any) -> dict[str, Any]:
    return dict(page.evaluate(LADDER, [windows, options]))


def _changes(result: dict[str, Any]) -> list[tuple[int, str]]:
    return [(n, rung) for n, rung in enumerate(result["changes"]) if rung]


def test_the_background_steps_down_at_once_and_back_up_when_the_machine_has_time(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    page = new_context().new_page()
    page.goto("/")

    # One bad window a step; the colour needs two before the effect stops; off is final.
    down = _ladder(page, [10, 10, 10, 10, 10, 30, 30, 30, 30, 30, 30, 30])
    assert _changes(down) == [
        (0, "reduced/1"), (1, "reduced/2"), (2, "colour/-"), (4, "off/-"),
    ]
    assert down["rung"] == "off/-"
    # A stutter at the colour (one bad window between good ones) does not stop it.
    stutter = _ladder(page, [10, 10, 10, 10, 17, 10])
    assert stutter["rung"] == "colour/-"

    # Back up one rung per five windows in a row at 18 fps or more; 16-18 fps holds the
    # rung without counting as calm.
    up = _ladder(page, [10, 10, 10] + [20] * 4 + [17] + [20] * 15)
    assert _changes(up) == [
        (0, "reduced/1"), (1, "reduced/2"), (2, "colour/-"),
        (12, "reduced/2"), (17, "reduced/1"), (22, "full/0"),
    ]

    # A step up that fails soon doubles the wait for the next; a machine at the edge
    # swings less and less often, never waiting more than 80 windows (160 s).
    swing = _ladder(page, [10] + [20] * 5 + [10] + [20] * 9)
    assert _changes(swing) == [(0, "reduced/1"), (5, "full/0"), (6, "reduced/1")]
    assert swing["wait"] == 10
    assert swing["rung"] == "reduced/1"  # nine calm windows are not yet ten
    failing = [[20] * calm + [10] for calm in (5, 10, 20, 40, 80, 80)]
    edge = _ladder(page, [10] + [fps for cycle in failing for fps in cycle])
    assert len(_changes(edge)) == 1 + 2 * len(failing)
    assert edge["wait"] == 80
    # A step up that holds keeps the wait where it is.
    held = _ladder(page, [10] + [20] * 5 + [17] * 6 + [10])
    assert held["wait"] == 5

    # Rungs whose masks would lag too far behind the person are passed over both ways.
    skipping = _ladder(page, [10, 10] + [20] * 10, unusable=[1])
    assert _changes(skipping) == [
        (0, "reduced/2"), (1, "colour/-"), (6, "reduced/2"), (11, "full/0"),
    ]
