"""Exports: the log's records as JSON Lines, with the signed checkpoints that cover them.

Layout (one JSON value per line)::

    {"@kind":"header","format":…,"origin":…,"verifier_key":…,"start":s,"end":e,
     "prefix":[base64 hashes of the perfect subtrees of the first s leaves]}
    {"@kind":"consistency","first":k,"second":e,"proof":[base64 hashes]}   (if asked for)
    {"@kind":"leaves","start":i,"hashes":"<base64 of the next n leaf hashes>"}
    <record i: the canonical event JSON, exactly the bytes of the leaf>
    … (a "leaves" line before every chunk of up to 1024 records)
    {"@kind":"checkpoint","note":"<signed C2SP checkpoint>"}   (after record size-1)
    {"@kind":"proof","bundle":"<C2SP tlog-proof of the record before>"}   (if asked for)
    {"@kind":"end","records":n}

A record line is the leaf data itself, so a verifier hashes each line as it stands and
never re-encodes JSON. The leaf hashes in the ``leaves`` lines are the log's own: they are
trusted only once a signed root is recomputed from them, and a record that does not hash to
its listed leaf is named. The export ends at a signed checkpoint, so every record in it is
covered by a signature. ``consistency_from=k`` adds the RFC 9162 consistency proof from tree
size k to the export's end: with it, a checkpoint of size k kept elsewhere can be checked
against an export that starts after k.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from services.audit._text import b64encode
from services.audit.merkle import frontier_ranges
from services.audit.proofs import BundleBuilder
from services.audit.signing import Checkpointer
from services.audit.store import LogStore

FORMAT = "buergerbuero-audit-export/v1"
CHUNK = 1024
META_PREFIX = b'{"@kind":'


class ExportRangeError(ValueError):
    pass


@dataclass(frozen=True)
class ExportPlan:
    start: int
    end: int
    checkpoints: dict[int, str]  # size -> signed note, for sizes in [start, end]
    # (first, proof hashes): consistency from tree size ``first`` to ``end``
    consistency: tuple[int, tuple[bytes, ...]] | None = None


def plan_export(store: LogStore, checkpointer: Checkpointer, start: int = 0,
                end: int | None = None, consistency_from: int | None = None) -> ExportPlan:
    """Sign the current tree if it grew; export up to a signed size, never beyond."""
    checkpointer.sign_if_grown()
    latest = checkpointer.latest()
    signed_size = latest.size if latest else 0
    end = signed_size if end is None else end
    start = max(start, store.anchor_size)
    if not 0 <= start <= end:
        raise ExportRangeError(f"no records in [{start}, {end})")
    if end > signed_size:
        raise ExportRangeError(f"only the first {signed_size} records are signed")
    covering: dict[int, str] = {}
    for size, note in store.checkpoints(start, signed_size):
        covering.setdefault(size, note)
    if end not in covering:  # end is between two checkpoints: prove it with a later one
        end = min(size for size in covering if size >= end)
    consistency = None
    if consistency_from is not None:
        if not 0 <= consistency_from <= end:
            raise ExportRangeError(f"a consistency proof from size {consistency_from} needs a "
                                   f"size between 0 and the export's end {end}")
        try:
            proof = store.tree(end).consistency_proof(consistency_from)
        except LookupError as error:
            raise ExportRangeError(f"the consistency proof from size {consistency_from} needs "
                                   f"hashes dropped by retention ({error})") from error
        consistency = (consistency_from, tuple(proof))
    return ExportPlan(start, end, {s: n for s, n in covering.items() if s <= end}, consistency)


def export_lines(store: LogStore, checkpointer: Checkpointer, plan: ExportPlan,
                 proofs: bool = False) -> Iterator[bytes]:
    tree = store.tree(plan.end)
    prefix = [b64encode(tree.perfect_hash(level, index))
              for level, index in frontier_ranges(plan.start)]
    yield _meta({"@kind": "header", "format": FORMAT, "origin": checkpointer.origin,
                 "verifier_key": checkpointer.verifier.encode(), "start": plan.start,
                 "end": plan.end, "prefix": prefix})
    if plan.consistency is not None:
        first, hashes = plan.consistency
        yield _meta({"@kind": "consistency", "first": first, "second": plan.end,
                     "proof": [b64encode(h) for h in hashes]})
    final_note = plan.checkpoints[plan.end]
    bundles = BundleBuilder(tree, final_note) if proofs else None
    if plan.start in plan.checkpoints:
        yield _meta({"@kind": "checkpoint", "note": plan.checkpoints[plan.start]})
    position = plan.start
    while position < plan.end:
        stop = min(plan.end, (position // CHUNK + 1) * CHUNK)
        rows = store.records(position, stop)
        if len(rows) != stop - position or any(data is None for _, data, _ in rows):
            raise ExportRangeError(f"records [{position}, {stop}) are no longer held")
        yield _meta({"@kind": "leaves", "start": position,
                     "hashes": b64encode(b"".join(leaf for _, _, leaf in rows))})
        for index, data, _ in rows:
            assert data is not None
            yield data + b"\n"
            if bundles is not None:
                yield _meta({"@kind": "proof", "bundle": bundles.bundle(index, data).encode()})
            if index + 1 in plan.checkpoints:
                yield _meta({"@kind": "checkpoint", "note": plan.checkpoints[index + 1]})
        position = stop
    yield _meta({"@kind": "end", "records": plan.end - plan.start})


def _meta(value: dict[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
