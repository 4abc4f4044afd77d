"""Tampering with an export or with the stored log is detected, and the first fault named."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from services.audit.checkpoint import Checkpoint, sign_checkpoint
from services.audit.export import export_lines, plan_export
from services.audit.merkle import leaf_hash
from services.audit.note import SignerKey
from services.audit.signing import InconsistentLogError
from services.audit.verify import verify_export, verify_stored
from services.cli import main as cli
from tests.audit.support import ScratchLog

RECORDS = 2500  # three leaves chunks, checkpoints inside and at chunk edges


@pytest.fixture
def log(tmp_path: Path) -> ScratchLog:
    log = ScratchLog(tmp_path)
    log.fill(RECORDS, sign_every=700)
    return log


def export(log: ScratchLog, proofs: bool = False) -> list[bytes]:
    plan = plan_export(log.store, log.checkpointer)
    return list(export_lines(log.store, log.checkpointer, plan, proofs))


def record_line(lines: list[bytes], index: int) -> int:
    """The line number (0-based) holding record ``index``."""
    seen = -1
    for number, line in enumerate(lines):
        if not line.startswith(b'{"@kind":'):
            seen += 1
            if seen == index:
                return number
    raise IndexError(index)


def test_an_intact_export_verifies(log: ScratchLog) -> None:
    report = verify_export(export(log), log.key)
    assert report.ok, report.failure
    assert report.records == RECORDS
    assert report.checkpoints == [700, 1400, 2100, 2500]


def test_an_export_with_proofs_verifies_record_by_record(log: ScratchLog) -> None:
    plan = plan_export(log.store, log.checkpointer, 2000, 2100)
    lines = list(export_lines(log.store, log.checkpointer, plan, proofs=True))
    assert sum(1 for line in lines if line.startswith(b'{"@kind":"proof"')) == 100
    assert verify_export(lines, log.key).ok
    number = record_line(lines, 50)
    lines[number + 1] = lines[record_line(lines, 51) + 1]  # another record's proof
    report = verify_export(lines, log.key)
    assert not report.ok and report.record == 2050


@pytest.mark.parametrize("index", [0, 1, 699, 700, 1500, RECORDS - 1])
def test_one_changed_byte_names_the_record(log: ScratchLog, index: int) -> None:
    lines = export(log)
    number = record_line(lines, index)
    lines[number] = lines[number].replace(b'"walk_in"', b'"walk_im"')
    report = verify_export(lines, log.key)
    assert not report.ok and report.record == index, report.failure


def test_a_deleted_record_is_named(log: ScratchLog) -> None:
    lines = export(log)
    del lines[record_line(lines, 1234)]
    report = verify_export(lines, log.key)
    assert not report.ok and report.record == 1234, report.failure


def test_two_swapped_records_name_the_first(log: ScratchLog) -> None:
    lines = export(log)
    a, b = record_line(lines, 300), record_line(lines, 310)
    lines[a], lines[b] = lines[b], lines[a]
    report = verify_export(lines, log.key)
    assert not report.ok and report.record == 300, report.failure


def test_rewritten_leaf_hashes_are_caught_by_the_signed_root(log: ScratchLog) -> None:
    """Someone changes a record and its listed leaf hash alike: the checkpoint names it."""
    lines = export(log)
    number = record_line(lines, 1500)
    changed = lines[number].replace(b'"walk_in"', b'"walk_im"')
    lines[number] = changed
    chunk = max(n for n in range(number) if lines[n].startswith(b'{"@kind":"leaves"'))
    meta = json.loads(lines[chunk])
    import base64

    hashes = bytearray(base64.b64decode(meta["hashes"]))
    offset = (1500 - meta["start"]) * 32
    hashes[offset:offset + 32] = leaf_hash(changed[:-1])
    meta["hashes"] = base64.b64encode(bytes(hashes)).decode()
    lines[chunk] = json.dumps(meta, separators=(",", ":")).encode() + b"\n"
    report = verify_export(lines, log.key)
    assert not report.ok and report.checkpoint == 2100, report.failure


def test_a_tail_cut_after_a_checkpoint_is_detected(log: ScratchLog) -> None:
    lines = export(log)
    cut = [line for line in lines if line.startswith(b'{"@kind":"checkpoint"')][-2]
    truncated = lines[:lines.index(cut) + 1]
    report = verify_export(truncated, log.key)
    assert not report.ok and "truncated" in (report.failure or "")
    # even with a forged header and end line, a checkpoint kept elsewhere catches it
    header = json.loads(truncated[0])
    header["end"] = 2100
    truncated[0] = json.dumps(header).encode() + b"\n"
    truncated.append(b'{"@kind":"end","records":2100}\n')
    assert verify_export(truncated, log.key).ok
    kept = log.checkpointer.latest()
    assert kept is not None
    report = verify_export(truncated, log.key, trusted=kept.note)
    assert not report.ok and report.checkpoint == RECORDS


def test_a_fork_is_named(log: ScratchLog) -> None:
    lines = export(log)
    forged_root = leaf_hash(b"another history")
    other = sign_checkpoint(Checkpoint(log.key.name, 1400, forged_root), log.checkpointer.signer)
    number = next(n for n, line in enumerate(lines) if b'\\n1400\\n' in line)
    lines.insert(number + 1, json.dumps({"@kind": "checkpoint", "note": other}).encode() + b"\n")
    report = verify_export(lines, log.key)
    assert not report.ok and report.checkpoint == 1400 and "fork" in (report.failure or "")


def test_a_checkpoint_signed_by_another_key_is_refused(log: ScratchLog) -> None:
    lines = export(log)
    stranger = SignerKey.generate(log.key.name)  # same name, another key
    _, root = log.store.root()
    note = sign_checkpoint(Checkpoint(log.key.name, RECORDS, root), stranger)
    lines[-2] = json.dumps({"@kind": "checkpoint", "note": note}).encode() + b"\n"
    report = verify_export(lines, log.key)
    assert not report.ok and "checkpoint" in (report.failure or "")


def test_a_matching_key_id_with_a_bad_signature_is_refused(log: ScratchLog) -> None:
    lines = export(log)
    note = json.loads(lines[-2])["note"]
    flipped = note[:-10] + ("A" if note[-10] != "A" else "B") + note[-9:]
    lines[-2] = json.dumps({"@kind": "checkpoint", "note": flipped}).encode() + b"\n"
    report = verify_export(lines, log.key)
    assert not report.ok and "signature" in (report.failure or "")


def test_the_cli_verifies_and_names_the_first_bad_record(log: ScratchLog, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    path = tmp_path / "export.jsonl"
    lines = export(log)
    path.write_bytes(b"".join(lines))
    key = tmp_path / "log.vkey"
    key.write_text(log.key.encode())
    assert cli(["audit", "verify", str(path), "--key", str(key)]) == 0
    assert "OK" in capsys.readouterr().out
    number = record_line(lines, 42)
    lines[number] = lines[number].replace(b"walk_in", b"walk_IN")
    path.write_bytes(b"".join(lines))
    assert cli(["audit", "verify", str(path), "--key", log.key.encode()]) == 1
    assert "record 42" in capsys.readouterr().out
    assert sys.modules["services.audit.cli"]


# -- the stored log ---------------------------------------------------------------------------

def test_the_intact_store_verifies(log: ScratchLog) -> None:
    report = verify_stored(log.store, log.key)
    assert report.ok and report.records == RECORDS, report.failure


def test_a_changed_byte_in_the_store_is_named(log: ScratchLog) -> None:
    stored = log.store.records(900, 901)[0][1]
    assert stored is not None
    log.execute("UPDATE audit_records SET data = ? WHERE idx = 900",
                (stored.replace(b"walk_in", b"walk_im"),))
    report = verify_stored(log.store, log.key)
    assert not report.ok and report.record == 900


def test_a_rewritten_record_with_its_leaf_is_caught_by_the_checkpoint(log: ScratchLog) -> None:
    stored = log.store.records(900, 901)[0][1]
    assert stored is not None
    data = stored.replace(b"walk_in", b"walk_im")
    log.execute("UPDATE audit_records SET data = ?, leaf = ? WHERE idx = 900",
                (data, leaf_hash(data)))
    report = verify_stored(log.store, log.key)
    assert not report.ok and report.checkpoint == 1400
    assert not log.checkpointer.check_store()
    with pytest.raises(InconsistentLogError):
        log.fill(1, start_position=RECORDS + 1)


def test_a_deleted_record_in_the_store_is_named(log: ScratchLog) -> None:
    log.execute("DELETE FROM audit_records WHERE idx = 1001")
    report = verify_stored(log.store, log.key)
    assert not report.ok and report.record == 1001


def test_two_swapped_records_in_the_store_are_named(log: ScratchLog) -> None:
    a, b = log.store.records(5, 6)[0], log.store.records(6, 7)[0]
    log.execute("UPDATE audit_records SET data = ?, leaf = ? WHERE idx = 5", (b[1], b[2]))
    log.execute("UPDATE audit_records SET data = ?, leaf = ? WHERE idx = 6", (a[1], a[2]))
    report = verify_stored(log.store, log.key)
    assert not report.ok and report.checkpoint == 700


def test_a_store_cut_after_a_checkpoint_is_detected(log: ScratchLog) -> None:
    log.execute("DELETE FROM audit_records WHERE idx >= 2100")
    store = log.reopen()
    report = verify_stored(store, log.key)
    assert not report.ok and report.record == 2100 and report.checkpoint == RECORDS
    with pytest.raises(InconsistentLogError):
        log.checkpointer.sign_if_grown()


def test_a_fork_or_a_forged_checkpoint_in_the_store_is_named(log: ScratchLog) -> None:
    other = sign_checkpoint(Checkpoint(log.key.name, 1400, leaf_hash(b"x")),
                            log.checkpointer.signer)
    log.store.save_checkpoint(1400, other)
    report = verify_stored(log.store, log.key)
    assert not report.ok and report.checkpoint == 1400 and "fork" in (report.failure or "")
    log.execute("DELETE FROM audit_checkpoints WHERE note = ?", (other,))
    forged = sign_checkpoint(Checkpoint(log.key.name, 2100, leaf_hash(b"y")),
                             SignerKey.generate(log.key.name))
    log.execute("UPDATE audit_checkpoints SET note = ? WHERE size = 2100", (forged,))
    report = verify_stored(log.store, log.key)
    assert not report.ok and "checkpoint" in (report.failure or "")
