"""The staff-entry overlay as kubectl renders it: the citizens' host routes no staff-only
path, the staff host (internal ingress class) routes every path the public one had, and
the services are told the staff host (BB_STAFF_HOSTS) and the provider (BB_OIDC_*)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.common.entry import is_staff_only, staff_hosts
from services.common.oidc_access import check_mapping
from tests.deploy.test_policies import of

PUBLIC_HOST = "buergerbuero.example.org"
STAFF_HOST = "intranet.buergerbuero.example.org"


@pytest.fixture(scope="module")
def staff_entry(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["staff-entry"]


def _routes(docs: list[dict[str, Any]], host: str) -> list[tuple[str, str, str, str]]:
    """(ingress class, path, path type, backend service) of every rule for ``host``."""
    return [
        (ingress["spec"]["ingressClassName"], path["path"], path["pathType"],
         path["backend"]["service"]["name"])
        for ingress in of(docs, "Ingress")
        for rule in ingress["spec"]["rules"] if rule["host"] == host
        for path in rule["http"]["paths"]
    ]


# Prefixes under which every route is a staff one (the mixed ones, such as
# /api/v1/departments, the services themselves refuse on the public host).
WHOLLY_STAFF = ("/api/v1/auth", "/api/v1/audit", "/api/v1/offices")


def test_the_public_host_routes_no_staff_only_prefix(staff_entry: list[dict[str, Any]]) -> None:
    public = _routes(staff_entry, PUBLIC_HOST)
    assert public, "the public Ingresses are gone"
    assert {route[0] for route in public} == {"nginx"}
    for prefix in WHOLLY_STAFF:
        assert is_staff_only(prefix) and is_staff_only(f"{prefix}/x")
        for _, path, path_type, service in public:
            if path_type == "Prefix":
                assert path == "/" or not prefix.startswith(path.rstrip("/")), (prefix, path)
                if path == "/":
                    assert service == "web"  # the pages: no API behind it
            else:
                assert not path.startswith(prefix), path


def test_the_staff_host_routes_everything_through_the_internal_controller(
        staff_entry: list[dict[str, Any]], production: list[dict[str, Any]]) -> None:
    staff = _routes(staff_entry, STAFF_HOST)
    assert {route[0] for route in staff} == {"nginx-internal"}
    everything = {route[1:] for route in _routes(production, PUBLIC_HOST)}
    assert everything <= {route[1:] for route in staff}
    for needed in ("/api/v1/auth", "/api/v1/audit", "/api/v1/offices"):
        assert any(path == needed for _, path, _, _ in staff), needed
    tls_hosts = {host for ingress in of(staff_entry, "Ingress")
                 if ingress["spec"]["ingressClassName"] == "nginx-internal"
                 for tls in ingress["spec"]["tls"] for host in tls["hosts"]}
    assert tls_hosts == {STAFF_HOST}


def test_the_services_know_the_staff_host_and_the_provider(
        staff_entry: list[dict[str, Any]]) -> None:
    (config,) = [c for c in of(staff_entry, "ConfigMap") if c["metadata"]["name"] == "bb-config"]
    data = config["data"]
    assert staff_hosts(data["BB_STAFF_HOSTS"]) == {STAFF_HOST}
    assert data["BB_LOCAL_ACCOUNTS"] == "false"
    assert data["BB_OIDC_REDIRECT_URL"].startswith(f"https://{STAFF_HOST}/api/v1/auth/oidc/")
    mapping = json.loads(data["BB_OIDC_GROUP_MAP"])
    check_mapping(mapping)
    assert {"dpo", "operator"} <= set(mapping.values())


def test_the_staff_only_patterns_name_real_staff_routes() -> None:
    for path in ("/staff", "/staff/login", "/dpo", "/api/v1/auth/login",
                 "/api/v1/auth/oidc/callback", "/api/v1/audit/records", "/api/v1/offices",
                 "/api/v1/departments/queues/stream", "/api/v1/departments/x/queue/admit-next",
                 "/api/v1/tickets/x/admit", "/api/v1/consultations/x",
                 "/api/v1/consultations/x/invitations", "/api/v1/consultations/x/end"):
        assert is_staff_only(path), path
    for path in ("/", "/visit", "/office/x", "/invite/x", "/api/v1/departments",
                 "/api/v1/departments/x", "/api/v1/departments/x/knock",
                 "/api/v1/departments/x/slots", "/api/v1/tickets/x", "/api/v1/tickets/x/stream",
                 "/api/v1/tickets/x/withdraw", "/api/v1/consultations/x/join",
                 "/api/v1/consultations/x/interpreter-join", "/api/v1/consultations/x/leave",
                 "/api/v1/media/consultations/x/signal", "/static/js/staff-login.js",
                 "/api/v1/appointments/x"):
        assert not is_staff_only(path), path
