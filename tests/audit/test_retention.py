"""Retention drops old records at a signed checkpoint; what remains still verifies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.audit.checkpoint import open_checkpoint
from services.audit.export import export_lines, plan_export
from services.audit.merkle import verify_consistency, verify_inclusion
from services.audit.retention import apply_retention
from services.audit.verify import verify_export, verify_stored
from tests.audit.support import ScratchLog, entries, knocked

NOW = datetime(2027, 6, 1, tzinfo=UTC)


def test_old_records_go_and_the_rest_still_proves_itself(tmp_path: Path) -> None:
    log = ScratchLog(tmp_path)
    old = [knocked(i, NOW - timedelta(days=800, minutes=-i)) for i in range(1, 1001)]
    young = [knocked(1000 + i, NOW - timedelta(days=10)) for i in range(1, 501)]
    for first in range(0, 1000, 333):  # checkpoints at 333, 666, 999, 1000
        log.store.append(entries(old[first:first + 333]))
        log.checkpointer.sign_if_grown()
    log.store.append(entries(young))
    log.checkpointer.sign_if_grown()
    before = log.store.root()

    dropped = apply_retention(log.store, 730, 30, now=NOW)
    assert dropped == 1000 and log.store.anchor_size == 1000
    assert log.store.root() == before
    store = log.reopen()
    assert store.anchor_size == 1000 and store.root() == before
    assert all(data is None for _, data, _ in store.records(0, 1000))
    with store.db.reading() as cur:
        assert cur.scalar("SELECT COUNT(*) FROM audit_records WHERE data IS NOT NULL") == 500

    assert verify_stored(store, log.key).ok
    report = verify_export(list(export_lines(store, log.checkpointer,
                                             plan_export(store, log.checkpointer))), log.key)
    assert report.ok and report.start == 1000 and report.checkpoints == [1000, 1500]

    latest = open_checkpoint(store.checkpoints()[-1][1], log.key)
    tree = store.tree(latest.size)
    for index in (1000, 1001, 1234, 1499):
        leaf = store.records(index, index + 1)[0][2]
        verify_inclusion(index, latest.size, leaf, tree.inclusion_proof(index), latest.root_hash)
    anchor = open_checkpoint(store.checkpoints(1000, 1000)[0][1], log.key)
    verify_consistency(1000, 1500, anchor.root_hash, latest.root_hash,
                       tree.consistency_proof(1000))

    more = [knocked(2000 + i) for i in range(1, 40)]
    store.append(entries(more))
    assert log.checkpointer.sign_if_grown() is not None
    assert verify_stored(store, log.key).ok


def test_nothing_is_dropped_within_the_period_or_the_streams_age(tmp_path: Path) -> None:
    log = ScratchLog(tmp_path)
    log.store.append(entries([knocked(i, NOW - timedelta(days=20)) for i in range(1, 50)]))
    log.checkpointer.sign_if_grown()
    assert apply_retention(log.store, 0, 30, now=NOW) == 0
    assert apply_retention(log.store, 7, 30, now=NOW) == 0  # the stream could redeliver them
    assert apply_retention(log.store, 7, 14, now=NOW) == 49
