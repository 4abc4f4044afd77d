"""The media connection in Chromium: the quality line says whose picture is missing instead
of "good", staff see each participant's state, and a broken media path heals by itself
(the page rejoins, shows "reconnecting" meanwhile, and the pictures move again)."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

from tests.conftest import SystemProcess
from tests.web.conftest import ContextFactory, demo_id, expect_video_moving, sign_in, staff_api

# Every RTCPeerConnection the page makes, so the test can break or starve it as a dying
# network would (the page itself has no hook for that).
KEEP_PEER_CONNECTIONS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""

STOP_CAMERA = """async () => {
  const pc = window.__pcs.at(-1);
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
  window.__camera = sender.track;
  await sender.replaceTrack(null);
}"""

START_CAMERA = """async () => {
  const pc = window.__pcs.at(-1);
  const camera = pc.getTransceivers().find(
    (t) => t.direction === "sendonly" && t.receiver.track.kind === "video" && !t.sender.track,
  );
  await camera.sender.replaceTrack(window.__camera);
}"""


def _admitted(web_system: SystemProcess, citizen_context: BrowserContext, name: str) -> Page:
    """A citizen who knocked on the demo office and was admitted, on the consultation page."""
    citizen = citizen_context.new_page()
    citizen.goto(f"/office/{demo_id(web_system)}")
    citizen.fill("#display-name", name)
    citizen.click("#knock-form button[type=submit]")
    citizen.wait_for_url("**/visit")
    expect(citizen.locator("[data-slot=place]")).not_to_have_text("–")
    ticket = citizen.evaluate("JSON.parse(sessionStorage.getItem('bb.ticket')).ticket_id")
    staff_api(web_system).post(f"/tickets/{ticket}/admit")
    citizen.wait_for_url("**/visit/consultation/*", timeout=20_000)
    return citizen


def _in_a_call(web_system: SystemProcess, new_context: ContextFactory) -> tuple[Page, Page]:
    """A citizen admitted and in the consultation, then staff opening it."""
    citizen_context: BrowserContext = new_context()
    citizen_context.add_init_script(KEEP_PEER_CONNECTIONS)
    citizen = _admitted(web_system, citizen_context, "Netz Wackel")
    consultation_id = citizen.url.rsplit("/", 1)[1]
    staff = new_context().new_page()
    sign_in(staff)
    staff.goto(f"/staff/consultation/{consultation_id}")
    expect_video_moving(citizen, "staff")
    expect_video_moving(staff, "citizen")
    return citizen, staff


def test_no_picture_is_never_good_and_a_broken_connection_heals(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    citizen, staff = _in_a_call(web_system, new_context)
    quality = staff.locator("[data-slot=quality]")
    expect(quality).to_have_attribute("data-picture", "arrives", timeout=10_000)
    expect(quality).to_contain_text("Verbindung: gut")
    citizen_state = staff.locator("[data-slot=peer-states] li[data-state]")
    expect(citizen_state).to_have_attribute("data-state", "good")

    # The citizen's picture stops while everything else flows: staff's line says no
    # picture arrives and that the problem is on the citizen's side, never "good".
    citizen.evaluate(STOP_CAMERA)
    expect(quality).to_have_attribute("data-picture", "none", timeout=15_000)
    expect(quality).to_have_attribute("data-side", "other")
    expect(quality).to_contain_text("Es kommt kein Bild an")
    expect(quality).to_contain_text("Bürgerin oder Bürger")
    expect(citizen_state).to_have_attribute("data-state", "none")
    expect(citizen_state).to_contain_text("kein Bild")
    citizen.evaluate(START_CAMERA)
    expect(quality).to_have_attribute("data-picture", "arrives", timeout=15_000)

    # The citizen's media path breaks while its socket lives: the page says so, rejoins
    # by itself, and both pictures move again.
    before = citizen.evaluate("window.__pcs.length")
    citizen.evaluate("window.__pcs.at(-1).close()")
    banner = citizen.locator("[data-slot=media-reconnecting]")
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner).to_contain_text("Verbindung unterbrochen – wird wiederhergestellt")
    expect(banner).to_be_hidden(timeout=20_000)
    assert citizen.evaluate("window.__pcs.length") > before
    expect_video_moving(citizen, "staff")
    expect_video_moving(staff, "citizen")
    expect(citizen.locator("[data-slot=media-problem]")).to_be_hidden()


def test_a_close_the_page_did_not_ask_for_is_never_silent(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    """Close code 1000 ("left") that the page did not ask for — what the citizen's page once
    got when staff ended, and then sat with disabled controls and nothing said — shows the
    lost connection and the button to reconnect."""
    sockets: list[WebSocketRoute] = []

    def pass_through(socket: WebSocketRoute) -> None:
        socket.connect_to_server()
        sockets.append(socket)

    context = new_context()
    context.route_web_socket("**/signal", pass_through)
    citizen = _admitted(web_system, context, "Leise Getrennt")
    expect(citizen.locator("[data-action=mute]")).to_be_enabled(timeout=20_000)
    assert sockets, "the page's signalling socket did not pass the route"

    sockets[-1].close(code=1000, reason="left")
    problem = citizen.locator("[data-slot=media-problem]")
    expect(problem).to_be_visible(timeout=10_000)
    expect(problem).to_contain_text("Verbindung zum Videodienst ist abgebrochen")
    expect(problem.locator("[data-action=reconnect]")).to_be_visible()
    expect(citizen.locator("#in-call")).to_be_visible()
