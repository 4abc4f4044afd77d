"""Percentiles and how the benchmarks print them."""

from __future__ import annotations

from typing import Any


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.1f} ms"


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": _ms(pct(values, 50)),
        "p99_ms": _ms(pct(values, 99)),
        "max_ms": _ms(max(values) if values else None),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def line(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"p50 {ms(pct(values, 50))}, p99 {ms(pct(values, 99))}, "
        f"max {ms(max(values))} (n={len(values)})"
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"
