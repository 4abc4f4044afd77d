"""After a fault: the consumers have nothing pending and every projection counted each event
once, however often it came (tests/integration/test_faults.py, test_exactly_once.py)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import nats

from services.audit.canonical import is_logged
from services.common.contracts import parse_event
from tests.helpers import eventually
from tests.integration.stream import stream_messages

STREAM = "BB"


async def _consumers(url: str) -> dict[str, Any]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        return {info.name: info for info in await js.consumers_info(STREAM)}
    finally:
        await nc.close()


def consumers(url: str) -> dict[str, Any]:
    """Every durable consumer of the stream, by name, as NATS sees it now."""
    return asyncio.run(_consumers(url))


def nothing_pending(url: str) -> bool:
    return all(not c.num_pending and not c.num_ack_pending for c in consumers(url).values())


def _matches(pattern: str, subject: str) -> bool:
    wanted, parts = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(parts) > index
        if index >= len(parts) or token not in ("*", parts[index]):
            return False
    return len(wanted) == len(parts)


def _filters(info: Any) -> list[str]:
    config = info.config
    return list(config.filter_subjects or []) or [config.filter_subject or ">"]


def _tracking_rows(data_dir: Path) -> Counter[str]:
    """Tracking records of consumed events in every store, by consumer (``BB/<durable>``)."""
    rows: Counter[str] = Counter()
    for store in sorted(data_dir.glob("*.sqlite")):
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            if not db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tracking'"
            ).fetchone():
                continue
            for name, count in db.execute(
                "SELECT application_name, COUNT(*) FROM tracking "
                "WHERE application_name LIKE ? GROUP BY application_name",
                (f"{STREAM}/%",),
            ):
                rows[name.split("/")[1]] += count
    return rows


def applied_once(url: str, data_dir: Path) -> str | None:
    """None when every consumer that tracks what it applied has one record per distinct
    event (recognised by its publisher and position) and the audit log one record per
    event id; else what differs."""
    messages = stream_messages(url)
    tracked = _tracking_rows(data_dir)
    problems = []
    for durable, info in consumers(url).items():
        if durable not in tracked:
            continue  # no tracking of its own (idempotent writes, or the audit log below)
        distinct = {
            (event["service"], event["position"])
            for subject, event, _ in messages
            if any(_matches(f, subject) for f in _filters(info))
        }
        if tracked[durable] != len(distinct):
            problems.append(f"{durable}: {tracked[durable]} applied, {len(distinct)} events")
    logged = {
        str(event.event_id)
        for event in (parse_event(s, json_bytes(e)) for s, e, _ in messages)
        if event is not None and is_logged(event)
    }
    with sqlite3.connect(f"file:{data_dir / 'audit-log.sqlite'}?mode=ro", uri=True) as db:
        records = [row[0] for row in db.execute("SELECT event_id FROM audit_records")]
    if len(records) != len(set(records)) or set(records) != logged:
        problems.append(f"audit: {len(records)} records, {len(logged)} events")
    return "; ".join(problems) or None


def json_bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def assert_each_event_applied_once(url: str, data_dir: Path, timeout: float = 30.0) -> None:
    """Wait until nothing is pending anywhere and each projection agrees with the stream."""
    eventually(lambda: nothing_pending(url), timeout)
    last: list[str | None] = [None]

    def agrees() -> bool:
        last[0] = applied_once(url, data_dir)
        return last[0] is None and nothing_pending(url)

    try:
        eventually(agrees, timeout)
    except AssertionError as error:
        raise AssertionError(f"not applied exactly once: {last[0]}") from error
