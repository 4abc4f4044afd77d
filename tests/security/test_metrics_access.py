"""/metrics is for operators: on their own port (and with their token), never on the
public one; under the process tree that port still adds up every process. And the DPO
views answer an unknown time zone with a 422 that names it, not a 500."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from services.common.natsserver import EmbeddedNats, free_port
from tests.conftest import SystemProcess
from tests.helpers import StaffClient, department_id

TOKEN = "operators-metrics-token-for-the-test"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SystemProcess, int]]:
    root = tmp_path_factory.mktemp("metrics")
    nats = EmbeddedNats(root / "nats")
    nats.start()
    metrics_port = free_port()
    system = SystemProcess(root / "data", nats.url,
                           env={"BB_METRICS_PORT": str(metrics_port), "BB_METRICS_TOKEN": TOKEN})
    system.start()
    yield system, metrics_port
    system.stop()
    nats.stop()


def operators(port: int) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)


def test_the_public_port_does_not_serve_metrics(running: tuple[SystemProcess, int]) -> None:
    system, _ = running
    with httpx.Client(base_url=system.base, timeout=10) as public:
        assert public.get("/api/v1/departments").status_code == 200
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            response = public.get("/metrics", headers=headers)
            assert response.status_code == 404, response.text
            assert "bb_http_requests_total" not in response.text
        assert public.get("/healthz").status_code == 200  # probes keep working


def test_the_operators_port_serves_metrics_with_the_token(
    running: tuple[SystemProcess, int],
) -> None:
    _, port = running
    with operators(port) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert "token" in refused.json()["detail"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        served = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert served.status_code == 200
        assert "bb_http_requests_total" in served.text
        assert client.get("/readyz").status_code == 200
        # nothing but the operators' routes there
        assert client.get("/api/v1/departments").status_code == 404
        assert client.get("/").status_code == 404


def test_an_unknown_time_zone_is_a_422_that_names_it(running: tuple[SystemProcess, int]) -> None:
    system, _ = running
    dora = StaffClient(f"{system.base}/api/v1", "dora")
    with system.client() as citizen:
        dept = department_id(citizen, "demo")
    today = date.today().isoformat()
    for path in (f"/audit/consultations?department_id={dept}&date={today}&tz=Not/AZone",
                 f"/audit/statistics?department_id={dept}&from={today}&to={today}"
                 "&tz=Not/AZone"):
        response = dora.get(path)
        assert response.status_code == 422, response.text
        assert "Not/AZone" in response.json()["detail"]
        assert "Europe/Berlin" in response.json()["detail"]
    assert dora.get(f"/audit/consultations?department_id={dept}&date={today}"
                    "&tz=../../etc/passwd").status_code == 422
    assert dora.get(f"/audit/consultations?department_id={dept}&date={today}"
                    "&tz=Europe/Berlin").status_code == 200


def test_the_process_tree_adds_up_every_process_on_the_operators_port(
    system_factory, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    port = free_port()
    system = system_factory(env={"BB_METRICS_PORT": str(port)},
                            args=["up", "--queue-processes", "2"])
    with httpx.Client(base_url=system.base, timeout=10) as public:
        assert public.get("/api/v1/departments").status_code == 200  # a queue process
        assert public.get("/api/v1/auth/me").status_code == 401  # forwarded to the core
        assert public.get("/metrics").status_code == 404
    with operators(port) as client:
        text = client.get("/metrics").text
    services = {line.split('service="', 1)[1].split('"', 1)[0]
                for line in text.splitlines()
                if line.startswith("bb_http_requests_total{") and 'service="' in line}
    assert {"queue", "rooms"} <= services, services
