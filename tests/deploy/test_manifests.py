"""deploy/k8s renders, and every object is valid against the Kubernetes schemas (offline)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import K8S, OVERLAYS

K8S_VERSION = "1.32.0"
# Custom resources: no schema ships with kubernetes-validate; checked by hand below.
CUSTOM = {
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
}


def test_there_is_a_production_overlay() -> None:
    assert "production" in {p.name for p in OVERLAYS}


@pytest.mark.parametrize("name", ["base", *[p.name for p in OVERLAYS]])
def test_every_object_is_valid_strictly(
    rendered: dict[str, list[dict[str, Any]]], name: str
) -> None:
    problems = []
    for doc in rendered[name]:
        key = (doc["apiVersion"], doc["kind"])
        if key in CUSTOM:
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {error.message}")
    assert not problems, "\n".join(problems)


def test_only_known_custom_resources(production: list[dict[str, Any]]) -> None:
    builtin_groups = ("v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2",
                      "networking.k8s.io/v1")
    for doc in production:
        key = (doc["apiVersion"], doc["kind"])
        assert key in CUSTOM or doc["apiVersion"] in builtin_groups, key


def test_the_validator_rejects_an_unknown_field() -> None:
    """Guard against a validator that silently passes everything."""
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "datum": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_names_are_unique(production: list[dict[str, Any]]) -> None:
    keys = [(d["kind"], d["metadata"]["name"]) for d in production]
    assert len(keys) == len(set(keys))


def test_everything_lands_in_the_namespace(production: list[dict[str, Any]]) -> None:
    for doc in production:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "buergerbuero", doc["metadata"]["name"]


def test_cloudnativepg_cluster(production: list[dict[str, Any]]) -> None:
    (cluster,) = [d for d in production if d["kind"] == "Cluster"]
    spec = cluster["spec"]
    assert spec["instances"] >= 3
    assert spec["storage"]["size"]
    assert spec["bootstrap"]["initdb"]["database"] == "buergerbuero"
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    assert set(roles) == {"rooms", "queue", "audit", "media", "booking"}
    sql = "\n".join(spec["bootstrap"]["initdb"]["postInitApplicationSQL"])
    for role in roles:
        assert f"CREATE SCHEMA {role} AUTHORIZATION {role}" in sql
        assert roles[role]["passwordSecret"]["name"] == f"bb-db-{role}"
    assert "backup" in spec
    backups = [d for d in production if d["kind"] == "ScheduledBackup"]
    assert backups and backups[0]["spec"]["cluster"]["name"] == cluster["metadata"]["name"]


def test_pod_monitors(production: list[dict[str, Any]]) -> None:
    monitors = {d["metadata"]["name"]: d for d in production if d["kind"] == "PodMonitor"}
    ours = monitors["buergerbuero"]["spec"]
    assert ours["selector"]["matchLabels"] == {"buergerbuero/metrics": "true"}
    assert ours["podMetricsEndpoints"][0]["path"] == "/metrics"
    scraped = [
        d for d in production
        if d["kind"] in ("Deployment", "StatefulSet")
        and d["spec"]["template"]["metadata"]["labels"].get("buergerbuero/metrics") == "true"
    ]
    assert {d["metadata"]["name"] for d in scraped} == {
        "rooms", "queue", "audit", "media", "booking", "web"}


def test_dashboard_config_map(production: list[dict[str, Any]]) -> None:
    (cm,) = [d for d in production if d["metadata"]["name"] == "buergerbuero-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "buergerbuero.json" in cm["data"]


def test_nats_helm_values() -> None:
    values = yaml.safe_load((K8S / "nats" / "values.yaml").read_text())
    config = values["config"]
    assert config["cluster"] == {"enabled": True, "replicas": 3}
    jetstream = config["jetstream"]
    assert jetstream["enabled"] and jetstream["fileStore"]["enabled"]
    assert jetstream["fileStore"]["pvc"]["enabled"]
    assert jetstream["merge"]["sync_interval"] == "always"
    assert values["podDisruptionBudget"]["enabled"]
    assert values["promExporter"]["podMonitor"]["enabled"]


def test_stream_and_buckets_have_a_replica_on_every_nats_server(
    production: list[dict[str, Any]],
) -> None:
    """The services create the stream and the KV buckets with BB_NATS_REPLICAS replicas
    (and raise existing ones): one on each server, so losing one stops nothing."""
    values = yaml.safe_load((K8S / "nats" / "values.yaml").read_text())
    (config,) = [d for d in production
                 if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "bb-config"]
    assert int(config["data"]["BB_NATS_REPLICAS"]) == values["config"]["cluster"]["replicas"]
