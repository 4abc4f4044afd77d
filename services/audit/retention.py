"""Retention: drop records older than the period, keeping what remains verifiable.

The log is cut at a signed checkpoint, the *anchor* (size ``S``): the oldest signed state
whose records are all past retention. Records before ``S`` lose their data (the events);
what stays of them is only what the tree needs to go on: the hashes of the perfect subtrees
of the first ``S`` leaves (its compact range), i.e. the stored subtree hashes of 16 leaves
and more, and the few leaf hashes after the last multiple of 16. From those and the anchor's
signature, anyone can check that the retained log is the continuation of the old one:

- the compact range recomputes the anchor's signed root (so it is the old log's state);
- every later checkpoint is recomputed from the compact range and the retained records;
- the tree's indices, origin and key are unchanged, so copies of older checkpoints kept
  elsewhere stay comparable, and proofs for retained records are as before.

It is a new log anchored in the last signed checkpoint of the old, without a new key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.audit.canonical import utc_text
from services.audit.store import CACHED_LEVEL, LogStore


def anchor_for(store: LogStore, cutoff: datetime) -> tuple[int, str] | None:
    """The newest signed checkpoint before which every record is older than ``cutoff``."""
    with store.db.reading() as cur:
        first_young = cur.scalar("SELECT MIN(idx) FROM audit_records WHERE occurred_at >= ?",
                                 (utc_text(cutoff),))
    limit = store.size if first_young is None else int(first_young)
    candidates = [(s, n) for s, n in store.checkpoints(store.anchor_size + 1, limit)]
    return max(candidates, default=None, key=lambda c: c[0])


def prune(store: LogStore, anchor: tuple[int, str]) -> int:
    """Drop the data of records before the anchor; returns how many records were dropped."""
    size, note = anchor
    if size <= store.anchor_size:
        return 0
    keep_from = size >> CACHED_LEVEL << CACHED_LEVEL  # leaf hashes still needed above here
    with store.db.transaction() as cur:
        cur.execute("DELETE FROM audit_records WHERE idx < ?", (keep_from,))
        cur.execute(
            "UPDATE audit_records SET data = NULL, department_id = NULL,"
            " consultation_id = NULL, ticket_id = NULL, appointment_id = NULL"
            " WHERE idx >= ? AND idx < ?",
            (keep_from, size))
        cur.execute("INSERT INTO audit_anchor (size, note, pruned_at) VALUES (?, ?, ?)",
                    (size, note, datetime.now(UTC).isoformat()))
    dropped = size - store.anchor_size
    store.anchor_size = size
    return dropped


def apply_retention(store: LogStore, days: int, stream_max_age_days: int,
                    now: datetime | None = None) -> int:
    """Prune what is past ``days``; never what the stream could still redeliver."""
    if days <= 0:
        return 0
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=max(days, stream_max_age_days + 1))
    anchor = anchor_for(store, cutoff)
    return 0 if anchor is None else prune(store, anchor)
