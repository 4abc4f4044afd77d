"""Every alert evaluated by Prometheus's own promtool: the rules load, and each alert fires
when it should and stays quiet when it should not (deploy/k8s/base/monitoring/rules.test.yaml).

promtool comes with Debian's `prometheus` package (scripts/test-packages.txt); without it
these tests fail rather than skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import K8S

TESTS = K8S / "base" / "monitoring" / "rules.test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool not found: ./scripts/install-test-packages.sh installs Debian's "
                    "prometheus package, which carries it")
    return found


@pytest.fixture(scope="module")
def rule_dir(production: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The PrometheusRule as kubectl renders it, as a plain Prometheus rule file."""
    (rule,) = [d for d in production if d["kind"] == "PrometheusRule"]
    directory = tmp_path_factory.mktemp("rules")
    (directory / "prometheus-rules.yaml").write_text(
        yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    shutil.copy(TESTS, directory / TESTS.name)
    return directory


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def alerts(rule_dir: Path) -> set[str]:
    doc = yaml.safe_load((rule_dir / "prometheus-rules.yaml").read_text())
    return {r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r}


def test_promtool_accepts_the_rules(promtool: str, rule_dir: Path) -> None:
    result = run(promtool, "check", "rules", "prometheus-rules.yaml", cwd=rule_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts(rule_dir))} rules found" in result.stdout


def test_every_alert_passes_its_unit_tests(promtool: str, rule_dir: Path) -> None:
    result = run(promtool, "test", "rules", TESTS.name, cwd=rule_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet(rule_dir: Path) -> None:
    cases = [case for test in yaml.safe_load(TESTS.read_text())["tests"]
             for case in test["alert_rule_test"]]
    fires = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert alerts(rule_dir) - fires == set(), "alerts never seen firing"
    assert alerts(rule_dir) - quiet == set(), "alerts never seen staying quiet"


def test_a_broken_expectation_fails(promtool: str, rule_dir: Path) -> None:
    """The unit tests can fail: an alert expected where none fires is reported."""
    doc = yaml.safe_load(TESTS.read_text())
    doc["tests"] = [{
        "interval": "1m",
        "input_series": [{"series": 'up{job="buergerbuero-web", pod="web-0"}', "values": "1x10"}],
        "alert_rule_test": [{"eval_time": "10m", "alertname": "BuergerbueroServiceDown",
                             "exp_alerts": [{"exp_labels": {"severity": "critical"}}]}],
    }]
    (rule_dir / "broken.test.yaml").write_text(yaml.safe_dump(doc))
    result = run(promtool, "test", "rules", "broken.test.yaml", cwd=rule_dir)
    assert result.returncode != 0
    assert "BuergerbueroServiceDown" in result.stdout + result.stderr
