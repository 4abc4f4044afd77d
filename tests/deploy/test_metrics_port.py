"""/metrics in Kubernetes: scraped on the operators' port, which only Prometheus reaches and
no Service or Ingress exposes; the public port answers 404 for it (BB_METRICS_PORT)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.test_policies import (
    INGRESS_CONTROLLER,
    _allows_ingress,
    of,
    pod_labels,
    workloads,
)

PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def scraped(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for w in workloads(docs) if pod_labels(w).get("buergerbuero/metrics") == "true"]


def metrics_port(docs: list[dict[str, Any]]) -> int:
    (config,) = [c for c in of(docs, "ConfigMap") if c["metadata"]["name"] == "bb-config"]
    return int(config["data"]["BB_METRICS_PORT"])


def container_ports(workload: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"]
            for c in workload["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])}


@pytest.fixture(scope="module")
def docs(production: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return production


def test_every_scraped_pod_has_the_operators_port(docs: list[dict[str, Any]]) -> None:
    port = metrics_port(docs)
    assert port != 8000
    assert scraped(docs), "no workload is scraped"
    for w in scraped(docs):
        assert container_ports(w).get("metrics") == port, w["metadata"]["name"]


def test_prometheus_scrapes_the_operators_port(docs: list[dict[str, Any]]) -> None:
    (monitor,) = [m for m in of(docs, "PodMonitor") if m["metadata"]["name"] == "buergerbuero"]
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    assert [e["port"] for e in endpoints] == ["metrics"]
    assert all(e["path"] == "/metrics" for e in endpoints)


def test_only_prometheus_reaches_the_operators_port(docs: list[dict[str, Any]]) -> None:
    policies = of(docs, "NetworkPolicy")
    for w in scraped(docs):
        labels = pod_labels(w)
        name = w["metadata"]["name"]
        assert _allows_ingress(policies, labels, "metrics", PROMETHEUS), name
        assert not _allows_ingress(policies, labels, "metrics", INGRESS_CONTROLLER), name
        # and Prometheus has no business on the public port any more
        assert not _allows_ingress(policies, labels, "http", PROMETHEUS), name


def test_no_service_or_ingress_exposes_the_metrics(docs: list[dict[str, Any]]) -> None:
    port = metrics_port(docs)
    for svc in of(docs, "Service"):
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] not in ("metrics", port), svc["metadata"]["name"]
    for ingress in of(docs, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert "metrics" not in path["path"], (ingress["metadata"]["name"], path)
