"""Audit log throughput: ingestion from NATS, proof generation, offline verification.

Measures, on this machine, in one run:

  (a) ingestion: N integration events (Knocked contracts, ~390 bytes of canonical JSON)
      already on the JetStream stream, pulled by the audit's consumer into the Merkle log
      on SQLite (parse, canonical encoding, leaf hash, one transaction per batch, ack);
      baseline: a raw pull consumer that only fetches and acknowledges the same stream.
  (b) proof generation: inclusion proofs from the stored log of 1,000,000 records
      (subtree hashes from the store); baseline: the same proofs from an in-memory tree.
  (c) offline verification of a 1,000,000-record export (``buergerbuero audit verify``'s
      code path: hash every record, compare with the listed leaf, recompute every signed
      root); baseline: SHA-256 of the same record lines and nothing else.

    .venv/bin/python bench/audit.py                  # full run (about 3 minutes)
    .venv/bin/python bench/audit.py --quick          # smoke run (smaller sizes)

Figures only: nothing here asserts timings. Targets are printed with PASS/MISS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.audit.canonical import LogEntry, canonical_json
from services.audit.database import Database
from services.audit.export import export_lines, plan_export
from services.audit.ingest import LogConsumer
from services.audit.merkle import MemoryLeafHashes, MerkleTree, leaf_hash
from services.audit.signing import Checkpointer, load_signer
from services.audit.store import LogStore
from services.audit.verify import verify_export
from services.common.bus import Bus
from services.common.contracts.queue import Knocked
from services.common.eventstore import store_env
from services.common.natsserver import EmbeddedNats
from services.common.settings import Settings

INGEST_TARGET = 5_000
VERIFY_TARGET = 250_000
DEPARTMENTS = [uuid.uuid4() for _ in range(12)]


def knocked(position: int) -> Knocked:
    return Knocked(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        aggregate_id=uuid.uuid4(),
        aggregate_version=1,
        position=position,
        correlation_id=uuid.uuid4().hex,
        ticket_id=uuid.uuid4(),
        department_id=DEPARTMENTS[position % 12],
        priority="walk_in",
        number=position % 500,
    )


def fast_entry(position: int, at: str) -> LogEntry:
    """The LogEntry of a Knocked event, built without pydantic (to fill a big log quickly)."""
    ticket, dept = str(uuid.uuid4()), str(DEPARTMENTS[position % 12])
    event = {
        "aggregate_id": ticket,
        "aggregate_version": 1,
        "correlation_id": uuid.uuid4().hex,
        "department_id": dept,
        "event_id": str(uuid.uuid4()),
        "number": position % 500,
        "occurred_at": at,
        "position": position,
        "priority": "walk_in",
        "service": "queue",
        "ticket_id": ticket,
        "type": "Knocked",
        "version": 1,
    }
    data = canonical_json(event)
    return LogEntry(
        event["event_id"],
        "queue",
        position,
        "Knocked",
        at,
        data,
        leaf_hash(data),
        dept,
        None,
        ticket,
    )


def line(
    name: str,
    value: float,
    unit: str,
    target: float | None = None,
    baseline: tuple[str, float] | None = None,
) -> None:
    text = f"  {name:<44} {value:>12,.0f} {unit}"
    if baseline:
        text += f"   ({value / baseline[1]:.2f}x {baseline[0]})"
    if target:
        text += f"   target {target:,.0f}: {'PASS' if value >= target else 'MISS'}"
    print(text, flush=True)


# -- (a) ingestion --------------------------------------------------------------------------


async def ingestion(root: Path, events: int) -> tuple[float, float]:
    nats = EmbeddedNats(root / "nats")
    nats.start()
    try:
        bus = Bus(nats.url, "bench")
        await bus.connect()
        batch = [knocked(i + 1) for i in range(events)]
        for first in range(0, events, 2000):
            await bus.publish(batch[first : first + 2000])
        print(f"  {events:,} events on the stream ({len(batch[0].to_wire())} bytes each)")

        raw = LogConsumer(None, bus, durable="raw")  # type: ignore[arg-type]
        sub = None
        started = time.perf_counter()
        received = 0
        while received < events:
            if sub is None:
                await bus.js.add_consumer(bus.stream, raw.config())
                sub = await bus.js.pull_subscribe_bind("raw", stream=bus.stream)
            messages = await sub.fetch(1000, timeout=5)
            received += len(messages)
            await messages[-1].ack()
        raw_rate = events / (time.perf_counter() - started)
        await sub.unsubscribe()

        settings = Settings(data_dir=root / "ingest")
        store = LogStore(Database(store_env(settings, "audit")))
        consumer = LogConsumer(store, bus)
        started = time.perf_counter()
        task = asyncio.create_task(consumer.run())
        while store.size < events:
            await asyncio.sleep(0.01)
        rate = events / (time.perf_counter() - started)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.close()
        return rate, raw_rate
    finally:
        nats.stop()


# -- (b) and (c) on a big log ---------------------------------------------------------------


def big_log(root: Path, records: int) -> tuple[LogStore, Checkpointer]:
    settings = Settings(data_dir=root / "big")
    store = LogStore(Database(store_env(settings, "audit")))
    checkpointer = Checkpointer(store, load_signer(settings))
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    step = 20_000
    for first in range(0, records, step):
        store.append([fast_entry(first + i + 1, at) for i in range(min(step, records - first))])
        if (first // step) % 10 == 9:
            checkpointer.sign_if_grown()
    checkpointer.sign_if_grown()
    return store, checkpointer


def proofs(store: LogStore, count: int) -> tuple[float, float]:
    size = store.size
    indices = [random.randrange(size) for _ in range(count)]
    tree = store.tree(size)
    started = time.perf_counter()
    for index in indices:
        tree.inclusion_proof(index, size)
    stored = count / (time.perf_counter() - started)
    memory = MerkleTree(MemoryLeafHashes(leaf for _, _, leaf in store.records(0, size)))
    memory.root()  # fill its cache, as the store's is filled while appending
    started = time.perf_counter()
    for index in indices:
        memory.inclusion_proof(index, size)
    return stored, count / (time.perf_counter() - started)


def verification(store: LogStore, checkpointer: Checkpointer, path: Path) -> tuple[float, float]:
    plan = plan_export(store, checkpointer)
    with path.open("wb") as out:
        for chunk in export_lines(store, checkpointer, plan):
            out.write(chunk)
    records = plan.end - plan.start
    print(
        f"  export: {records:,} records, {path.stat().st_size / 1e6:,.0f} MB, "
        f"{len(plan.checkpoints)} checkpoints"
    )
    started = time.perf_counter()
    with path.open("rb") as lines:
        report = verify_export(lines, checkpointer.verifier)
    rate = records / (time.perf_counter() - started)
    assert report.ok and report.records == records, report.failure
    sha256 = hashlib.sha256
    started = time.perf_counter()
    with path.open("rb") as lines:
        for raw in lines:
            sha256(b"\x00" + raw[:-1]).digest()
    return rate, records / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.records, args.proofs = 10_000, 100_000, 2_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("(a) ingestion from NATS into the log (SQLite)")
        rate, raw = asyncio.run(ingestion(root, args.events))
        line("raw JetStream fetch + ack (baseline)", raw, "events/s")
        line(
            "audit consumer: parse, encode, hash, commit",
            rate,
            "events/s",
            INGEST_TARGET,
            ("raw consume", raw),
        )
        print(f"(b) building a log of {args.records:,} records")
        started = time.perf_counter()
        store, checkpointer = big_log(root, args.records)
        print(f"  appended in {time.perf_counter() - started:.1f}s")
        stored, memory = proofs(store, args.proofs)
        line("in-memory tree (baseline)", memory, "proofs/s")
        line("inclusion proofs from the store", stored, "proofs/s", None, ("in-memory", memory))
        print(f"(c) offline verification of a {args.records:,}-record export")
        rate, raw = verification(store, checkpointer, root / "export.jsonl")
        line("SHA-256 of each record line (baseline)", raw, "records/s")
        line("audit verify", rate, "records/s", VERIFY_TARGET, ("raw SHA-256", raw))


if __name__ == "__main__":
    main()
