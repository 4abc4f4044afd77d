"""Consultation starts in Chromium, one after another: knock -> admit -> two-way video.

Each round: a citizen (a fresh browser context with the fake camera) knocks on the
"demo" department through the knock page and waits; staff admit the ticket over the
API; the citizen's page moves into the consultation and joins the media room, and
the signed-in staff page opens the consultation right after (the order that made
tests/web/test_accessibility.py flaky). The round succeeds when both pages decode
frames of the other's camera (``window.bbMediaStats()``, from getStats) within
``--within`` seconds of the admit; then staff end the consultation.

Prints successes, failures (with what each page saw) and the time from the admit to
the first decoded frame on each side and to both: p50/p90/p99/max.

    .venv/bin/python bench/browser_soak.py                  # starts `buergerbuero up`, N=100
    .venv/bin/python bench/browser_soak.py -n 20
    .venv/bin/python bench/browser_soak.py --base http://127.0.0.1:8000   # a started system

Figures only: nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from figures import pct
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("BB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [  # as tests/web/conftest.py
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--no-first-run",
]
DEMO_PASSWORD = "buergerbuero"
STAFF = "anna"
# The citizens all knock from 127.0.0.1: the per-client flood limits would stop them.
NO_CLIENT_LIMITS = {
    "BB_KNOCKS_PER_CLIENT_PER_MINUTE": "0",
    "BB_WAITING_TICKETS_PER_CLIENT": "0",
    "BB_LOG_LEVEL": "WARNING",
}
FRAMES_OF = """async (role) => {
  if (!window.bbMediaStats) return -1;
  const mine = (await window.bbMediaStats()).filter(
    (s) => s.direction === "inbound" && s.role === role && s.source === "camera");
  return mine.length ? Math.max(...mine.map((s) => s.framesDecoded)) : -1;
}"""


@dataclass
class Round:
    ok: bool
    citizen_s: float | None = None
    staff_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_system(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "BB_DATA_DIR": str(workdir / "data"), **NO_CLIENT_LIMITS}
    env.pop("BB_NATS_URL", None)  # `up` starts its embedded NATS
    log = (workdir / "server.log").open("ab")
    child = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a loaded machine: readiness waits for the consumers
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"the system exited; see {workdir / 'server.log'}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return child, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    child.terminate()
    tail = (workdir / "server.log").read_text()[-2000:]
    raise SystemExit(f"the system did not become ready in 300 s:\n{tail}")


def demo_department(base: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for department in httpx.get(f"{base}/api/v1/departments", timeout=10).json():
            if department["slug"] == "demo" and department["open"]:
                return str(department["id"])
        time.sleep(0.5)
    raise SystemExit("the demo department did not open")


class Staff:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=f"{base}/api/v1", timeout=15)
        response = self.http.post(
            "/auth/login", json={"username": STAFF, "password": DEMO_PASSWORD}
        )
        response.raise_for_status()
        self.csrf = response.json()["csrf_token"]

    def post(self, path: str) -> httpx.Response:
        return self.http.post(path, headers={"X-CSRF-Token": self.csrf})


def context_options(base: str) -> dict[str, Any]:
    return {"base_url": base, "locale": "de-DE", "permissions": ["camera", "microphone"]}


def signed_in_staff_page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.goto("/staff/login")
    page.fill("#username", STAFF)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/staff")
    return page


def frames(page: Page, role: str) -> int:
    try:
        return int(page.evaluate(FRAMES_OF, role))
    except Exception:  # the page navigates: not yet
        return -1


def console_keeper(lines: list[str]) -> Callable[[ConsoleMessage], None]:
    started = time.monotonic()

    def keep(message: ConsoleMessage) -> None:
        lines.append(f"+{time.monotonic() - started:.2f}s {message.type}: {message.text}"[:300])

    return keep


def one_round(
    citizen_context: BrowserContext, staff_page: Page, staff: Staff, demo: str, within: float
) -> Round:
    citizen = citizen_context.new_page()
    # Each page's console of this round, kept for the report if the round fails.
    consoles: dict[str, list[str]] = {"citizen": [], "staff": []}
    listeners = {name: console_keeper(lines) for name, lines in consoles.items()}
    citizen.on("console", listeners["citizen"])
    staff_page.on("console", listeners["staff"])
    result = Round(ok=False)
    try:
        visit(citizen, staff_page, staff, demo, within, result)
    except Exception as error:  # a page that broke counts as a failure
        result.detail["error"] = repr(error)[:500]
    if not result.ok:
        for name, page in (("citizen", citizen), ("staff", staff_page)):
            try:
                result.detail[name] = page.evaluate(
                    "window.bbMediaStats ? window.bbMediaStats() : null"
                )
                result.detail[f"{name}_quality"] = page.locator("[data-slot=quality]").inner_text(
                    timeout=1000
                )
            except Exception as error:
                result.detail.setdefault(name, repr(error)[:300])
        result.detail["console"] = {name: lines[-40:] for name, lines in consoles.items()}
    staff_page.remove_listener("console", listeners["staff"])
    if "consultation" in result.detail:
        staff.post(f"/consultations/{result.detail['consultation']}/end")
    citizen.close()
    return result


def visit(
    citizen: Page, staff_page: Page, staff: Staff, demo: str, within: float, result: Round
) -> None:
    """Knock, admit, open both sides and wait for frames; fills `result` as it goes."""
    citizen.goto(f"/office/{demo}")
    citizen.fill("#display-name", "Soak")
    citizen.click("#knock-form button[type=submit]")
    citizen.wait_for_url("**/visit", timeout=30_000, wait_until="commit")
    ticket = citizen.evaluate("JSON.parse(sessionStorage.getItem('bb.ticket')).ticket_id")
    result.detail["ticket"] = ticket
    admitted = time.monotonic()
    response = staff.post(f"/tickets/{ticket}/admit")
    response.raise_for_status()
    if response.json().get("consultation_id"):
        result.detail["consultation"] = response.json()["consultation_id"]
    citizen.wait_for_url("**/visit/consultation/*", timeout=within * 1000, wait_until="commit")
    result.detail["consultation"] = citizen.url.rsplit("/", 1)[1]
    staff_page.goto(f"/staff/consultation/{result.detail['consultation']}", wait_until="commit")
    deadline = admitted + within
    while time.monotonic() < deadline and (result.citizen_s is None or result.staff_s is None):
        if result.citizen_s is None and frames(citizen, "staff") > 0:
            result.citizen_s = time.monotonic() - admitted
        if result.staff_s is None and frames(staff_page, "citizen") > 0:
            result.staff_s = time.monotonic() - admitted
        time.sleep(0.05)
    result.ok = result.citizen_s is not None and result.staff_s is not None


def report(rounds: list[Round], elapsed: float) -> None:
    ok = [r for r in rounds if r.ok]
    print(
        f"rounds {len(rounds)}: {len(ok)} succeeded, {len(rounds) - len(ok)} failed "
        f"({elapsed:.0f} s in all)"
    )

    def spread(values: list[float]) -> str:
        if not values:
            return "no samples"
        parts = [f"p{q} {pct(values, q):.2f} s" for q in (50, 90, 99)]  # type: ignore[str-format]
        return ", ".join(parts) + f", max {max(values):.2f} s (n={len(values)})"

    print(
        "first frame at the citizen (staff's camera), from the admit:",
        spread([r.citizen_s for r in ok if r.citizen_s is not None]),
    )
    print(
        "first frame at staff (the citizen's camera), from the admit:",
        spread([r.staff_s for r in ok if r.staff_s is not None]),
    )
    print(
        "both sides decoding, from the admit:",
        spread([max(r.citizen_s or 0, r.staff_s or 0) for r in ok]),
    )
    for index, r in enumerate(rounds):
        if not r.ok:
            print(
                f"failed round {index + 1}: citizen {r.citizen_s}, staff {r.staff_s}: "
                f"{json.dumps(r.detail)[:8000]}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100, help="rounds (default 100)")
    parser.add_argument("--within", type=float, default=10.0, help="seconds for both first frames")
    parser.add_argument("--base", help="a started system's base URL (else `up` is started)")
    args = parser.parse_args()
    child = None
    with tempfile.TemporaryDirectory(prefix="bb-soak-") as tmp:
        base = args.base
        if base is None:
            child, base = start_system(Path(tmp))
        try:
            demo = demo_department(base)
            staff = Staff(base)
            rounds: list[Round] = []
            started = time.monotonic()
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                options = context_options(base)
                staff_page = signed_in_staff_page(browser.new_context(**options))
                for index in range(args.n):
                    citizen_context = browser.new_context(**options)
                    try:
                        rounds.append(
                            one_round(citizen_context, staff_page, staff, demo, args.within)
                        )
                    finally:
                        citizen_context.close()
                    last = rounds[-1]
                    print(
                        f"round {index + 1}: {'ok' if last.ok else 'FAILED'} "
                        f"citizen {last.citizen_s} staff {last.staff_s}",
                        flush=True,
                    )
                browser.close()
            report(rounds, time.monotonic() - started)
            if child is not None and not all(r.ok for r in rounds):
                kept = ROOT / "var" / f"browser-soak-server-{time.strftime('%Y%m%dT%H%M%S')}.log"
                kept.parent.mkdir(exist_ok=True)
                shutil.copyfile(Path(tmp) / "server.log", kept)
                print(f"the server's log of this run: {kept}")
        finally:
            if child is not None:
                child.terminate()
                child.wait(timeout=30)


if __name__ == "__main__":
    main()
