"""The Merkle log in the audit service's own store: records, leaf hashes, subtree hashes.

Appending is one transaction: the new records (each event at most once, by ``event_id``),
the perfect subtree hashes they complete, the per-service watermarks and the JetStream
consumer position are written together or not at all. So a crash before the commit leaves
nothing, a crash after it leaves everything, and a redelivered message finds its event id
taken and changes nothing. The order of the leaves is the order of these commits.

Watermarks: ``watermark[service] = p`` means every integration event that service stored at
a position up to ``p`` is in the log. Positions the log has seen above the watermark are kept
in memory (and rebuilt from the records on start); a hole below them is a gap to be filled
from the publisher's outbox (:mod:`services.audit.completeness`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.audit.canonical import LogEntry
from services.audit.database import Cursor, Database
from services.audit.merkle import CompactRange, MerkleTree, frontier_ranges

CACHED_LEVEL = 4  # perfect subtrees of 16 leaves and more are stored; smaller ones re-hashed
_CHUNK = 500


@dataclass
class Watermarks:
    """Contiguous positions per publishing service, and positions seen beyond them."""

    through: dict[str, int] = field(default_factory=dict)
    beyond: dict[str, set[int]] = field(default_factory=dict)

    def saw(self, service: str, position: int) -> None:
        if position > self.through.get(service, 0):
            self.beyond.setdefault(service, set()).add(position)

    def accounted_through(self, service: str, position: int) -> None:
        """Everything up to ``position`` is known to be in the log (or never meant for it)."""
        if position > self.through.get(service, 0):
            self.through[service] = position
            seen = self.beyond.get(service, set())
            self.beyond[service] = {p for p in seen if p > position}

    def advance(self) -> set[str]:
        """Move each watermark over contiguous seen positions; the services that moved."""
        moved = set()
        for service, seen in self.beyond.items():
            mark = self.through.get(service, 0)
            while mark + 1 in seen:
                mark += 1
                seen.discard(mark)
            if mark != self.through.get(service, 0):
                self.through[service] = mark
                moved.add(service)
        return moved

    def gaps(self) -> dict[str, int]:
        """Services with positions seen beyond a hole: service -> its watermark."""
        return {s: self.through.get(s, 0) for s, seen in self.beyond.items() if seen}

    def copy(self) -> Watermarks:
        return Watermarks(dict(self.through), {s: set(p) for s, p in self.beyond.items()})


class StoredLeaves:
    """The log's leaf hashes as a :class:`~services.audit.merkle.LeafHashSource`."""

    def __init__(self, store: LogStore, size: int) -> None:
        self._store, self._size = store, size

    def __len__(self) -> int:
        return self._size

    def get(self, index: int) -> bytes:
        return self.range(index, index + 1)[0]

    def range(self, start: int, end: int) -> Sequence[bytes]:
        if not 0 <= start <= end <= self._size:
            raise IndexError((start, end))
        with self._store.db.reading() as cur:
            rows = cur.execute(
                "SELECT leaf FROM audit_records WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            ).fetchall()
        if len(rows) != end - start:
            raise LookupError(f"leaves [{start}, {end}) are no longer held (retention)")
        return [bytes(r[0]) for r in rows]


class StoredNodes:
    """Perfect subtree hashes from ``audit_nodes`` (written while appending, never here)."""

    def __init__(self, store: LogStore) -> None:
        self._store = store

    def get(self, level: int, index: int) -> bytes | None:
        with self._store.db.reading() as cur:
            value = cur.scalar(
                "SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?", (level, index)
            )
        return None if value is None else bytes(value)

    def put(self, level: int, index: int, value: bytes) -> None:
        """Nodes are stored when their last leaf is appended; a lazy fill is not kept."""


class LogStore:
    """Append-only access to the Merkle log and its bookkeeping."""

    def __init__(self, db: Database, consumer: str = "audit") -> None:
        self.db = db
        self.consumer = consumer
        self._lock = threading.Lock()
        self._load()

    # -- state -------------------------------------------------------------------------------

    def _load(self) -> None:
        with self.db.reading() as cur:
            self.size = int(cur.scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records")
                            or 0)
            self.anchor_size = int(cur.scalar("SELECT COALESCE(MAX(size), 0) FROM audit_anchor")
                                   or 0)
            marks = Watermarks(dict(cur.execute(
                "SELECT service, position FROM audit_watermarks").fetchall()))
            for service, mark in list(marks.through.items()):
                rows = cur.execute(
                    "SELECT position FROM audit_records WHERE service = ? AND position > ?",
                    (service, mark),
                ).fetchall()
                marks.beyond[service] = {int(r[0]) for r in rows}
            self.stream_sequence = int(cur.scalar(
                "SELECT stream_sequence FROM audit_consumer WHERE name = ?", (self.consumer,)
            ) or 0)
        self.watermarks = marks
        tree = self.tree(self.size)
        frontier = [tree.perfect_hash(level, index) for level, index in frontier_ranges(self.size)]
        self._compact = CompactRange.resume(self.size, frontier)

    def tree(self, size: int | None = None) -> MerkleTree:
        """A read view of the first ``size`` leaves (default: all appended so far)."""
        return MerkleTree(StoredLeaves(self, self.size if size is None else size),
                          StoredNodes(self), min_cached_level=CACHED_LEVEL)

    def root(self) -> tuple[int, bytes]:
        with self._lock:
            return self._compact.size, self._compact.root()

    # -- appending ---------------------------------------------------------------------------

    def append(
        self,
        entries: Sequence[LogEntry],
        *,
        seen: Iterable[tuple[str, int]] = (),
        accounted: dict[str, int] | None = None,
        stream_sequence: int | None = None,
    ) -> list[LogEntry]:
        """Append the entries not yet in the log, in order; returns those appended.

        ``seen``: positions of events that arrived but are not leaves (e.g. checkpoints).
        ``accounted``: per service, a position through which the publisher's outbox was read.
        """
        with self._lock:
            try:
                return self._append(entries, seen, accounted or {}, stream_sequence)
            except BaseException:
                self._load()  # the transaction rolled back: forget what it half did
                raise

    def _append(
        self, entries: Sequence[LogEntry], seen: Iterable[tuple[str, int]],
        accounted: dict[str, int], stream_sequence: int | None,
    ) -> list[LogEntry]:
        marks = self.watermarks.copy()
        nodes: list[tuple[int, int, bytes]] = []

        def on_node(level: int, index: int, value: bytes) -> None:
            if level >= CACHED_LEVEL:
                nodes.append((level, index, value))

        compact = CompactRange.resume(self._compact.size, self._compact.frontier, on_node)
        with self.db.transaction() as cur:
            fresh = self._not_logged(cur, entries)
            rows = []
            for entry in fresh:
                rows.append((compact.size, entry.event_id, entry.service, entry.position,
                             entry.type, entry.occurred_at, entry.department_id,
                             entry.consultation_id, entry.ticket_id, entry.appointment_id,
                             entry.leaf, entry.data))
                compact.append(entry.leaf)
            cur.executemany(
                "INSERT INTO audit_records (idx, event_id, service, position, type, occurred_at,"
                " department_id, consultation_id, ticket_id, appointment_id, leaf, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            cur.executemany("INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
            for entry in entries:
                marks.saw(entry.service, entry.position)
            for service, position in seen:
                marks.saw(service, position)
            for service, position in accounted.items():
                marks.accounted_through(service, position)
            moved = marks.advance() | set(accounted)
            cur.executemany(
                "INSERT INTO audit_watermarks (service, position) VALUES (?, ?)"
                " ON CONFLICT (service) DO UPDATE SET position = excluded.position",
                [(s, marks.through[s]) for s in sorted(moved) if s in marks.through])
            if stream_sequence is not None and stream_sequence > self.stream_sequence:
                cur.execute(
                    "INSERT INTO audit_consumer (name, stream_sequence) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET stream_sequence = excluded.stream_sequence",
                    (self.consumer, stream_sequence))
        self._compact = CompactRange.resume(compact.size, compact.frontier)
        self.size = compact.size
        self.watermarks = marks
        if stream_sequence is not None:
            self.stream_sequence = max(self.stream_sequence, stream_sequence)
        return fresh

    @staticmethod
    def _not_logged(cur: Cursor, entries: Sequence[LogEntry]) -> list[LogEntry]:
        unique: dict[str, LogEntry] = {}
        for entry in entries:
            unique.setdefault(entry.event_id, entry)
        ids = list(unique)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for (known,) in cur.execute(
                f"SELECT event_id FROM audit_records WHERE event_id IN ({marks})",  # noqa: S608
                chunk,
            ).fetchall():
                unique.pop(known, None)
        return list(unique.values())

    # -- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(self, size: int, note: str) -> None:
        with self.db.transaction() as cur:
            seq = int(cur.scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_checkpoints"))
            cur.execute(
                "INSERT INTO audit_checkpoints (seq, size, note, signed_at) VALUES (?, ?, ?, ?)",
                (seq, size, note, datetime.now(UTC).isoformat()))

    def checkpoints(self, min_size: int = 0, max_size: int | None = None) -> list[tuple[int, str]]:
        """Signed checkpoints ``(size, note)`` in the order they were signed."""
        top = 2**63 - 1 if max_size is None else max_size
        with self.db.reading() as cur:
            rows = cur.execute(
                "SELECT size, note FROM audit_checkpoints WHERE size >= ? AND size <= ?"
                " ORDER BY seq", (min_size, top)).fetchall()
        return [(int(size), str(note)) for size, note in rows]

    def latest_checkpoint(self) -> tuple[int, str] | None:
        with self.db.reading() as cur:
            row = cur.execute(
                "SELECT size, note FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    # -- reading records ---------------------------------------------------------------------

    def records(self, start: int, end: int) -> list[tuple[int, bytes | None, bytes]]:
        """``(index, data, leaf hash)`` for held records in ``[start, end)``, in order."""
        with self.db.reading() as cur:
            rows = cur.execute(
                "SELECT idx, data, leaf FROM audit_records WHERE idx >= ? AND idx < ?"
                " ORDER BY idx", (start, end)).fetchall()
        return [(int(i), None if d is None else bytes(d), bytes(h)) for i, d, h in rows]

    def query(self, where: str, args: Sequence[object], limit: int = 10_000,
              newest_first: bool = False) -> list[bytes]:
        """Record data matching an SQL condition on the indexed columns, in log order
        (the last ``limit`` of them, the newest first, with ``newest_first``)."""
        order = "DESC" if newest_first else "ASC"
        with self.db.reading() as cur:
            rows = cur.execute(
                f"SELECT data FROM audit_records WHERE data IS NOT NULL AND ({where})"  # noqa: S608
                f" ORDER BY idx {order} LIMIT {int(limit)}", args).fetchall()
        return [bytes(r[0]) for r in rows]
