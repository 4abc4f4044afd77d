"""The Merkle log in its store: each event once, in a stable order, with working proofs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from services.audit.checkpoint import open_checkpoint
from services.audit.merkle import (
    MemoryLeafHashes,
    MerkleTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from services.audit.proofs import ProofBundle, verify_bundle
from tests.audit.support import ScratchLog, entries, knocked


@pytest.fixture
def log(tmp_path: Path) -> ScratchLog:
    return ScratchLog(tmp_path)


def test_each_event_is_appended_once_by_event_id(log: ScratchLog) -> None:
    events = [knocked(i) for i in range(1, 51)]
    assert len(log.store.append(entries(events[:30]))) == 30
    again = log.store.append(entries(events[20:] + events[:5] + events[40:]))
    assert len(again) == 20
    assert log.store.size == 50
    rows = log.store.records(0, 50)
    assert [r[1] for r in rows] == [e.data for e in entries(events)]


def test_the_tree_matches_an_independent_one_and_survives_a_restart(log: ScratchLog) -> None:
    events = log.fill(777, sign_every=100)
    expected = MerkleTree(MemoryLeafHashes(leaf_hash(e.data) for e in entries(events)))
    assert log.store.root() == (777, expected.root())
    store = log.reopen()
    assert store.root() == (777, expected.root())
    more = [knocked(1000 + i) for i in range(40)]
    store.append(entries(more))
    expected = MerkleTree(MemoryLeafHashes(
        leaf_hash(e.data) for e in entries(events + more)))
    assert store.root() == (817, expected.root())


def test_proofs_from_the_store_verify(log: ScratchLog) -> None:
    log.fill(300, sign_every=64)
    tree = log.store.tree()
    root = tree.root()
    for index in (0, 1, 15, 16, 17, 255, 256, 299):
        leaf = log.store.records(index, index + 1)[0][2]
        verify_inclusion(index, 300, leaf, tree.inclusion_proof(index), root)
    for first in (0, 1, 64, 100, 256, 300):
        verify_consistency(first, 300, tree.root(first), root, tree.consistency_proof(first))


def test_every_checkpoint_is_consistent_with_the_latest(log: ScratchLog) -> None:
    log.fill(200, sign_every=33)
    checkpoints = [open_checkpoint(note, log.key) for _, note in log.store.checkpoints()]
    latest = checkpoints[-1]
    tree = log.store.tree(latest.size)
    for earlier in checkpoints:
        verify_consistency(earlier.size, latest.size, earlier.root_hash, latest.root_hash,
                           tree.consistency_proof(earlier.size))


def test_a_record_bundle_checks_alone(log: ScratchLog) -> None:
    log.fill(40)
    latest = log.checkpointer.latest()
    assert latest is not None
    index, data, _ = log.store.records(17, 18)[0]
    proof = log.store.tree(latest.size).inclusion_proof(index, latest.size)
    bundle = ProofBundle(index, tuple(proof), latest.note, data).encode()
    assert verify_bundle(bundle, log.key).record == data


def test_a_failed_transaction_leaves_nothing_behind(log: ScratchLog) -> None:
    log.fill(10)
    before = log.store.root()
    good = entries([knocked(11)])[0]
    broken = good.__class__(**{**good.__dict__, "event_id": None})  # NOT NULL fails
    with pytest.raises(Exception):  # noqa: B017 - whatever the database raises
        log.store.append([good, broken])
    assert log.store.root() == before
    assert log.reopen().root() == before
    assert log.store.append([good]) and log.store.size == 11


def test_watermarks_move_over_contiguous_positions_and_note_gaps(log: ScratchLog) -> None:
    events = [knocked(p) for p in (1, 2, 3, 5, 6, 9)]
    log.store.append(entries(events))
    assert log.store.watermarks.through["queue"] == 3
    assert log.store.watermarks.gaps() == {"queue": 3}
    log.store.append([], accounted={"queue": 6})  # positions 4 was internal to the service
    assert log.store.watermarks.through["queue"] == 6
    log.store.append([], seen=[("queue", 7), ("queue", 8)])
    assert log.store.watermarks.through["queue"] == 9
    assert log.reopen().watermarks.through["queue"] == 9


def test_a_log_from_before_appointments_gets_their_column(log: ScratchLog) -> None:
    """A log created before appointment ids were indexed: reopened, it has the column, its
    old records keep their data, and a knock with an appointment is found by it."""
    old = log.fill(3)
    log.execute("DROP INDEX IF EXISTS audit_records_appointment")
    log.execute("ALTER TABLE audit_records DROP COLUMN appointment_id")
    store = log.reopen()
    appointment = uuid.uuid4()
    with_appointment = knocked(4).model_copy(
        update={"priority": "appointment", "appointment_id": appointment})
    store.append(entries([with_appointment]))
    assert [r[1] for r in store.records(0, 3)] == [e.data for e in entries(old)]
    found = store.query("appointment_id = ?", (str(appointment),))
    assert [json.loads(row)["event_id"] for row in found] == [str(with_appointment.event_id)]
