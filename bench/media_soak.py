"""The long memory soak of a media room whose tracks nobody consumes.

Runs tests/media/test_memory_soak.py for the given minutes (the test suite skips
it unless MEDIA_SOAK_SECONDS is set): RSS must stay flat and aiortc's track
queues short while 640x480 video and audio arrive and are drained.

    .venv/bin/python bench/media_soak.py [--minutes 10]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    minutes = parser.parse_args().minutes
    env = {**os.environ, "MEDIA_SOAK_SECONDS": str(60 * minutes)}
    test = "tests/media/test_memory_soak.py"
    command = [sys.executable, "-m", "pytest", test, "-s", "-q", "-o", "timeout=0"]
    sys.exit(subprocess.call(command, cwd=ROOT, env=env))
