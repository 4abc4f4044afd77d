"""Staff pages and the session's limits, in Chromium: a throttled sign-in says how long to
wait (German and English), an open staff page keeps its session past the idle time, and
a page whose session ended elsewhere goes to the sign-in page and says so."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.web.conftest import ContextFactory, sign_in, watch_errors

pytestmark = pytest.mark.timeout(180)

IDLE_SECONDS = 6


@pytest.fixture(scope="module")
def web_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    """The process tree, with sessions that end after a few idle seconds."""
    base = tmp_path_factory.mktemp("web-sessions")
    nats = EmbeddedNats(base / "nats")
    nats.start()
    system = SystemProcess(
        base / "data",
        nats.url,
        env={"BB_SESSION_IDLE_MINUTES": str(IDLE_SECONDS / 60)},
        args=["up", "--queue-processes", "2"],
    )
    system.start()
    yield system
    system.stop()
    nats.stop()


def _guess(page: Page, username: str, times: int) -> None:
    for n in range(times):
        page.fill("#username", username)
        page.fill("#password", f"wrong guess {n}")
        page.click("#login-form button[type=submit]")
        expect(page.locator("#login-error")).to_be_visible()


@pytest.mark.parametrize(
    ("locale", "username", "wrong", "throttled"),
    [
        ("de", "carla", "Benutzername oder Passwort ist falsch.",
         "Zu viele fehlgeschlagene Anmeldeversuche"),
        ("en", "otto", "The user name or password is wrong.", "Too many failed sign-ins"),
    ],
)
def test_a_throttled_sign_in_says_how_long_to_wait(
    new_context: ContextFactory, locale: str, username: str, wrong: str, throttled: str
) -> None:
    page = new_context().new_page()
    errors = watch_errors(page)
    page.goto(f"/staff/login?lang={locale}")
    _guess(page, username, 5)
    expect(page.locator("#login-error")).to_have_text(wrong)

    _guess(page, username, 1)
    message = page.locator("#login-error")
    expect(message).to_contain_text(throttled)
    expect(message).to_contain_text("15")  # minutes
    expect(page.locator("#login-form button[type=submit]")).to_be_disabled()
    assert page.url.endswith("/staff/login") or "lang=" in page.url  # nobody signed in
    assert not errors


def test_an_open_staff_page_keeps_its_session_and_leaves_when_it_ends(
    new_context: ContextFactory, web_system: SystemProcess
) -> None:
    context = new_context()
    page = context.new_page()
    errors = watch_errors(page)
    sign_in(page, "anna")
    expect(page.locator("#staff-who")).to_have_text("Anna Schmidt")

    # Three idle times with the page open and nobody touching it: still signed in.
    page.wait_for_timeout(3 * IDLE_SECONDS * 1000)
    assert page.url.endswith("/staff")
    assert page.request.get(f"{web_system.base}/api/v1/auth/me").status == 200

    # Signed out elsewhere with the same session (its cookie copied): the page notices.
    cookie = next(c["value"] for c in context.cookies() if c["name"] == "bb_session")
    with httpx.Client(base_url=f"{web_system.base}/api/v1", timeout=10,
                      headers={"Cookie": f"bb_session={cookie}"}) as copied:
        csrf = copied.get("/auth/me").json()["csrf_token"]
        assert copied.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    page.wait_for_url("**/staff/login**", timeout=15_000)
    expect(page.locator("#session-expired")).to_be_visible()
    expect(page.locator("#session-expired")).to_have_text(
        "Ihre Sitzung ist beendet. Bitte melden Sie sich erneut an."
    )
    assert not errors
