"""Refresh docs/screenshots/: every page state, in German and English, at 320 px and at
desktop width.

    .venv/bin/python scripts/screenshots.py [target folder]

The pictures come from the browser test that walks every page state and checks that it
fits a 320 px phone (tests/web/test_pages_people.py::test_every_page_state_fits_320_px,
Debian's Chromium through Playwright, the whole system started as `make up` starts it):
the same walk, so a state that stops working fails here too instead of leaving an old
picture behind. Files are named <state>-<de|en>-<320|desktop>.png.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WALK = "tests/web/test_pages_people.py::test_every_page_state_fits_320_px"


def main(argv: list[str]) -> int:
    target = Path(argv[1]).resolve() if len(argv) > 1 else ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BB_SCREENSHOTS": str(target)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", WALK]
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)  # noqa: S603
    pictures = sorted(target.glob("*-320.png"))
    print(f"{len(pictures)} page states at 320 px (and at desktop width) in {target}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
