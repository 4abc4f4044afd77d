"""``buergerbuero audit``: verify an export offline, make a signing key."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from services.audit.note import KeyFormatError, SignerKey, VerifierKey
from services.audit.verify import ConsistencyProof, VerificationFailed, verify_export
from services.common.files import create_private_file


def read_key(value: str) -> VerifierKey:
    """A verifier key given inline or as the path of a file that holds it."""
    path = Path(value)
    text = path.read_text().strip() if path.is_file() else value.strip()
    return VerifierKey.parse(text)


def read_consistency_proof(path: Path) -> ConsistencyProof:
    """The JSON answer of ``/api/v1/audit/proof/consistency?first=&second=``, saved to a file."""
    try:
        value = json.loads(path.read_text())
    except ValueError:
        raise VerificationFailed(f"{path} is not JSON") from None
    if not isinstance(value, dict):
        raise VerificationFailed(f"{path} is not a JSON object")
    return ConsistencyProof.parse(value)


def verify_command(export: Path, key: str, checkpoint: Path | None = None,
                   as_json: bool = False, consistency_proof: Path | None = None) -> int:
    try:
        verifier = read_key(key)
    except (KeyFormatError, OSError) as error:
        print(f"error: the key: {error}", file=sys.stderr)
        return 2
    try:
        trusted = checkpoint.read_text() if checkpoint else None
        proof = read_consistency_proof(consistency_proof) if consistency_proof else None
    except (OSError, VerificationFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with export.open("rb") as lines:
        report = verify_export(lines, verifier, trusted, proof)
    seconds = time.perf_counter() - started
    if as_json:
        print(json.dumps({**report.as_dict(), "seconds": round(seconds, 3)}))
    elif report.ok:
        print(f"OK: records {report.start}..{report.end - 1} ({report.records}) verified "
              f"against {len(report.checkpoints)} signed checkpoint(s), the last of size "
              f"{report.checkpoints[-1]}, in {seconds:.2f}s"
              + (", extending the kept checkpoint" if trusted else ""))
    else:
        where = f" (line {report.line})" if report.line else ""
        print(f"FAILED{where}: {report.failure}")
    return 0 if report.ok else 1


def keygen_command(origin: str, key_file: Path | None = None) -> int:
    """Print a new key, or write it to ``key_file`` (0600, never over an existing file)."""
    key = SignerKey.generate(origin)
    if key_file is None:
        print(f"BB_AUDIT_SIGNING_KEY={key.encode()}")
    else:
        if key_file.exists():
            print(f"error: {key_file} exists; a log's key is never replaced", file=sys.stderr)
            return 2
        written = create_private_file(key_file, key.encode() + "\n")
        key = SignerKey.parse(written.strip())
        print(f"BB_AUDIT_SIGNING_KEY_FILE={key_file.resolve()}")
    print(f"BB_AUDIT_ORIGIN={origin}")
    print(f"# verifier key (publish it): {key.verifier().encode()}")
    return 0
