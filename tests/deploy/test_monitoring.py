"""Alert rules and the dashboard parse as PromQL and use only metrics the code defines."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import K8S
from tests.deploy.metrics import defined_metrics, exposed_names, metric_names, substitute, unknown

ROOT = Path(__file__).resolve().parents[2]
RULES = K8S / "base" / "monitoring" / "rules.yaml"
DASHBOARD = K8S / "base" / "monitoring" / "dashboards" / "buergerbuero.json"
OPERATIONS = ROOT / "docs" / "operations.md"


@pytest.fixture(scope="module")
def known() -> set[str]:
    return exposed_names(defined_metrics())


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for group in doc["spec"]["groups"] for r in group["rules"]]


def panel_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


def test_the_code_defines_the_metrics_this_relies_on(known: set[str]) -> None:
    """The scan itself works: a few metrics every service exports are found."""
    assert {"bb_http_requests_total", "bb_relay_lag_events", "bb_queue_wait_seconds_bucket",
            "bb_consumer_lag_events"} <= known


def test_a_renamed_metric_is_noticed(known: set[str]) -> None:
    assert unknown(metric_names("rate(bb_queue_knocks_renamed_total[5m])"), known) == {
        "bb_queue_knocks_renamed_total"}


def test_a_syntax_error_is_noticed() -> None:
    with pytest.raises(ValueError):
        metric_names("sum(rate(bb_queue_knocks_total[5m])")


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_alert_rule(rule: dict[str, Any], known: set[str]) -> None:
    names = metric_names(rule["expr"])
    assert names, "an alert on no metric"
    assert not unknown(names, known), f"metrics not in the code: {unknown(names, known)}"
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"]
    anchor = rule["annotations"]["runbook"].split("#", 1)[1]
    assert anchor == rule["alert"].lower()


def test_every_alert_has_a_runbook_entry() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS.read_text().splitlines() if line.startswith("#")
    }
    missing = [r["alert"] for r in rules() if r["alert"].lower() not in headings]
    assert not missing, f"no runbook heading in docs/operations.md for {missing}"


def test_the_alerts_the_operators_asked_for() -> None:
    names = {r["alert"] for r in rules()}
    assert {"BuergerbueroServiceDown", "BuergerbueroNotReady", "BuergerbueroRelayLagGrowing",
            "BuergerbueroConsumerLag", "BuergerbueroQueueWaitLong", "BuergerbueroMediaPacketLoss",
            "BuergerbueroAuditChainNotGrowing", "BuergerbueroAuditCheckpointStale"} <= names


def test_rule_file_matches_the_rendered_prometheus_rule(production: list[dict[str, Any]]) -> None:
    (rule,) = [d for d in production if d["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(RULES.read_text())["spec"]
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            if "for" in r:
                assert re.fullmatch(r"\d+[smh]", r["for"])


@pytest.mark.parametrize("title,expr", panel_exprs(), ids=[t for t, _ in panel_exprs()])
def test_dashboard_query(title: str, expr: str, known: set[str]) -> None:
    names = metric_names(substitute(expr))
    assert names
    assert not unknown(names, known), f"{title}: metrics not in the code: {unknown(names, known)}"


def test_dashboard_variables_and_coverage(known: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["definition"])
            assert match and match.group(1) in known
    used = set().union(*(metric_names(substitute(e)) for _, e in panel_exprs()))
    # What the operators asked to see.
    for wanted in ("bb_queue_waiting", "bb_queue_wait_seconds_bucket", "bb_queue_knocks_total",
                   "bb_queue_admissions_total", "bb_queue_open_streams", "bb_relay_lag_events",
                   "bb_consumer_lag_events", "bb_http_request_duration_seconds_bucket",
                   "bb_http_requests_total", "bb_media_peers", "bb_media_received_bytes_total",
                   "bb_media_packets_lost_total", "bb_media_round_trip_seconds_bucket",
                   "bb_audit_log_size"):
        assert wanted in used, wanted
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
