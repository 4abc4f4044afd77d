"""Browser tests: the real system in a child process, Debian's Chromium driven by Playwright.

``playwright install`` is never run: the browser is /usr/bin/chromium (Debian package
``chromium``, listed in scripts/test-packages.txt), with a fake camera and microphone.
Every request a page makes is recorded; a test fails if one leaves the app's origin or
if a page comes without the Content-Security-Policy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.helpers import DEMO_PASSWORD, StaffClient, open_department

CHROMIUM = os.environ.get("BB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    # WebRTC on a machine with only loopback: host candidates on 127.0.0.1, no mDNS names
    # (aioice would resolve those by multicast), and remote sound without a click.
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
EXPECTED_CSP = "default-src 'self'"


@dataclass
class Traffic:
    """What the pages of one browser context asked for."""

    origin: str
    requests: list[str] = field(default_factory=list)
    documents: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    # For the report of a failed test: what was still unanswered, what was refused, and
    # the pages' last console lines.
    pending: dict[int, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def foreign(self) -> list[str]:
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob"):
                continue
            if f"{parts.scheme}://{parts.netloc}" != self.origin:
                out.append(url)
        return out

    def documents_without_csp(self) -> list[str]:
        return [
            url
            for url, headers in self.documents
            if EXPECTED_CSP not in headers.get("content-security-policy", "")
            or "script-src 'self'" not in headers.get("content-security-policy", "")
        ]


def _start_system(base: Path) -> tuple[EmbeddedNats, SystemProcess]:
    nats = EmbeddedNats(base / "nats")
    nats.start()
    # As `make up` runs on a machine with two cores: the process tree, so the pages,
    # streams and media sockets are tested through the queue processes' forwarding.
    processes = os.environ.get("BB_TEST_QUEUE_PROCESSES", "2")
    system = SystemProcess(base / "data", nats.url, args=["up", "--queue-processes", processes])
    system.start()
    return nats, system


@pytest.fixture(scope="module")
def web_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    """One whole system (embedded NATS, SQLite, demo district) for a test module."""
    nats, system = _start_system(tmp_path_factory.mktemp("web"))
    yield system
    system.stop()
    nats.stop()


# Package scope, not session: while the sync API is started, Playwright keeps its event
# loop marked as running in the main thread (between calls as well), so asyncio.run() and
# pytest-asyncio's runners fail in any test that runs then. Scoped to tests/web, the
# driver is stopped as soon as the last browser test of this package is done, before the
# tests of other packages in the same session.
@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package 'chromium')")
    with sync_playwright() as driver:
        yield driver
    # Stopped, the driver must not leave its loop behind for the tests that follow.
    assert asyncio._get_running_loop() is None, "Playwright left a running event loop"


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


ContextFactory = Callable[..., BrowserContext]


@pytest.fixture
def new_context(browser: Browser, web_system: SystemProcess) -> Iterator[ContextFactory]:
    """Browser contexts (separate cookies and storage) whose traffic is checked at the end."""
    made: list[tuple[BrowserContext, Traffic]] = []

    def make(
        locale: str = "de-DE", viewport: dict[str, int] | None = None, **extra: Any
    ) -> BrowserContext:
        context = browser.new_context(
            base_url=web_system.base,
            locale=locale,
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            permissions=["camera", "microphone"],
            **extra,
        )
        context.set_default_timeout(15_000)
        traffic = Traffic(origin=web_system.base)
        started = time.monotonic()

        def on_request(request: Any) -> None:
            traffic.requests.append(request.url)
            traffic.pending[id(request)] = (
                f"+{time.monotonic() - started:.1f}s {request.method} {request.url}"
            )

        def on_response(response: Any) -> None:
            if response.request.resource_type == "document":
                traffic.documents.append((response.url, response.all_headers()))
            if response.status >= 400:
                request = response.request
                traffic.refused.append(f"{response.status} {request.method} {response.url}")

        def on_page(page: Page) -> None:
            page.on("console", lambda message: traffic.console.append(
                f"+{time.monotonic() - started:.1f}s {message.type}: {message.text}"[:300]))

        context.on("request", on_request)
        for done in ("requestfinished", "requestfailed"):
            context.on(done, lambda request: traffic.pending.pop(id(request), None))
        context.on("response", on_response)
        context.on("page", on_page)
        made.append((context, traffic))
        return context

    make.made = made  # type: ignore[attr-defined]  # read by pytest_runtest_makereport
    yield make
    problems = []
    for context, traffic in made:
        context.close()
        problems += [f"request to another origin: {url}" for url in traffic.foreign()]
        problems += [f"page without CSP: {url}" for url in traffic.documents_without_csp()]
    assert not problems, problems


def pages_at_the_failure(made: list[tuple[BrowserContext, Traffic]]) -> str:
    """Each open page's address and accessibility tree, the requests still unanswered or
    refused, and the last console lines: what a flaky failure needs to be explained."""
    out = []
    for number, (context, traffic) in enumerate(made, 1):
        for page in context.pages:
            try:
                tree = page.locator("body").aria_snapshot(timeout=2_000)
            except Exception as error:  # a page that is closing or navigating
                tree = f"(no snapshot: {error!r})"[:300]
            out.append(f"context {number}, page {page.url}:\n{tree}")
        out.append(f"context {number}, requests unanswered: {list(traffic.pending.values())}")
        out.append(f"context {number}, answered >= 400: {traffic.refused[-20:]}")
        out.append(f"context {number}, console (last 30):\n" + "\n".join(traffic.console[-30:]))
    return "\n\n".join(out)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    factory = getattr(item, "funcargs", {}).get("new_context")
    if report.when == "call" and report.failed and factory is not None:
        try:
            seen = pages_at_the_failure(factory.made)
        except Exception as error:  # the report of the failure itself must not fail
            seen = f"(not recorded: {error!r})"
        report.sections.append(("pages at the failure", seen))
    return report


def watch_errors(page: Page) -> list[str]:
    """JavaScript errors and CSP violations of a page (they show up on the console)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))

    def on_console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            errors.append(f"csp: {message.text}")

    page.on("console", on_console)
    return errors


INBOUND_FRAMES = """async ([role, source]) => {
  if (!window.bbMediaStats) return -1;
  const stats = await window.bbMediaStats();
  const mine = stats.filter(
    (s) => s.direction === "inbound" && s.role === role && s.source === source,
  );
  return mine.length ? Math.max(...mine.map((s) => s.framesDecoded)) : -1;
}"""


def frames_decoded(page: Page, role: str, source: str = "camera") -> int:
    """framesDecoded of the page's inbound video from `role` (-1: no such track yet)."""
    return int(page.evaluate(INBOUND_FRAMES, [role, source]))


def expect_video_moving(page: Page, role: str, source: str = "camera", timeout: float = 25) -> None:
    """The page decodes frames of `role`'s video, and more a moment later (WebRTC stats)."""
    deadline = time.monotonic() + timeout
    first = -1
    while time.monotonic() < deadline:
        first = frames_decoded(page, role, source)
        if first > 0:
            break
        page.wait_for_timeout(250)
    assert first > 0, f"no {source} frames from {role} decoded"
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        if frames_decoded(page, role, source) > first:
            return
    raise AssertionError(f"{source} video of {role} does not move")


def sign_in(page: Page, username: str = "anna") -> None:
    page.goto("/staff/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/dpo" if username == "dora" else "**/staff")  # a DPO lands on the log


def staff_api(system: SystemProcess, username: str = "anna") -> StaffClient:
    return StaffClient(f"{system.base}/api/v1", username)


def demo_id(system: SystemProcess) -> str:
    with system.client() as client:
        return open_department(client, "demo")
