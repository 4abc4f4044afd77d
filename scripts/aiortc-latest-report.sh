#!/bin/sh
# Report, not fail: do the forwarding hooks (services/media/sfu/aiortc_internals.py)
# still fit the newest aiortc on PyPI? Installs it with its dependencies into a
# throw-away directory that shadows the pinned one (PYTHONPATH; the project's venv is
# not touched), then runs the structure checks and tests/media/test_aiortc_internals.py
# against it. Always exits 0; without network it says so.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aiortc-latest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

say() { echo "aiortc-latest report: $*"; }

if ! timeout 40 "$PY" -m pip install --quiet --disable-pip-version-check --no-input \
        --target "$WORK/site" aiortc >"$WORK/pip.log" 2>&1; then
    say "could not install the newest aiortc from PyPI (no network?); nothing checked:"
    tail -n 3 "$WORK/pip.log" | sed 's/^/    /'
    exit 0
fi

cd "$ROOT" || exit 0
PYTHONPATH="$WORK/site" timeout 30 "$PY" - <<'PYEOF' || say "the structure check itself failed (see above)"
from importlib.metadata import version
from services.media.sfu import aiortc_internals as internals
found = version("aiortc")
pinned = sorted(internals.SUPPORTED_AIORTC_VERSIONS)
problems = internals.structure_problems()
print(f"aiortc-latest report: newest aiortc {found}, pinned {pinned}")
if problems:
    print("aiortc-latest report: INTERNALS MOVED:")
    for problem in problems:
        print(f"    - {problem}")
else:
    print("aiortc-latest report: every internal the hooks use is where it was")
PYEOF

if PYTHONPATH="$WORK/site" timeout 60 "$PY" -m pytest -q -p no:cacheprovider \
        tests/media/test_aiortc_internals.py -k "not pinned_one" >"$WORK/pytest.log" 2>&1; then
    say "tests/media/test_aiortc_internals.py passes against it"
else
    say "tests/media/test_aiortc_internals.py FAILS against it (report only):"
    grep -E "^(FAILED|ERROR)|passed|failed" "$WORK/pytest.log" | tail -n 12 | sed 's/^/    /'
fi
exit 0
