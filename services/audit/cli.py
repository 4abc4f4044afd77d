"""``buergerbuero audit``: verify an export offline, make a signing key."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from services.audit.note import KeyFormatError, SignerKey, VerifierKey
from services.audit.verify import verify_export


def read_key(value: str) -> VerifierKey:
    """A verifier key given inline or as the path of a file that holds it."""
    path = Path(value)
    text = path.read_text().strip() if path.is_file() else value.strip()
    return VerifierKey.parse(text)


def verify_command(export: Path, key: str, checkpoint: Path | None = None,
                   as_json: bool = False) -> int:
    try:
        verifier = read_key(key)
    except (KeyFormatError, OSError) as error:
        print(f"error: the key: {error}", file=sys.stderr)
        return 2
    trusted = checkpoint.read_text() if checkpoint else None
    started = time.perf_counter()
    with export.open("rb") as lines:
        report = verify_export(lines, verifier, trusted)
    seconds = time.perf_counter() - started
    if as_json:
        print(json.dumps({**report.as_dict(), "seconds": round(seconds, 3)}))
    elif report.ok:
        print(f"OK: records {report.start}..{report.end - 1} ({report.records}) verified "
              f"against {len(report.checkpoints)} signed checkpoint(s), the last of size "
              f"{report.checkpoints[-1]}, in {seconds:.2f}s")
    else:
        where = f" (line {report.line})" if report.line else ""
        print(f"FAILED{where}: {report.failure}")
    return 0 if report.ok else 1


def keygen_command(origin: str) -> int:
    key = SignerKey.generate(origin)
    print(f"BB_AUDIT_SIGNING_KEY={key.encode()}")
    print(f"BB_AUDIT_ORIGIN={origin}")
    print(f"# verifier key (publish it): {key.verifier().encode()}")
    return 0
