"""Metric names: what the code defines, and what PromQL uses."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

import promql_parser

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"Counter", "Gauge", "Histogram", "Summary"}

# Metrics that come from elsewhere (Prometheus itself, kube-state-metrics).
EXTERNAL = {
    "up",
    "kube_pod_status_ready",
    "kube_pod_container_status_restarts_total",
}

# What Grafana replaces before a query reaches Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$department": ".*",
}


def defined_metrics(root: Path = ROOT / "services") -> dict[str, str]:
    """Every `Counter/Gauge/Histogram/Summary("name", ...)` in the services: name -> kind."""
    found: dict[str, str] = {}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            kind = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            first = node.args[0]
            if kind in KINDS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found[first.value] = kind
    return found


def exposed_names(defined: dict[str, str]) -> set[str]:
    """The sample names prometheus_client exposes for each definition."""
    names: set[str] = set()
    for name, kind in defined.items():
        if kind == "Counter":
            base = name.removesuffix("_total")
            names |= {f"{base}_total", f"{base}_created"}
        elif kind in ("Histogram", "Summary"):
            names |= {name, f"{name}_sum", f"{name}_count", f"{name}_created"}
            if kind == "Histogram":
                names.add(f"{name}_bucket")
        else:
            names.add(name)
    return names


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Parse a PromQL expression (raises on a syntax error) and name its metrics."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            else:
                match = re.search(r'__name__\s*=\s*"([^"]+)"', str(node.matchers))
                if match:
                    names.add(match.group(1))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def unknown(names: Iterable[str], known: set[str]) -> set[str]:
    return {n for n in names if n not in known and n not in EXTERNAL}
