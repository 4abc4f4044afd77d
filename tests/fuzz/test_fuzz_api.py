"""Every API operation fuzzed from its OpenAPI description (schemathesis) against a running
`buergerbuero up`: as a citizen without a session, as staff (a department admin) and as the
data protection officer, each with their session cookie and CSRF token.

For every generated request: no 5xx; a response with a documented status matches its
schema and content type; and a refused request (4xx) changes no state — no service stores
an event, no personal data is kept, the audit log does not grow. No unhandled exception is
logged by the system. Bounded: a fixed number of examples per operation, derandomized, so a
run costs the same every time and a failure reproduces.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.core.failures import FailureGroup

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.helpers import DEMO_PASSWORD, eventually

pytestmark = pytest.mark.timeout(420)

EXAMPLES = 4  # per operation; three identities call each example
# Server-sent event streams never end: their refusals are tested in tests/security.
ENDLESS = ("/stream",)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
SESSION_PATHS = {"/api/v1/auth/login", "/api/v1/auth/logout"}


@dataclass
class Identity:
    name: str
    base: str
    username: str | None = None
    session: requests.Session = field(default_factory=requests.Session)
    headers: dict[str, str] = field(default_factory=dict)

    def sign_in(self) -> None:
        self.session = requests.Session()
        self.headers = {}
        if self.username is None:
            return
        response = self.session.post(f"{self.base}/api/v1/auth/login", timeout=10,
                                     json={"username": self.username, "password": DEMO_PASSWORD})
        assert response.status_code == 200, response.text
        self.headers = {"X-CSRF-Token": response.json()["csrf_token"]}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    root = tmp_path_factory.mktemp("fuzz")
    nats = EmbeddedNats(root / "nats")
    nats.start()
    # The office clock runs once at start, then not again during the run: opening hours
    # must not store events while refusals are checked for changing nothing.
    # So do the audit's checkpoint and gap timers.
    system = SystemProcess(root / "data", nats.url, env={
        "BB_OFFICE_CLOCK_SECONDS": "86400", "BB_AUDIT_CHECKPOINT_SECONDS": "86400",
        "BB_AUDIT_GAP_CHECK_SECONDS": "86400", "BB_LOG_LEVEL": "INFO"})
    try:
        system.start(timeout=90)  # the whole suite may load the machine
        yield system
    finally:
        system.stop()
        nats.stop()


def stored(data_dir: Path) -> dict[str, int]:
    """Events in every service's store, personal data kept, records in the audit log."""
    counts: dict[str, int] = {}
    for path in sorted(data_dir.glob("*.sqlite")):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            for table in ("stored_events", "personal_data", "audit_records"):
                if table in tables:
                    (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
                    counts[f"{path.stem}.{table}"] = count
    return counts


def last_sequence(nats_url: str) -> int:
    async def ask() -> int:
        connection = await nats.connect(nats_url)
        try:
            info = await connection.jetstream().stream_info("BB")
            return int(info.state.last_seq)
        finally:
            await connection.close()

    return asyncio.run(ask())


def settled(system: SystemProcess, nats_url: str) -> bool:
    """Every stored event published, and the audit has taken in the whole stream."""
    text = httpx.get(f"{system.base}/metrics", timeout=10).text
    lag = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("bb_relay_lag_events{"))
    with sqlite3.connect(f"file:{system.data_dir / 'audit-log.sqlite'}?mode=ro", uri=True,
                         timeout=10) as db:
        row = db.execute("SELECT stream_sequence FROM audit_consumer").fetchone()
    return lag == 0 and row is not None and row[0] >= last_sequence(nats_url)


def fuzz_operation(operation: Any, identities: list[Identity], system: SystemProcess,
                   nats_url: str, failures: dict[tuple[str, str], str]) -> None:
    dirty = [True]  # an accepted request may still be on its way to the audit

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        for identity in identities:
            if dirty[0]:
                eventually(lambda: settled(system, nats_url), timeout=30)
                dirty[0] = False
            before = stored(system.data_dir)
            response = case.call(session=identity.session,
                                 headers={**(case.headers or {}), **identity.headers},
                                 allow_redirects=False, timeout=30)
            where = f"{identity.name}: {case.as_curl_command()} -> {response.status_code}"
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:
                for failure in group.exceptions:
                    failures[(operation.label, failure.title)] = f"{where}\n{failure}"
            after = stored(system.data_dir)
            if after != before:
                dirty[0] = True
                if response.status_code >= 400 and not only_reads_recorded(
                        system.data_dir, before, after):
                    failures[(operation.label, "state changed by a refusal")] = (
                        f"{where}: refused, but changed {diff(before, after)}")
            elif response.status_code < 400:
                dirty[0] = True
            if case.operation.path in SESSION_PATHS:
                identity.sign_in()

    run()


def only_reads_recorded(data_dir: Path, before: dict[str, int], after: dict[str, int]) -> bool:
    """Staff's and DPOs' reads are on the record even when they find nothing (docs/audit.md):
    the only change a refused read may make is that record (`...Viewed`, and the audit log
    appending it)."""
    recorded = 0
    for key, (old, new) in diff(before, after).items():
        store, table = key.split(".")
        if table != "stored_events" or new < old:
            continue
        with sqlite3.connect(f"file:{data_dir / store}.sqlite?mode=ro", uri=True) as db:
            topics = [r[0] for r in db.execute(
                "SELECT topic FROM stored_events ORDER BY rowid DESC LIMIT ?", (new - old,))]
        if not all(t.endswith(".Viewed") for t in topics):
            return False
        recorded += new - old
    changed = diff(before, after)
    log = changed.pop("audit-log.audit_records", (0, 0))
    return all(k.endswith("stored_events") for k in changed) and log[1] - log[0] <= recorded


def diff(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {k: (before.get(k, 0), after.get(k, 0)) for k in before.keys() | after.keys()
            if before.get(k) != after.get(k)}


def test_every_api_operation_under_fuzzing(running: SystemProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{running.base}/api/v1/openapi.json")
    identities = [Identity("anonymous", running.base), Identity("staff", running.base, "anna"),
                  Identity("dpo", running.base, "dora")]
    for identity in identities:
        identity.sign_in()
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if not op.path.endswith(ENDLESS)]
    assert len(fuzzed) >= 50, [op.label for op in fuzzed]

    failures: dict[tuple[str, str], str] = {}  # one example per operation and kind of fault
    for operation in fuzzed:
        fuzz_operation(operation, identities, running, running.env["BB_NATS_URL"], failures)

    assert not failures, "\n\n".join(f"{label} — {kind}\n{example}"
                                      for (label, kind), example in failures.items())
    log = running.log_path.read_text()
    assert "Exception in ASGI application" not in log
    assert '"level": "error"' not in log, [
        line for line in log.splitlines() if '"level": "error"' in line][:5]
