"""``buergerbuero up`` as a process tree, the way Kubernetes runs the services.

One Python process runs on one core at a time (the GIL), so on a machine with
several cores the citizens' busiest routes get processes of their own:

* the *core* process runs rooms, audit and media (and the pages) on a private
  loopback port;
* N *queue* processes share the public port (``SO_REUSEPORT``: the kernel spreads
  the connections), serve the queue and the pages themselves and pass every other
  route on to the core process, as the Ingress does in Kubernetes.

All of them use the same embedded NATS server and the same SQLite files; the queue
processes are replicas of one queue (one relay leader, shared presence, ticket
numbers one after another, each kept by one replica only). Metrics of all processes
add up in one ``/metrics`` (prometheus_client's multiprocess mode). If any process
dies, the others are stopped and ``up`` exits; killed itself, it takes its children
with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from services.common.logging import get_logger
from services.common.natsserver import free_port
from services.common.settings import Settings

log = get_logger(__name__)

CORE_SERVICES = ["rooms", "audit", "media", "booking", "web"]
QUEUE_SERVICES = ["queue", "web"]


def default_queue_processes() -> int:
    """One queue process per core (at most four) on a Linux machine with more than one;
    none on one core, or where the kernel does not spread ``SO_REUSEPORT`` connections."""
    if not sys.platform.startswith("linux"):
        return 0
    cores = len(os.sched_getaffinity(0))
    return min(cores, 4) if cores > 1 else 0


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    health_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "services.cli", *self.args],
            env=self.env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health_port}/readyz"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


class ProcessTree:
    def __init__(self, settings: Settings, nats_url: str, queue_processes: int) -> None:
        self.settings = settings
        self.public = settings.public_url or f"http://{settings.host}:{settings.port}"
        self.core_port = free_port()
        self.metrics_dir = settings.data_dir / "run" / "metrics"
        env = {
            **os.environ,
            "BB_NATS_URL": nats_url,
            "BB_DATA_DIR": str(settings.data_dir.resolve()),
            "BB_PUBLIC_URL": self.public,
            "BB_QUEUE_REPLICA_COUNT": str(queue_processes),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir.resolve()),
        }
        if settings.nats_credentials_dir:  # each service connects as its own NATS user
            env["BB_NATS_CREDENTIALS_DIR"] = str(settings.nats_credentials_dir)
        # With BB_METRICS_PORT every process listens on it too (SO_REUSEPORT; each answers
        # with the sum of all processes) and none serves /metrics on another port.
        self.core = Child(
            "core",
            ["serve", *CORE_SERVICES, "--host", "127.0.0.1", "--port", str(self.core_port),
             *(["--reuse-port"] if settings.metrics_port else [])],
            env,
            self.core_port,
        )
        self.queues = []
        for index in range(queue_processes):
            private = free_port()
            args = [
                "serve", *QUEUE_SERVICES,
                "--host", settings.host, "--port", str(settings.port), "--reuse-port",
                "--private-port", str(private),
                "--forward-to", f"http://127.0.0.1:{self.core_port}",
            ]
            queue_env = {**env, "BB_QUEUE_REPLICA_INDEX": str(index)}
            self.queues.append(Child(f"queue-{index + 1}", args, queue_env, private))
        self._stopping = False

    @property
    def children(self) -> list[Child]:
        return [self.core, *self.queues]

    def run(self, banner: Callable[[], None]) -> int:
        # Metrics files of an earlier run would be added to this run's figures.
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(parents=True)
        signal.signal(signal.SIGTERM, self._stop_signal)
        signal.signal(signal.SIGINT, self._stop_signal)
        try:
            self.core.start()  # first: it creates the streams, the keys and the demo district
            self._wait_ready([self.core])
            for child in self.queues:
                child.start()
            self._wait_ready(self.queues)
            banner()
            log.info("process_tree_started", url=self.public,
                     processes={c.name: c.process.pid for c in self.children if c.process})
            while not self._stopping:
                dead = [c for c in self.children if not c.alive()]
                if dead:
                    log.error("process_exited", process=dead[0].name,
                              code=dead[0].process.returncode if dead[0].process else None)
                    return 1
                time.sleep(0.5)
            return 0
        finally:
            self._stop_all()

    def _wait_ready(self, children: list[Child], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(children)
        while waiting:
            if self._stopping:
                raise SystemExit(0)
            for child in waiting:
                if not child.alive():
                    raise RuntimeError(f"the {child.name} process exited while starting")
            waiting = [c for c in waiting if not c.ready()]
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready in {timeout:.0f} s: {[c.name for c in waiting]}")
            time.sleep(0.1)

    def _stop_signal(self, signum: int, _frame: object) -> None:
        self._stopping = True

    def _stop_all(self) -> None:
        # The queue processes first: they pass requests on to the core process.
        for group in (self.queues, [self.core]):
            for child in group:
                if child.alive():
                    assert child.process is not None
                    child.process.terminate()
            for child in group:
                if child.process is None:
                    continue
                try:
                    child.process.wait(10)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()


def _die_with_parent() -> None:
    """SIGKILL when ``up`` dies, however it dies: a crash of the tree is a crash of all."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)

