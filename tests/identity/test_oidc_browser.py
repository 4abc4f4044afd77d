"""A staff member signs in through the provider's own page in Debian's Chromium (Playwright),
works on the staff pages, and signs out here and at the provider; the sign-in page with the
provider's button is axe-clean in German and English."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, expect, sync_playwright

from tests.conftest import SystemProcess
from tests.identity.conftest import STAFF_HOST
from tests.identity.provider import Provider
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (Debian package 'chromium')")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_sign_in_through_the_providers_page_and_out_again(
        browser: Browser, oidc_system: SystemProcess, provider: Provider) -> None:
    sub = f"kim-{uuid.uuid4().hex[:6]}"
    provider.set_user(sub, preferred_username=sub, name="Kim Kataster", groups=["bb-kataster"])
    # The staff host: Chromium resolves every *.localhost name to loopback by itself.
    staff = f"http://{STAFF_HOST}:{oidc_system.port}"
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{staff}/staff/login?lang=en")
    button = page.get_by_role("link", name="Sign in with Kreis-SSO")
    expect(button).to_be_visible()
    expect(page.get_by_role("textbox", name="User name")).to_be_visible()  # local: on here
    button.click()

    page.wait_for_url(re.compile(re.escape(provider.issuer) + r"/oauth2/authorize"))
    page.locator("input[name=sub]").fill(sub)
    page.get_by_role("button", name="Authorize").click()

    page.wait_for_url(f"{staff}/staff")
    expect(page.locator("#staff-who")).to_have_text("Kim Kataster")
    cookies = {c["name"]: c for c in context.cookies(staff)}
    assert cookies["bb_session"]["httpOnly"] and cookies["bb_session"]["sameSite"] == "Strict"

    page.locator("#sign-out").click()
    page.wait_for_url(re.compile(re.escape(provider.issuer) + r"/oauth2/end_session"))
    assert provider.guard.end_session_hints, "the provider was not asked to end its session"
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(re.compile(re.escape(staff) + r"/staff/login"))
    expect(page.locator("#signed-out")).to_be_visible()
    assert "bb_session" not in {c["name"] for c in context.cookies(staff)}
    page.goto(f"{staff}/staff")
    page.wait_for_url(re.compile(r"/staff/login"))
    context.close()


@pytest.mark.parametrize("lang, text", [("de", "Anmelden mit Kreis-SSO"),
                                        ("en", "Sign in with Kreis-SSO")])
def test_the_sign_in_page_with_the_provider_is_accessible(
        browser: Browser, oidc_system: SystemProcess, lang: str, text: str) -> None:
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    page.goto(f"http://{STAFF_HOST}:{oidc_system.port}/staff/login?lang={lang}"
              "&oidc_error=no_access")
    expect(page.get_by_role("link", name=text)).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(
        "Bürgerbüro" if lang == "de" else "citizens' office")
    expect(page.get_by_role("link", name=text)).to_be_focused()
    violations = Axe().run(page, options=WCAG).response["violations"]
    assert not violations, [(v["id"], v["help"]) for v in violations]
    context.close()
