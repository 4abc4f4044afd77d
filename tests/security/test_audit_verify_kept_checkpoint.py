"""A checkpoint kept elsewhere is always checked against an export, never sidestepped.

The forger here is the log itself gone bad (or whoever holds its signing key): it rewrites
its history, signs new checkpoints for it and hands out an export that leaves out the
checkpoint line a DPO kept. Every such export must be refused against the kept checkpoint,
by name; a genuine export, also one that starts after the kept checkpoint and carries the
consistency proof from it, passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.audit.export import export_lines, plan_export
from services.audit.verify import verify_export
from services.cli import main as cli
from services.common.contracts.queue import Knocked
from services.common.settings import Settings
from tests.audit.support import ScratchLog, entries, knocked

RECORDS = 2500
KEPT = 1400  # the checkpoint a DPO kept, e.g. from AuditCheckpointSigned


@pytest.fixture
def history() -> list[Knocked]:
    return [knocked(i + 1) for i in range(RECORDS)]


@pytest.fixture
def log(tmp_path: Path, history: list[Knocked]) -> ScratchLog:
    genuine = ScratchLog(tmp_path / "genuine")
    for first in range(0, RECORDS, 700):  # checkpoints 700, 1400, 2100, 2500
        genuine.store.append(entries(history[first:first + 700]))
        genuine.checkpointer.sign_if_grown()
    return genuine


def same_key_log(log: ScratchLog, directory: Path) -> ScratchLog:
    """A log in another store that signs with the genuine log's key (the key holder forges)."""
    directory.mkdir()
    (directory / "audit-signing.key").write_text(log.checkpointer.signer.encode() + "\n")
    other = ScratchLog(directory)
    assert other.key.encode() == log.key.encode()
    return other


@pytest.fixture
def forged(log: ScratchLog, tmp_path: Path) -> ScratchLog:
    """Another history of the same log, signed with the log's own key, with no checkpoint
    at the kept size (the line a verifier looked for is simply not there)."""
    other = same_key_log(log, tmp_path / "forged")
    for size in (700, 2100, RECORDS):  # signed at 700, 2100 and 2500, never at 1400
        other.fill(size - other.store.size, start_position=other.store.size + 1)
    return other


def kept_note(log: ScratchLog, size: int = KEPT) -> str:
    (note,) = [n for s, n in log.store.checkpoints(size, size)]
    return note


def export(log: ScratchLog, start: int = 0, consistency_from: int | None = None) -> list[bytes]:
    if consistency_from is None:
        plan = plan_export(log.store, log.checkpointer, start)
    else:
        plan = plan_export(log.store, log.checkpointer, start, consistency_from=consistency_from)
    return list(export_lines(log.store, log.checkpointer, plan))


def without_checkpoint(lines: list[bytes], size: int) -> list[bytes]:
    def signs(line: bytes) -> bool:
        if not line.startswith(b'{"@kind":"checkpoint"'):
            return False
        return json.loads(line)["note"].split("\n")[1] == str(size)

    kept = [line for line in lines if not signs(line)]
    assert len(kept) == len(lines) - 1
    return kept


def test_a_rewritten_history_without_the_kept_line_is_refused(
    log: ScratchLog, forged: ScratchLog
) -> None:
    lines = export(forged)
    assert verify_export(lines, log.key).ok  # signed by the log's key: fine on its own
    report = verify_export(lines, log.key, trusted=kept_note(log))
    assert not report.ok
    assert report.checkpoint == KEPT
    assert "kept checkpoint of size 1400" in (report.failure or "")
    assert "another root" in (report.failure or "")

    genuine = export(log)
    assert verify_export(genuine, log.key, trusted=kept_note(log)).ok
    # the genuine export without that line: the kept root is recomputed, not looked up
    assert verify_export(without_checkpoint(genuine, KEPT), log.key, trusted=kept_note(log)).ok


def test_one_record_rewritten_and_re_signed_without_the_kept_line_is_refused(
    log: ScratchLog, history: list[Knocked], tmp_path: Path
) -> None:
    """The genuine history with record 10 exchanged, re-signed from there on with the
    log's key, no checkpoint at the kept size: every signature verifies, yet it is refused."""
    rewritten = list(history)
    rewritten[10] = knocked(11)  # another ticket in record 10's place
    other = same_key_log(log, tmp_path / "rewritten")
    for first, last in ((0, 700), (700, 2100), (2100, RECORDS)):
        other.store.append(entries(rewritten[first:last]))
        other.checkpointer.sign_if_grown()
    lines = export(other)
    assert verify_export(lines, log.key).ok
    report = verify_export(lines, log.key, trusted=kept_note(log))
    assert not report.ok and report.checkpoint == KEPT
    assert "another root" in (report.failure or "")


def test_a_kept_checkpoint_before_the_export_without_a_proof_is_refused(
    log: ScratchLog,
) -> None:
    lines = export(log, start=2100)
    assert verify_export(lines, log.key).ok
    report = verify_export(lines, log.key, trusted=kept_note(log))
    assert not report.ok and report.checkpoint == KEPT
    assert "cannot be verified against it" in (report.failure or "")
    assert "consistency_from=1400" in (report.failure or "")
    # and one the export ends before: it may have been cut
    plan = plan_export(log.store, log.checkpointer, 0, 700)
    early = list(export_lines(log.store, log.checkpointer, plan))
    report = verify_export(early, log.key, trusted=kept_note(log))
    assert not report.ok and "before the kept checkpoint of size 1400" in (report.failure or "")


def test_a_kept_checkpoint_before_the_export_with_its_proof_passes(log: ScratchLog) -> None:
    lines = export(log, start=2100, consistency_from=KEPT)
    report = verify_export(lines, log.key, trusted=kept_note(log))
    assert report.ok, report.failure
    assert report.start == 2100


def test_a_forged_export_after_the_kept_checkpoint_fails_its_proof(
    log: ScratchLog, forged: ScratchLog
) -> None:
    lines = export(forged, start=2100, consistency_from=KEPT)
    assert verify_export(lines, log.key).ok
    report = verify_export(lines, log.key, trusted=kept_note(log))
    assert not report.ok and report.checkpoint == KEPT
    assert "does not extend the kept checkpoint of size 1400" in (report.failure or "")
    # nor can the forger borrow the genuine log's proof: it does not lead to the forged root
    genuine_proof = json.loads(export(log, 2100, KEPT)[1])
    assert genuine_proof["@kind"] == "consistency"
    lines[1] = json.dumps(genuine_proof).encode() + b"\n"
    assert not verify_export(lines, log.key, trusted=kept_note(log)).ok


def test_the_cli_refuses_a_forgery_and_takes_a_proof_given_beside_the_export(
    log: ScratchLog, forged: ScratchLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, kept = tmp_path / "log.vkey", tmp_path / "kept.txt"
    key.write_text(log.key.encode())
    kept.write_text(kept_note(log))
    forgery = tmp_path / "forged.jsonl"
    forgery.write_bytes(b"".join(export(forged)))
    assert cli(["audit", "verify", str(forgery), "--key", str(key), "--checkpoint", str(kept)]) == 1
    assert "kept checkpoint of size 1400" in capsys.readouterr().out

    later = tmp_path / "later.jsonl"
    later.write_bytes(b"".join(export(log, start=2100)))
    assert cli(["audit", "verify", str(later), "--key", str(key), "--checkpoint", str(kept)]) == 1
    assert "cannot be verified against it" in capsys.readouterr().out
    # the proof as /api/v1/audit/proof/consistency?first=1400&second=2500 answers it
    line = json.loads(export(log, 2100, KEPT)[1])
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps({k: line[k] for k in ("first", "second", "proof")}))
    assert cli(["audit", "verify", str(later), "--key", str(key), "--checkpoint", str(kept),
                "--consistency-proof", str(proof)]) == 0
    assert "extending the kept checkpoint" in capsys.readouterr().out


def test_the_signing_key_can_live_outside_the_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.audit.signing import SigningKeyError, load_signer

    key_file = tmp_path / "secrets" / "audit.key"
    assert cli(["audit", "keygen", "--origin", "buergerbuero.local/audit",
                "--key-file", str(key_file)]) == 0
    assert f"BB_AUDIT_SIGNING_KEY_FILE={key_file}" in capsys.readouterr().out
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert cli(["audit", "keygen", "--key-file", str(key_file)]) == 2  # never replaced

    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, audit_signing_key_file=key_file)
    signer = load_signer(settings)
    assert signer.encode() == key_file.read_text().strip()
    assert not (data_dir / "audit-signing.key").exists()

    missing = Settings(data_dir=data_dir, audit_signing_key_file=tmp_path / "nowhere.key")
    with pytest.raises(SigningKeyError, match="audit keygen --key-file"):
        load_signer(missing)
