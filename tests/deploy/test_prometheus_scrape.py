"""A real Prometheus (Debian's package) scrapes a running `buergerbuero up` on the operators'
metrics port with the operators' token, and finds every `bb_*` metric the Grafana dashboard
in deploy/k8s queries; every dashboard query runs on it without an error.

The system is driven first: citizens knock, staff admit, two participants exchange audio and
video, a live stream stays open, so the series of ordinary work exist. Counters of faults
(failed publishing, failed event handling, events the audit had to fill from an outbox,
dropped frames, lost packets) are exported at 0 from the start, so they have series too
(and rate() and the alerts see their first increment).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.common.natsserver import EmbeddedNats, free_port
from services.media.sfu import TrackSource, loopback_host_candidates
from tests.conftest import SystemProcess
from tests.deploy.conftest import K8S
from tests.deploy.metrics import metric_names, substitute
from tests.helpers import StaffClient, StreamReader, eventually
from tests.media.peers import BLUE, RED
from tests.media.socket_client import SocketClient
from tests.media.system_support import join_over_socket, open_consultation

pytestmark = pytest.mark.timeout(240)

DASHBOARD = K8S / "base" / "monitoring" / "dashboards" / "buergerbuero.json"
TOKEN = "operators-token-for-the-scrape-test"
JOB = "buergerbuero-up"

def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [substitute(t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


def dashboard_metrics() -> set[str]:
    return {n for e in dashboard_queries() for n in metric_names(e) if n.startswith("bb_")}


class Prometheus:
    """`prometheus` on a free loopback port with its own temporary storage."""

    def __init__(self, directory: Path, target_port: int) -> None:
        binary = shutil.which("prometheus")
        if not binary:
            pytest.fail("prometheus not found: ./scripts/install-test-packages.sh installs "
                        "Debian's prometheus package")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = directory / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "scrape_configs": [{
                "job_name": JOB,
                "authorization": {"type": "Bearer", "credentials": TOKEN},
                "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
            }],
        }))
        self.log_path = directory / "prometheus.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=log)
        eventually(self.ready, timeout=60)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.base}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.base}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SystemProcess, Prometheus]]:
    root = tmp_path_factory.mktemp("scrape")
    nats = EmbeddedNats(root / "nats")
    nats.start()
    metrics_port = free_port()
    system = SystemProcess(root / "data", nats.url, env={
        "BB_METRICS_PORT": str(metrics_port), "BB_METRICS_TOKEN": TOKEN})
    prometheus = None
    try:
        system.start(timeout=90)  # the whole suite may load the machine
        prometheus = Prometheus(root, metrics_port)
        yield system, prometheus
    finally:
        if prometheus:
            prometheus.stop()
        system.stop()
        nats.stop()


async def in_a_consultation(base: str, until: Callable[[], bool]) -> None:
    """Citizen and staff publish camera and microphone and receive each other's, until
    ``until()`` holds (the media service samples its peers' statistics every 5 s)."""
    consultation = await asyncio.to_thread(open_consultation, base, "anna", False)
    clients: list[SocketClient] = []
    try:
        for role, colour, tone in (("citizen", RED, 440.0), ("staff", BLUE, 660.0)):
            clients.append(await join_over_socket(
                base, consultation.id, consultation.tokens[role], colour, tone))
        citizen, staff = clients

        def receiving(client: SocketClient, other: SocketClient) -> bool:
            return all(
                (t := client.live_track(other.participant_id, s)) is not None and t.frames > 10
                for s in (TrackSource.CAMERA, TrackSource.AUDIO))

        await asyncio.to_thread(
            eventually, lambda: receiving(citizen, staff) and receiving(staff, citizen), 60)
        await asyncio.to_thread(eventually, until, 90, 0.5)
    finally:
        for client in clients:
            await client.close()


def test_prometheus_finds_every_series_the_dashboard_uses(
    scraped: tuple[SystemProcess, Prometheus],
) -> None:
    system, prometheus = scraped
    wanted = dashboard_metrics()
    assert {"bb_queue_waiting", "bb_media_round_trip_seconds_bucket"} <= wanted
    expected = wanted

    def names_with_series() -> set[str]:
        found = prometheus.query('count by (__name__) ({__name__=~"bb_.+"})')
        return {r["metric"]["__name__"] for r in found}

    staff = StaffClient(f"{system.base}/api/v1", "dora")
    staff_stream = StreamReader(f"{system.base}/api/v1/departments/queues/stream",
                                cookies=staff.http.cookies)
    try:
        with loopback_host_candidates():
            asyncio.run(in_a_consultation(system.base, lambda: expected <= names_with_series()))
    except AssertionError:
        missing = expected - names_with_series()
        raise AssertionError(
            f"the dashboard queries series Prometheus never saw: {sorted(missing)}") from None
    finally:
        staff_stream.close()

    (target,) = prometheus.api("targets")["activeTargets"]
    assert target["health"] == "up", target
    assert prometheus.query(f'up{{job="{JOB}"}}')[0]["value"][1] == "1"

    for expr in dashboard_queries():
        prometheus.query(expr)  # every panel's query evaluates without an error
