"""The staff camera's frame rate with a background effect, against the plain camera.

Issue 15 asks that blur on a PC without a graphics card (WebGL in SwiftShader, as here:
headless Chromium with ``--disable-gpu``) keeps at least 15 fps at the other side, or
steps down and says so. This measures it the way a consultation runs: a citizen knocks
and is admitted over the API, the signed-in staff page opens the consultation in
Chromium with the fake camera, and an interpreter joins through the invitation page to
look at what staff send. Then, in one run, for each background in turn — ``none`` (the
baseline: the plain camera, same pages, same moment), ``blur``, ``image`` — the script
chooses it on the staff page, waits until the page has said where the effect settled,
lets the effect adapt for ``--settle`` seconds and measures ``--windows`` windows of
``--window`` seconds:

- sent: frames the staff page encoded per second (outbound-rtp framesEncoded);
- received: frames the interpreter's page decoded of the staff camera per second;
- the level the effect was on after each window (full, reduced, colour, off: the page's
  words), so a step down while measured shows as "full>off".

Each run uses a new consultation; ``--hogs N`` starts N busy-looping processes beside
it (a PC that is busy with other things). Prints every window, then per background the
median over the runs of each run's median, the range, and the ratio to the same run's
plain camera.

``--recovery`` adds, to each run, the way back up: blur again, then ``--busy-hogs``
processes for ``--busy`` seconds (the effect steps down), then ``--calm`` seconds
without them, the level read every second. It prints where the effect was before, the
lowest level it reached, how long after the busy processes ended it first stepped up
and when it was back where it had been, and the frame rate received in the calm's last
``--windows`` windows beside the same run's plain camera.

    .venv/bin/python bench/blur_fps.py                    # 3 runs, idle machine
    .venv/bin/python bench/blur_fps.py --hogs 2 --json blur.json
    .venv/bin/python bench/blur_fps.py --recovery

Figures only: nothing here asserts a frame rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from browser_soak import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    Staff,
    context_options,
    demo_department,
    frames,
    signed_in_staff_page,
    start_system,
)
from playwright.sync_api import Browser, Page, sync_playwright

sys.path.insert(0, str(ROOT))
from tests.web.test_background import BLUR_STATES, RENDERER  # the page's words

BACKGROUNDS = ("none", "blur", "image")
PLAIN = "Ihr Kamerabild wird unverändert gesendet."
# Frames the staff page encoded of its camera (received: browser_soak.frames).
SENT = """async () => {
  const stats = window.bbMediaStats ? await window.bbMediaStats() : [];
  const sent = stats.filter((s) => s.direction === "outbound" && s.frameWidth > 0);
  return Math.max(0, ...sent.map((s) => s.framesEncoded));
}"""


@dataclass
class Measured:
    background: str
    levels: list[str] = field(default_factory=list)  # where the effect was after each window
    sent_fps: list[float] = field(default_factory=list)
    received_fps: list[float] = field(default_factory=list)

    @property
    def level(self) -> str:
        """The levels it went through while measured, as "full>off"."""
        return ">".join(dict.fromkeys(self.levels))

    @property
    def received(self) -> float:
        return statistics.median(self.received_fps) if self.received_fps else 0.0

    @property
    def sent(self) -> float:
        return statistics.median(self.sent_fps) if self.sent_fps else 0.0


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)
    ]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def admitted_consultation(base: str, staff: Staff, demo: str) -> str:
    with httpx.Client(base_url=f"{base}/api/v1", timeout=15) as citizen:
        ticket = citizen.post(
            f"/departments/{demo}/knock", json={"language": "de", "display_name": "Bench"}
        ).raise_for_status().json()
        staff.post(f"/tickets/{ticket['ticket_id']}/admit").raise_for_status()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = citizen.get(
                f"/tickets/{ticket['ticket_id']}",
                headers={"Authorization": f"Bearer {ticket['token']}"},
            ).json()
            if answer.get("consultation_id"):
                return str(answer["consultation_id"])
            time.sleep(0.2)
    raise SystemExit("the admitted ticket got no consultation in 30 s")


def wait_for_frames(page: Page, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if frames(page, "staff") > 0:
            return
        page.wait_for_timeout(250)
    raise SystemExit("the guest decoded no frame of the staff camera")


def settled_level(staff: Page, background: str) -> str:
    status = staff.locator("[data-slot=background-status]")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = status.inner_text()
        if background == "none" and text in ("", PLAIN):  # empty: none chosen yet
            return "none"
        if background != "none" and text in BLUR_STATES:
            return BLUR_STATES[text]
        staff.wait_for_timeout(200)
    raise SystemExit(f"the background status did not settle: {status.inner_text()!r}")


def measure(staff: Page, guest: Page, background: str, args: argparse.Namespace) -> Measured:
    staff.check(f"input[name=background][value={background}]")
    settled_level(staff, background)
    staff.wait_for_timeout(args.settle * 1000)
    result = Measured(background=background)
    for _ in range(args.windows):
        sent, received, started = staff.evaluate(SENT), frames(guest, "staff"), time.monotonic()
        staff.wait_for_timeout(args.window * 1000)
        sent_after, received_after = staff.evaluate(SENT), frames(guest, "staff")
        seconds = time.monotonic() - started
        result.sent_fps.append(round((sent_after - sent) / seconds, 2))
        result.received_fps.append(round((received_after - received) / seconds, 2))
        result.levels.append(settled_level(staff, background))
    return result


LADDER = ("off", "colour", "reduced", "full")


@dataclass
class Recovery:
    before: str  # where blur had settled before the busy processes
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (s after busy, level)
    received_fps: list[float] = field(default_factory=list)  # the calm's last windows

    @property
    def lowest(self) -> str:
        return min((level for _, level in self.timeline), key=LADDER.index, default="")

    def first_step_up(self) -> float | None:
        """Seconds after the busy processes ended until a level above the lowest."""
        lowest = LADDER.index(self.lowest)
        return next((t for t, level in self.timeline if t >= 0 and LADDER.index(level) > lowest),
                    None)

    def back(self) -> float | None:
        """Seconds after the busy processes ended until the level it had before."""
        return next((t for t, level in self.timeline
                     if t >= 0 and LADDER.index(level) >= LADDER.index(self.before)), None)


def recovery(staff: Page, guest: Page, args: argparse.Namespace) -> Recovery:
    staff.check("input[name=background][value=blur]")
    result = Recovery(before=settled_level(staff, "blur"))
    staff.wait_for_timeout(args.settle * 1000)
    result.before = settled_level(staff, "blur")
    status = staff.locator("[data-slot=background-status]")

    def sample_until(start: float, seconds: float, offset: float) -> None:
        while (elapsed := time.monotonic() - start) < seconds:
            result.timeline.append((round(elapsed - offset, 1),
                                    BLUR_STATES.get(status.inner_text(), "off")))
            staff.wait_for_timeout(1000)

    with busy_processes(args.busy_hogs):
        sample_until(time.monotonic(), args.busy, args.busy)
    sample_until(time.monotonic(), args.calm, 0)
    for _ in range(args.windows):
        received, started = frames(guest, "staff"), time.monotonic()
        staff.wait_for_timeout(args.window * 1000)
        result.received_fps.append(
            round((frames(guest, "staff") - received) / (time.monotonic() - started), 2))
    return result


def one_run(browser: Browser, base: str, staff: Staff, demo: str,
            args: argparse.Namespace) -> tuple[list[Measured], Recovery | None]:
    consultation = admitted_consultation(base, staff, demo)
    options = context_options(base)
    staff_context, guest_context = browser.new_context(**options), browser.new_context(**options)
    try:
        page = signed_in_staff_page(staff_context)
        renderer = page.evaluate(RENDERER)
        page.goto(f"/staff/consultation/{consultation}")
        page.locator("[data-action=mute]").wait_for(state="visible", timeout=30_000)
        invitation = staff.post(f"/consultations/{consultation}/invitations").json()
        guest = guest_context.new_page()
        guest.goto(invitation["link"].replace(base, ""))
        guest.fill("#guest-name", "Bench")
        guest.click("#invite-form button[type=submit]")
        wait_for_frames(guest)
        print(f"  WebGL: {renderer}", flush=True)
        found = []
        for background in BACKGROUNDS:
            found.append(measure(page, guest, background, args))
            last = found[-1]
            print(f"  {background:5} level {last.level:12} sent {last.sent_fps} "
                  f"received {last.received_fps}", flush=True)
        back_up = recovery(page, guest, args) if args.recovery else None
        if back_up:
            changes = [(t, level) for n, (t, level) in enumerate(back_up.timeline)
                       if n == 0 or back_up.timeline[n - 1][1] != level]
            print(f"  recovery: before {back_up.before}, levels {changes}, "
                  f"received after {back_up.received_fps}", flush=True)
        staff.post(f"/consultations/{consultation}/end")
        return found, back_up
    finally:
        staff_context.close()
        guest_context.close()


def report_recovery(runs: list[list[Measured]], recoveries: list[Recovery]) -> None:
    print("\nthe way back up (seconds after the busy processes ended; - : not within --calm)")
    for number, (run, back_up) in enumerate(zip(runs, recoveries, strict=True), start=1):
        plain = run[0].received
        received = statistics.median(back_up.received_fps)
        first, back = back_up.first_step_up(), back_up.back()
        print(f"run {number}: before {back_up.before}, lowest {back_up.lowest}, first step "
              f"up {'-' if first is None else f'{first:.0f} s'}, back at {back_up.before} "
              f"{'-' if back is None else f'{back:.0f} s'}; received {received:.1f} fps "
              f"({received / plain if plain else 0:.2f} x the plain camera {plain:.1f})")


def report(runs: list[list[Measured]]) -> None:
    print(f"\n{len(runs)} runs; per background: median of the runs' medians (range), "
          "and the ratio to the same run's plain camera")
    for index, background in enumerate(BACKGROUNDS):
        rows = [run[index] for run in runs]
        received = [r.received for r in rows]
        sent = [r.sent for r in rows]
        ratios = [r.received / run[0].received for r, run in zip(rows, runs, strict=True)
                  if run[0].received]
        levels = ", ".join(r.level for r in rows)
        print(f"{background:5}: received {statistics.median(received):.1f} fps "
              f"({min(received):.1f}-{max(received):.1f}), sent "
              f"{statistics.median(sent):.1f} fps ({min(sent):.1f}-{max(sent):.1f}), "
              f"ratio {statistics.median(ratios) if ratios else 0:.2f} "
              f"({min(ratios, default=0):.2f}-{max(ratios, default=0):.2f}); levels {levels}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=3, help="runs (default 3)")
    parser.add_argument("--hogs", type=int, default=0, help="busy processes beside it")
    parser.add_argument("--settle", type=float, default=9.0, help="seconds to adapt")
    parser.add_argument("--windows", type=int, default=3, help="windows measured")
    parser.add_argument("--window", type=float, default=5.0, help="seconds per window")
    parser.add_argument("--json", type=Path, help="write every window here")
    parser.add_argument("--recovery", action="store_true", help="measure the way back up")
    parser.add_argument("--busy-hogs", type=int, default=1, help="busy processes (recovery)")
    parser.add_argument("--busy", type=float, default=30.0, help="seconds busy (recovery)")
    parser.add_argument("--calm", type=float, default=120.0, help="seconds calm (recovery)")
    args = parser.parse_args()
    runs: list[list[Measured]] = []
    recoveries: list[Recovery] = []
    with tempfile.TemporaryDirectory(prefix="bb-blur-") as tmp:
        child, base = start_system(Path(tmp))
        try:
            demo, staff = demo_department(base), Staff(base)
            with sync_playwright() as driver, busy_processes(args.hogs):
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for number in range(1, args.runs + 1):
                    print(f"run {number} ({args.hogs} busy processes beside it)", flush=True)
                    found, back_up = one_run(browser, base, staff, demo, args)
                    runs.append(found)
                    if back_up:
                        recoveries.append(back_up)
                browser.close()
        finally:
            child.terminate()
            child.wait(timeout=30)
    report(runs)
    if recoveries:
        report_recovery(runs, recoveries)
    if args.json:
        args.json.write_text(json.dumps(
            {"hogs": args.hogs, "runs": [[asdict(m) for m in run] for run in runs],
             "recoveries": [asdict(r) for r in recoveries]}, indent=2))


if __name__ == "__main__":
    main()
