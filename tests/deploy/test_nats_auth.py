"""NATS in Kubernetes has the same users and permissions as the embedded server, and each
service connects with its own credentials from its own Secret."""

from __future__ import annotations

from typing import Any

import yaml

from services.common.natsaccess import SERVICES, permissions
from tests.deploy.conftest import K8S

VALUES = K8S / "nats" / "values.yaml"


def users() -> dict[str, dict[str, Any]]:
    values = yaml.safe_load(VALUES.read_text())
    listed = values["config"]["merge"]["authorization"]["users"]
    return {user["user"]: user for user in listed}


def password_variable(user: dict[str, Any]) -> str:
    """``<< $NAME >>``: rendered unquoted, the server reads the environment variable NAME."""
    text = user["password"].strip()
    assert text.startswith("<< $") and text.endswith(">>"), text
    return str(text[4:-2].strip())


def test_every_service_is_a_user_with_the_embedded_servers_permissions() -> None:
    listed = users()
    assert set(listed) == {*SERVICES, "operator"}
    for service in SERVICES:
        assert listed[service]["permissions"] == permissions(service), service
        assert f"bb.{service}.>" in listed[service]["permissions"]["publish"]["allow"]


def test_no_service_may_publish_another_services_events() -> None:
    for service, user in users().items():
        if service == "operator":
            continue
        allowed = user["permissions"]["publish"]["allow"]
        events = {subject for subject in allowed if subject.startswith("bb.")}
        assert events == {f"bb.{service}.>"}, service
        assert ">" not in allowed and "bb.>" not in allowed


def test_passwords_come_from_one_secret_per_user() -> None:
    values = yaml.safe_load(VALUES.read_text())
    env = values["container"]["env"]
    for name, user in users().items():
        variable = password_variable(user)
        assert env[variable]["valueFrom"]["secretKeyRef"] == {
            "name": f"bb-nats-{name}", "key": "password"}


def _env(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item for item in container.get("env", [])}


def test_each_service_connects_as_its_own_user(production: list[dict[str, Any]]) -> None:
    workloads = {d["metadata"]["name"]: d for d in production
                 if d["kind"] in ("Deployment", "StatefulSet")}
    for service in SERVICES:
        env = _env(workloads[service])
        for setting, key in (("BB_NATS_USER", "username"), ("BB_NATS_PASSWORD", "password")):
            assert env[setting]["valueFrom"]["secretKeyRef"] == {
                "name": f"bb-nats-{service}", "key": key}, (service, setting)
    # the pages never connect to NATS: no credentials for them
    assert "BB_NATS_PASSWORD" not in _env(workloads["web"])
