"""House rules for every workload, Service, Ingress and NetworkPolicy in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.common.settings import Settings
from services.common.web import NESTED_ROUTES, ROUTES, _service_of

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
SERVICES = {"rooms", "queue", "audit", "media", "booking", "web"}
WORKLOADS = ("Deployment", "StatefulSet")


def of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value, op = labels.get(expr["key"]), expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in WORKLOADS]


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["metadata"]["name"] for d in docs]


def test_every_service_has_its_workload(production: list[dict[str, Any]]) -> None:
    assert set(ids(workloads(production))) >= SERVICES


@pytest.fixture(scope="module")
def all_workloads(production: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return workloads(production)


def test_probes(all_workloads: list[dict[str, Any]]) -> None:
    for w in all_workloads:
        for c in w["spec"]["template"]["spec"]["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, f"{w['metadata']['name']}/{c['name']} has no {probe}"
            if w["metadata"]["name"] in SERVICES:
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert c["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_resources(production: list[dict[str, Any]]) -> None:
    pods = [w["spec"]["template"]["spec"] for w in workloads(production)]
    pods += [j["spec"]["template"]["spec"] for j in of(production, "Job")]
    for pod in pods:
        for c in pod["containers"]:
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][part]), c["name"]


def test_security_context(production: list[dict[str, Any]]) -> None:
    pods = [(w["metadata"]["name"], w["spec"]["template"]["spec"]) for w in workloads(production)]
    pods += [(j["metadata"]["name"], j["spec"]["template"]["spec"]) for j in of(production, "Job")]
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in sc["capabilities"], name


def test_images_are_pinned(production: list[dict[str, Any]]) -> None:
    pods = [w["spec"]["template"]["spec"] for w in workloads(production)]
    pods += [j["spec"]["template"]["spec"] for j in of(production, "Job")]
    for pod in pods:
        for c in pod["containers"]:
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image, image
            assert not image.endswith(":latest"), image


def test_every_workload_has_a_disruption_budget(production: list[dict[str, Any]]) -> None:
    budgets = of(production, "PodDisruptionBudget")
    for w in workloads(production):
        matching = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(w))]
        assert len(matching) == 1, w["metadata"]["name"]
        budget = matching[0]["spec"]
        if w["spec"].get("replicas", 1) == 1:
            # minAvailable 1 of 1 would block every node drain.
            assert budget.get("maxUnavailable") == 1, w["metadata"]["name"]


def test_selectors_match_their_pods(production: list[dict[str, Any]]) -> None:
    for w in workloads(production):
        assert selects(w["spec"]["selector"], pod_labels(w)), w["metadata"]["name"]


def test_services_select_pods_and_ports(production: list[dict[str, Any]]) -> None:
    for svc in of(production, "Service"):
        targets = [w for w in workloads(production) if selects(
            {"matchLabels": {k: v for k, v in svc["spec"]["selector"].items()
                             if k != "statefulset.kubernetes.io/pod-name"}}, pod_labels(w))]
        assert targets, f"Service {svc['metadata']['name']} selects no workload"
        ports = {p["name"] for w in targets for c in w["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports, (svc["metadata"]["name"], port)


def test_autoscalers(production: list[dict[str, Any]]) -> None:
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h
            for h in of(production, "HorizontalPodAutoscaler")}
    assert {"queue", "rooms", "web"} <= set(hpas)
    # Media scales by rooms and audit has one writer: no CPU autoscaling.
    assert "media" not in hpas and "audit" not in hpas
    for name, hpa in hpas.items():
        assert hpa["spec"]["minReplicas"] >= 2, name


@pytest.mark.parametrize("overlay", ["base", "production"])
def test_queue_pods_number_tickets_apart(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Each queue pod needs an index no other running pod has, below a count that
    the autoscaler can never exceed: otherwise two citizens may get one number."""
    docs = rendered[overlay]
    (queue,) = [w for w in workloads(docs) if w["metadata"]["name"] == "queue"]
    assert queue["kind"] == "StatefulSet"
    env = {e["name"]: e for e in queue["spec"]["template"]["spec"]["containers"][0]["env"]}
    index = env["BB_QUEUE_REPLICA_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert index == "metadata.labels['apps.kubernetes.io/pod-index']"
    (hpa,) = [h for h in of(docs, "HorizontalPodAutoscaler")
              if h["spec"]["scaleTargetRef"]["name"] == "queue"]
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
    assert int(env["BB_QUEUE_REPLICA_COUNT"]["value"]) == hpa["spec"]["maxReplicas"]
    assert queue["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]


def test_media_drains_its_rooms(production: list[dict[str, Any]]) -> None:
    (media,) = [w for w in workloads(production) if w["metadata"]["name"] == "media"]
    pod = media["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 3600
    assert "bb_media_peers" in str(pod["containers"][0]["lifecycle"]["preStop"])


def test_audit_has_one_writer(production: list[dict[str, Any]]) -> None:
    (audit,) = [w for w in workloads(production) if w["metadata"]["name"] == "audit"]
    assert audit["spec"]["replicas"] == 1
    assert audit["spec"]["strategy"]["type"] == "Recreate"


def test_network_policies_default_deny(production: list[dict[str, Any]]) -> None:
    policies = of(production, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny, "no default-deny policy"


def _allows_ingress(policies: list[dict[str, Any]], labels: dict[str, str], port: Any,
                    source: dict[str, Any] | None = None) -> bool:
    for p in policies:
        if "Ingress" not in p["spec"]["policyTypes"]:
            continue
        if not selects(p["spec"]["podSelector"], labels):
            continue
        for rule in p["spec"].get("ingress", []):
            ports = [r.get("port") for r in rule.get("ports", [])]
            if ports and port not in ports:
                continue
            if source is None or any(peer == source or (
                    "podSelector" in peer and "namespaceSelector" not in peer
                    and "namespaceSelector" not in source
                    and selects(peer["podSelector"], source.get("labels", {})))
                    for peer in rule.get("from", [{}])):
                return True
    return False


INGRESS_CONTROLLER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
}


def test_every_service_lets_its_callers_in(production: list[dict[str, Any]]) -> None:
    """Each Service's pods admit who calls them: the ingress controller for the HTTP
    services, the services for NATS and PostgreSQL, browsers for coturn."""
    policies = of(production, "NetworkPolicy")
    by_name = {w["metadata"]["name"]: w for w in workloads(production)}
    for svc in of(production, "Service"):
        name = svc["metadata"]["name"]
        component = svc["spec"]["selector"]["app.kubernetes.io/component"]
        labels = pod_labels(by_name[component] if component in by_name else by_name[name])
        for port in svc["spec"]["ports"]:
            target = port["targetPort"]
            if component in SERVICES:
                assert _allows_ingress(policies, labels, target, INGRESS_CONTROLLER), (name, target)
            else:
                assert _allows_ingress(policies, labels, by_number(by_name, component, target)), (
                    name, target)


def by_number(by_name: dict[str, Any], workload: str, port_name: Any) -> Any:
    for c in by_name[workload]["spec"]["template"]["spec"]["containers"]:
        for p in c.get("ports", []):
            if p["name"] == port_name:
                return p["containerPort"]
    return port_name


def test_services_reach_nats_and_postgres_only(production: list[dict[str, Any]]) -> None:
    policies = [p for p in of(production, "NetworkPolicy") if "Egress" in p["spec"]["policyTypes"]]
    nats = {"app.kubernetes.io/name": "nats", "app.kubernetes.io/component": "nats"}
    postgres = {"cnpg.io/cluster": "buergerbuero-pg"}
    for w in workloads(production):
        name = w["metadata"]["name"]
        if name not in SERVICES:
            continue
        labels = pod_labels(w)
        peers = []
        for p in policies:
            if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels):
                for rule in p["spec"]["egress"]:
                    peers += [peer["podSelector"]["matchLabels"] for peer in rule.get("to", [])]
                    assert rule.get("to"), f"{p['metadata']['name']} lets {name} out anywhere"
        allowed = [nats, postgres] + ([{"app.kubernetes.io/component": "coturn"}]
                                      if name == "media" else [])
        assert all(peer in allowed for peer in peers), (name, peers)
        if name != "web":
            assert nats in peers and postgres in peers, name


def test_nats_and_postgres_admit_the_services(production: list[dict[str, Any]]) -> None:
    policies = of(production, "NetworkPolicy")
    nats = {"app.kubernetes.io/name": "nats", "app.kubernetes.io/component": "nats"}
    postgres = {"cnpg.io/cluster": "buergerbuero-pg"}
    for w in workloads(production):
        if w["metadata"]["name"] in SERVICES - {"web"}:
            source = {"labels": pod_labels(w)}
            assert _allows_ingress(policies, nats, 4222, source), w["metadata"]["name"]
            assert _allows_ingress(policies, postgres, 5432, source), w["metadata"]["name"]


def test_media_and_coturn_reach_each_other(production: list[dict[str, Any]]) -> None:
    policies = of(production, "NetworkPolicy")
    media = {"app.kubernetes.io/component": "media"}
    coturn = {"app.kubernetes.io/component": "coturn"}
    assert _allows_ingress(policies, media, None, {"labels": coturn})
    assert _allows_ingress(policies, coturn, 3478)


def test_ingress_routes_match_the_application(production: list[dict[str, Any]]) -> None:
    (ingress,) = [i for i in of(production, "Ingress") if i["metadata"]["name"] == "buergerbuero"]
    routes = {p["path"]: p["backend"]["service"]["name"]
              for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    expected = {f"/api/v1/{prefix}": service for prefix, service in ROUTES.items()}
    expected |= {"/api/v1/audit": "audit", "/api/v1/media": "media", "/": "web"}
    assert routes == expected
    services = set(ids(of(production, "Service")))
    for ing in of(production, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                assert p["backend"]["service"]["name"] in services


def test_booking_routes_match_the_metrics_labels(production: list[dict[str, Any]]) -> None:
    """Booking's routes under /departments and /offices go to booking in the Ingress, and
    its requests are counted as booking's, not as the queue's or rooms'."""
    (ingress,) = [i for i in of(production, "Ingress") if i["metadata"]["name"] == "booking-routes"]
    routes = {p["path"]: p["backend"]["service"]["name"]
              for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert routes == NESTED_ROUTES
    department = "/api/v1/departments/0b6f3f0e-6f1a-4c39-9a55-2f4f0c1e6a10"
    office = "/api/v1/offices/0b6f3f0e-6f1a-4c39-9a55-2f4f0c1e6a10"
    assert _service_of(f"{department}/slots") == "booking"
    assert _service_of(f"{department}/appointments") == "booking"
    assert _service_of(f"{office}/appointments/some-id/cancel") == "booking"
    assert _service_of(f"{office}/schedule") == "booking"
    assert _service_of(f"{department}/knock") == "queue"
    assert _service_of(department) == "queue"
    assert _service_of(f"{office}/staff") == "rooms"
    assert _service_of("/api/v1/appointments/some-id") == "booking"


def test_media_replicas_have_a_route_each(production: list[dict[str, Any]]) -> None:
    (ingress,) = [i for i in of(production, "Ingress") if i["metadata"]["name"] == "media-replicas"]
    (media,) = [w for w in workloads(production) if w["metadata"]["name"] == "media"]
    paths = {p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert {f"media-{i}" for i in range(media["spec"]["replicas"])} <= paths


def _env(container: dict[str, Any]) -> list[str]:
    return [e["name"] for e in container.get("env", [])]


def test_settings_exist(production: list[dict[str, Any]]) -> None:
    """Every BB_ variable given to a service is a real setting (a typo is silently ignored)."""
    fields = {f"BB_{name.upper()}" for name in Settings.model_fields}
    (config,) = [c for c in of(production, "ConfigMap") if c["metadata"]["name"] == "bb-config"]
    given = [k for k in config["data"] if k.startswith("BB_")]
    for w in workloads(production):
        for c in w["spec"]["template"]["spec"]["containers"]:
            given += [n for n in _env(c) if n.startswith("BB_")]
    assert set(given) <= fields, set(given) - fields
    assert "BB_NATS_URL" in config["data"]


def test_database_urls_point_to_the_own_role(production: list[dict[str, Any]]) -> None:
    for w in workloads(production):
        name = w["metadata"]["name"]
        for c in w["spec"]["template"]["spec"]["containers"]:
            urls = [e["value"] for e in c.get("env", []) if e["name"] == "BB_DATABASE_URL"]
            if name in SERVICES - {"web"}:
                assert urls and urls[0].startswith(f"postgresql://{name}:"), name
            else:
                assert not urls, name


def test_secrets_are_provided_or_documented(production: list[dict[str, Any]]) -> None:
    """Secrets are not in the repository: each one referenced must be in the runbook."""
    rendered = set(ids(of(production, "Secret")))
    docs = OPERATIONS.read_text()
    referenced: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("secretKeyRef", "secretRef", "passwordSecret") and "name" in value:
                    referenced.add(value["name"])
                elif key == "secret" and isinstance(value, dict) and "secretName" in value:
                    referenced.add(value["secretName"])
                elif key == "tls" and isinstance(value, list):
                    referenced.update(t["secretName"] for t in value)
                elif key in ("accessKeyId", "secretAccessKey") and "name" in value:
                    referenced.add(value["name"])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(production)
    assert referenced
    missing = {s for s in referenced - rendered if f"`{s}`" not in docs}
    assert not missing, f"undocumented secrets: {missing}"
