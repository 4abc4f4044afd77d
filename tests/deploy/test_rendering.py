"""The deploy tests check the overlays as kubectl renders them, never the base in their place."""

from __future__ import annotations

from typing import Any

from tests.deploy.test_policies import of


def test_the_production_overlay_is_rendered_with_its_patches(
        production: list[dict[str, Any]]) -> None:
    (hpa,) = [h for h in of(production, "HorizontalPodAutoscaler")
              if h["metadata"]["name"] == "queue"]
    assert hpa["spec"]["maxReplicas"] == 20
    (config,) = [c for c in of(production, "ConfigMap") if c["metadata"]["name"] == "bb-config"]
    assert config["data"]["BB_PUBLIC_URL"] == "https://buergerbuero.example.org"
    images = {c["image"] for w in of(production, "Deployment") + of(production, "StatefulSet")
              for c in w["spec"]["template"]["spec"]["containers"]
              if "buergerbuero" in c["image"]}
    assert images == {"registry.example.org/buergerbuero/buergerbuero:0.1.0"}


def test_the_base_and_the_overlay_differ(rendered: dict[str, list[dict[str, Any]]]) -> None:
    base_hpa = [h for h in of(rendered["base"], "HorizontalPodAutoscaler")
                if h["metadata"]["name"] == "queue"]
    assert base_hpa[0]["spec"]["maxReplicas"] != 20
