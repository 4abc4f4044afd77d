"""The DPO's API on the running system: what it shows, who may see it, what it never holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from services.audit.note import VerifierKey
from services.audit.verify import verify_export
from tests.audit.visits import PLANTED, Visits
from tests.helpers import StaffClient, eventually

FAST = {"BB_AUDIT_CHECKPOINT_SECONDS": "1", "BB_AUDIT_GAP_CHECK_SECONDS": "1"}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One system for the module: a few visits with planted personal data."""
    from services.common.natsserver import EmbeddedNats
    from tests.conftest import SystemProcess

    root = tmp_path_factory.mktemp("dpo")
    nats = EmbeddedNats(root / "nats")
    nats.start()
    system = SystemProcess(root / "data", nats.url, env=FAST)
    system.start()
    visits = Visits(system.base, system.base)
    dept = visits.open_office("demo")
    consultations = [visits.consultation(dept, n, interpreter=n == 0) for n in range(3)]
    yield system, dept, consultations
    system.stop()
    nats.stop()


@pytest.fixture(scope="module")
def dora(running) -> StaffClient:  # type: ignore[no-untyped-def]
    return StaffClient(f"{running[0].base}/api/v1", "dora")


def timeline_of(dora: StaffClient, consultation: str, steps: int) -> dict:  # type: ignore[type-arg]
    def ready() -> dict | None:  # type: ignore[type-arg]
        response = dora.get(f"/audit/consultations/{consultation}")
        body = response.json()
        return body if response.status_code == 200 and len(body["steps"]) >= steps else None

    return dict(eventually(ready, timeout=20))


def test_a_consultation_timeline(running, dora: StaffClient) -> None:  # type: ignore[no-untyped-def]
    _, dept, consultations = running
    timeline = timeline_of(dora, consultations[0], 9)
    events = [s["event"] for s in timeline["steps"]]
    assert events[:3] == ["Knocked", "Admitted", "ConsultationOpened"]
    assert events.index("ConsultationEnded") > events.index("InterpreterJoined")
    assert {"InterpreterInvited", "InterpreterJoined", "ParticipantLeft"} <= set(events)
    admitted = timeline["steps"][1]
    assert admitted["admitted_by"] == "anna"
    roles = sorted(s["role"] for s in timeline["steps"] if s["event"] == "ParticipantJoined")
    assert roles == ["citizen", "staff"]
    assert timeline["durations"]["waited_seconds"] >= 0
    assert timeline["durations"]["consultation_seconds"] > 0
    assert len(timeline["durations"]["presence_seconds"]) == 3
    assert timeline["department_id"] == dept

    today = datetime.now(UTC).date().isoformat()
    listed = dora.get(f"/audit/consultations?department_id={dept}&date={today}&tz=UTC").json()
    assert set(consultations) <= {c["consultation_id"] for c in listed}
    found = dora.get(f"/audit/search?id={timeline['ticket_id']}").json()
    assert found["kind"] == "ticket" and found["consultation_id"] == consultations[0]
    assert dora.get(f"/audit/search?id={consultations[1]}").json()["kind"] == "consultation"
    stats = dora.get(f"/audit/statistics?department_id={dept}&from={today}&to={today}"
                     "&tz=UTC").json()
    assert stats["counts"]["Knocked"] >= 3 and stats["counts"]["ConsultationEnded"] >= 3
    assert stats["wait_seconds"]["count"] >= 3


def test_only_a_dpo_reads(running) -> None:  # type: ignore[no-untyped-def]
    system, dept, consultations = running
    paths = [f"/audit/consultations/{consultations[0]}", "/audit/records", "/audit/export",
             "/audit/verify", f"/audit/search?id={consultations[0]}", "/audit/views",
             "/audit/records/0/proof", "/audit/checkpoint/fresh",
             f"/audit/consultations?department_id={dept}&date=2026-01-01",
             f"/audit/statistics?department_id={dept}&from=2026-01-01&to=2026-01-02"]
    anonymous = system.client()
    for path in paths:
        assert anonymous.get(path).status_code == 401, path
    for name in ("anna", "otto"):  # staff and operator
        other = StaffClient(f"{system.base}/api/v1", name)
        for path in paths:
            assert other.get(path).status_code == 403, (name, path)
    # the log's state is public: anyone may keep a copy and check consistency
    checkpoint = anonymous.get("/audit/checkpoint")
    assert checkpoint.status_code == 200 and checkpoint.headers["content-type"].startswith(
        "text/plain")
    assert VerifierKey.parse(anonymous.get("/audit/key").text.strip())
    size = int(checkpoint.text.split("\n")[1])
    proof = anonymous.get(f"/audit/proof/consistency?first=1&second={size}")
    assert proof.status_code == 200 and proof.json()["proof"]


def test_nobody_can_write_or_delete_through_any_api(running, dora: StaffClient) -> None:  # type: ignore[no-untyped-def]
    system, _, consultations = running
    spec = httpx.get(f"{system.base}/api/v1/openapi.json").json()
    audit_paths = {p: ops for p, ops in spec["paths"].items() if p.startswith("/api/v1/audit")}
    assert len(audit_paths) >= 12
    assert {method for ops in audit_paths.values() for method in ops} == {"get"}
    size = int(dora.get("/audit/checkpoint").text.split("\n")[1])
    for path in audit_paths:
        concrete = re.sub(r"\{[^}]+\}", lambda m: "0" if m.group() == "{index}"
                          else consultations[0], path)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = dora.http.request(method, f"{system.base}{concrete}",
                                         headers={"X-CSRF-Token": dora.csrf}, json={})
            assert response.status_code == 405, (method, concrete, response.status_code)
    assert int(dora.get("/audit/checkpoint/fresh").text.split("\n")[1]) >= size


def test_a_dpo_read_is_itself_on_the_record(running, dora: StaffClient) -> None:  # type: ignore[no-untyped-def]
    _, _, consultations = running
    assert dora.get(f"/audit/search?id={consultations[2]}").status_code == 200

    def recorded() -> bool:
        views = dora.get("/audit/views?limit=1000").json()
        return any(v["staff_id"] == "dora" and v["action"] == "search"
                   and v["target"] == f"id={consultations[2]}" for v in views)

    assert eventually(recorded, timeout=20)


def test_exports_verify_and_hold_no_personal_data(running, dora: StaffClient,
                                                  tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    system, _, consultations = running
    timeline_of(dora, consultations[-1], 7)
    exported = dora.get("/audit/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    key = VerifierKey.parse(dora.get("/audit/key").text.strip())
    report = verify_export(exported.content.splitlines(keepends=True), key)
    assert report.ok and report.records > 20, report.failure
    with_proofs = dora.get(f"/audit/export?start={report.end - 5}&proofs=true")
    assert verify_export(with_proofs.content.splitlines(keepends=True), key).ok
    online = dora.get("/audit/verify").json()
    assert online["ok"], online

    stored = b"".join(path.read_bytes() for path in sorted(system.data_dir.glob("audit*"))
                      if path.is_file() and not path.name.endswith(".key"))
    assert len(stored) > 10_000
    for planted in PLANTED:
        for text in (planted, planted.lower(), planted.upper()):
            assert text.encode() not in exported.content, planted
            assert text.encode() not in with_proofs.content, planted
            assert text.encode() not in stored, planted
