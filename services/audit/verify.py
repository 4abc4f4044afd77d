"""Verification of an export (offline) and of the stored log (online), naming the first failure.

Both recompute the Merkle tree from the records themselves and require every signed
checkpoint to be reproduced exactly: a changed, missing, added or reordered record, a
checkpoint signed by another key or forged, two checkpoints of one size with different roots
(a fork), and a log or export cut short of a checkpoint it claims are all refused, with the
first record or checkpoint at fault named.

A checkpoint kept elsewhere is always checked, whether or not the export lists it: within
the export's range its root is recomputed from the export's own hashes; before the export's
start, an RFC 9162 consistency proof from it to a checkpoint the export verifies is required
(carried in the export, ``consistency_from=``, or given beside it); otherwise, or after the
export's end, the export is refused as unverifiable against it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from services.audit.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from services.audit.export import FORMAT, META_PREFIX
from services.audit.frontier import Frontier
from services.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    InvalidProofError,
    frontier_ranges,
    verify_consistency,
)
from services.audit.note import VerifierKey
from services.audit.proofs import BundleError, verify_bundle
from services.audit.store import LogStore

_sha256 = hashlib.sha256


class VerificationFailed(Exception):
    def __init__(self, message: str, *, record: int | None = None,
                 checkpoint: int | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.record, self.checkpoint, self.line = record, checkpoint, line


@dataclass
class Report:
    ok: bool = True
    records: int = 0
    checkpoints: list[int] = field(default_factory=list)
    start: int = 0
    end: int = 0
    failure: str | None = None
    record: int | None = None
    checkpoint: int | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class _Checkpoints:
    """Checks signed checkpoints against recomputed roots and against each other."""

    def __init__(self, key: VerifierKey, report: Report) -> None:
        self.key, self.report = key, report
        self.roots: dict[int, bytes] = {}

    def check(self, note: str, frontier: Frontier, line: int | None = None) -> Checkpoint:
        try:
            checkpoint = open_checkpoint(note, self.key)
        except CheckpointError as exc:
            raise VerificationFailed(f"checkpoint: {exc}", line=line) from None
        size = checkpoint.size
        known = self.roots.get(size)
        if known is not None and known != checkpoint.root_hash:
            raise VerificationFailed(f"checkpoint {size}: two signed checkpoints of size {size} "
                                     f"have different roots (a fork)", checkpoint=size, line=line)
        if size != frontier.size:
            raise VerificationFailed(f"checkpoint {size} stands after {frontier.size} records",
                                     checkpoint=size, line=line)
        if frontier.root() != checkpoint.root_hash:
            raise VerificationFailed(
                f"checkpoint {size}: the records before it do not lead to its signed root",
                checkpoint=size, line=line)
        self.roots[size] = checkpoint.root_hash
        self.report.checkpoints.append(size)
        return checkpoint


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 consistency proof from tree size ``first`` to ``second``."""

    first: int
    second: int
    hashes: tuple[bytes, ...]

    @classmethod
    def parse(cls, value: dict[str, object], line: int | None = None) -> ConsistencyProof:
        """From an export's ``consistency`` line or ``/api/v1/audit/proof/consistency``."""
        first, second = _uint(value, "first", line), _uint(value, "second", line)
        listed = value.get("proof")
        try:
            if not isinstance(listed, list):
                raise TypeError("proof must be a list")
            hashes = tuple(_hash(h) for h in listed)
        except (ValueError, TypeError) as exc:
            raise VerificationFailed(f"consistency proof: bad hashes ({exc})", line=line) from None
        return cls(first, second, hashes)


class _Kept:
    """A signed checkpoint kept elsewhere, which the export must extend."""

    def __init__(self, note: str, key: VerifierKey) -> None:
        try:
            self.checkpoint = open_checkpoint(note, key)
        except CheckpointError as exc:
            raise VerificationFailed(f"the kept checkpoint: {exc}") from None
        self.size = self.checkpoint.size
        self.proofs: dict[int, ConsistencyProof] = {}
        self.checked = False

    def check_root(self, frontier: Frontier, line: int | None = None) -> None:
        """The export's records up to the kept size must lead to the kept root."""
        assert frontier.size == self.size
        if frontier.root() != self.checkpoint.root_hash:
            raise VerificationFailed(
                f"the kept checkpoint of size {self.size}: the export's records before it lead "
                "to another root: the log's history was rewritten (a fork) or the export is "
                "forged", checkpoint=self.size, line=line)
        self.checked = True

    def finish(self, start: int, end: int, roots: dict[int, bytes]) -> None:
        size = self.size
        if size > end:
            raise VerificationFailed(f"the export ends at {end}, before the kept checkpoint of "
                                     f"size {size} (truncated?)", checkpoint=size)
        if size >= start:
            if not self.checked:  # unreachable while every record is counted
                raise VerificationFailed(f"the kept checkpoint of size {size} was not reached",
                                         checkpoint=size)
            return
        if size == 0:
            if self.checkpoint.root_hash != EMPTY_ROOT:
                raise VerificationFailed("the kept checkpoint of size 0 has a root other than "
                                         "the empty tree's", checkpoint=0)
            return
        proof = self.proofs.get(size)
        if proof is None:
            raise VerificationFailed(
                f"the export starts at record {start}, after the kept checkpoint of size {size}, "
                f"and carries no consistency proof from it, so it cannot be verified against it: "
                f"export with consistency_from={size}, or give the proof "
                f"(/api/v1/audit/proof/consistency?first={size}&second={end}) with "
                "--consistency-proof", checkpoint=size)
        second = roots.get(proof.second)
        if second is None:
            raise VerificationFailed(
                f"the consistency proof from size {size} leads to size {proof.second}, which no "
                "checkpoint in the export signs", checkpoint=size)
        try:
            verify_consistency(size, proof.second, self.checkpoint.root_hash, second,
                               proof.hashes)
        except InvalidProofError as exc:
            raise VerificationFailed(
                f"the export does not extend the kept checkpoint of size {size} ({exc}): the "
                "log's history was rewritten (a fork) or the export is forged",
                checkpoint=size) from None


def verify_export(lines: Iterable[bytes], key: VerifierKey, trusted: str | None = None,
                  consistency: ConsistencyProof | None = None) -> Report:
    """Verify an export's lines; ``trusted`` is a signed checkpoint kept elsewhere, which
    the export must extend (``consistency``: a proof from it obtained beside the export)."""
    report = Report()
    try:
        kept = _Kept(trusted, key) if trusted is not None else None
        if kept is not None and consistency is not None:
            kept.proofs[consistency.first] = consistency
        _verify_export(iter(lines), key, report, kept)
    except VerificationFailed as failure:
        report.ok, report.failure = False, str(failure)
        report.record, report.checkpoint, report.line = (
            failure.record, failure.checkpoint, failure.line)
    return report


def _verify_export(lines: Iterator[bytes], key: VerifierKey, report: Report,
                   kept: _Kept | None) -> None:
    header = _meta(next(lines, b""), 1)
    if header.get("@kind") != "header" or header.get("format") != FORMAT:
        raise VerificationFailed(f"line 1 is not a {FORMAT} header", line=1)
    start, end = _uint(header, "start", 1), _uint(header, "end", 1)
    report.start, report.end = start, end
    try:
        listed_prefix = header.get("prefix", [])
        if not isinstance(listed_prefix, list):
            raise TypeError("prefix must be a list")
        prefix = [_hash(h) for h in listed_prefix]
        frontier = Frontier(start, prefix)
    except (ValueError, TypeError) as exc:
        raise VerificationFailed(f"header: bad prefix hashes ({exc})", line=1) from None
    checkpoints = _Checkpoints(key, report)
    if kept is not None and kept.size == start:
        kept.check_root(frontier, 1)
    listed, listed_start = b"", start
    last_record: bytes | None = None
    pending: list[bytes] = []  # leaf hashes not yet pushed into the frontier
    finished = False
    for number, raw in enumerate(lines, start=2):
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if finished:
            raise VerificationFailed("data after the end line", line=number)
        if not line.startswith(META_PREFIX):
            index = frontier.size + len(pending)
            offset = (index - listed_start) * HASH_SIZE
            expected = listed[offset:offset + HASH_SIZE]
            if index >= end:
                raise VerificationFailed(f"record {index}: beyond the export's end {end}",
                                         record=index, line=number)
            if _sha256(b"\x00" + line).digest() != expected:
                raise VerificationFailed(
                    f"record {index}: does not match the log's leaf {index} "
                    "(changed, missing, added or moved)", record=index, line=number)
            pending.append(expected)
            last_record = line
            if kept is not None and index + 1 == kept.size:
                frontier.extend(pending)
                pending = []
                kept.check_root(frontier, number)
            continue
        meta = _meta(line, number)
        kind = meta.get("@kind")
        if kind == "leaves":
            frontier.extend(pending)
            pending = []
            listed_start = _uint(meta, "start", number)
            if listed_start != frontier.size:
                raise VerificationFailed(f"record {frontier.size}: leaves listed from "
                                         f"{listed_start}", record=frontier.size, line=number)
            listed = _b64(meta.get("hashes"), number)
        elif kind == "checkpoint":
            frontier.extend(pending)
            pending = []
            checkpoints.check(str(meta.get("note", "")), frontier, number)
        elif kind == "proof":
            _check_proof(meta, key, last_record, frontier.size + len(pending) - 1, number)
        elif kind == "consistency":
            proof = ConsistencyProof.parse(meta, number)
            if kept is not None:
                kept.proofs.setdefault(proof.first, proof)
        elif kind == "end":
            finished = True
            frontier.extend(pending)
            pending = []
            if _uint(meta, "records", number) != frontier.size - start:
                raise VerificationFailed("the end line counts other records", line=number)
        else:
            raise VerificationFailed(f"unknown line kind {kind!r}", line=number)
    frontier.extend(pending)
    report.records = frontier.size - start
    if frontier.size < end:
        raise VerificationFailed(f"record {frontier.size}: the export stops here, before its "
                                 f"end {end} (truncated)", record=frontier.size)
    if not finished:
        raise VerificationFailed("the export has no end line (truncated)")
    if not report.checkpoints or report.checkpoints[-1] != end:
        raise VerificationFailed(f"records up to {end} are not covered by a signed checkpoint",
                                 record=report.checkpoints[-1] if report.checkpoints else start)
    if kept is not None:
        kept.finish(start, end, checkpoints.roots)


def _check_proof(meta: dict[str, object], key: VerifierKey, record: bytes | None, index: int,
                 number: int) -> None:
    try:
        verified = verify_bundle(str(meta.get("bundle", "")), key, record=record)
    except BundleError as exc:
        raise VerificationFailed(f"record {index}: its proof fails: {exc}", record=index,
                                 line=number) from None
    if verified.index != index:
        raise VerificationFailed(f"record {index}: its proof is for record {verified.index}",
                                 record=index, line=number)


def verify_stored(store: LogStore, key: VerifierKey, chunk: int = 4096) -> Report:
    """Recompute the stored log from its records and check every checkpoint it signed."""
    report = Report()
    try:
        _verify_stored(store, key, report, chunk)
    except VerificationFailed as failure:
        report.ok, report.failure = False, str(failure)
        report.record, report.checkpoint = failure.record, failure.checkpoint
    return report


def _verify_stored(store: LogStore, key: VerifierKey, report: Report, chunk: int) -> None:
    size, start = store.size, store.anchor_size
    tree = store.tree(size)
    try:
        frontier = Frontier(start, [tree.perfect_hash(lv, i) for lv, i in frontier_ranges(start)])
    except LookupError as exc:
        raise VerificationFailed(f"the retained prefix is incomplete: {exc}") from None
    report.start, report.end = start, size
    signed = store.checkpoints()
    by_size: dict[int, list[str]] = {}
    for cp_size, note in signed:
        by_size.setdefault(cp_size, []).append(note)
    checkpoints = _Checkpoints(key, report)
    latest = max(by_size, default=0)
    if latest > size:
        raise VerificationFailed(f"record {size}: the log ends here, but a checkpoint of size "
                                 f"{latest} was signed (records were cut)", record=size,
                                 checkpoint=latest)
    for note in by_size.get(start, []):
        checkpoints.check(note, frontier)
    position = start
    while position < size:
        rows = store.records(position, min(size, position + chunk))
        leaves: list[bytes] = []
        for index, data, leaf in rows:
            if index != frontier.size + len(leaves):
                missing = frontier.size + len(leaves)
                raise VerificationFailed(f"record {missing}: missing", record=missing)
            if data is None or _sha256(b"\x00" + data).digest() != leaf:
                raise VerificationFailed(f"record {index}: its data does not hash to its leaf",
                                         record=index)
            leaves.append(leaf)
            if index + 1 in by_size:
                frontier.extend(leaves)
                leaves = []
                for note in by_size[index + 1]:
                    checkpoints.check(note, frontier)
        if not rows:
            raise VerificationFailed(f"record {position}: missing", record=position)
        frontier.extend(leaves)
        position = frontier.size
    report.records = size - start


def _meta(line: bytes, number: int) -> dict[str, object]:
    try:
        value = json.loads(line)
    except ValueError:
        raise VerificationFailed("not a JSON line", line=number) from None
    if not isinstance(value, dict):
        raise VerificationFailed("not a JSON object", line=number)
    return value


def _uint(meta: dict[str, object], name: str, number: int | None) -> int:
    value = meta.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VerificationFailed(f"{name} must be a non-negative integer", line=number)
    return value


def _b64(value: object, number: int) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise VerificationFailed("leaf hashes are not base64", line=number) from None


def _hash(value: object) -> bytes:
    decoded = base64.b64decode(str(value), validate=True)
    if len(decoded) != HASH_SIZE:
        raise ValueError("a hash is 32 bytes")
    return decoded
