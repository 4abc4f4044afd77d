"""Render deploy/k8s offline once per session for the deploy tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))


def render(kustomization: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` where kubectl exists; otherwise the base's plain files.

    The fallback reads the resources a kustomization lists (recursively) without
    patches or generators: the policy and schema checks still see every object.
    """
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run(
            [kubectl, "kustomize", str(kustomization)],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]
    return _plain(kustomization)


def _plain(directory: Path) -> list[dict[str, Any]]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            docs += _plain(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    namespace = spec.get("namespace")
    if namespace:
        for doc in docs:
            if doc["kind"] != "Namespace":
                doc["metadata"].setdefault("namespace", namespace)
    return docs


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {p.name: render(p) for p in [K8S / "base", *OVERLAYS]}


@pytest.fixture(scope="session")
def production(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["production"]
