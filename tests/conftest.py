"""Shared fixtures: a real embedded NATS server and the real system in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.natsserver import EmbeddedNats, free_port

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("BB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


class SystemProcess:
    """``buergerbuero up`` (or ``serve``) as a child process, talking to a given NATS."""

    def __init__(
        self,
        data_dir: Path,
        nats_url: str,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "BB_NATS_URL": nats_url,
            "BB_DATA_DIR": str(data_dir),
            "BB_SECRET_KEY": "test-secret-key-with-at-least-32-bytes-of-entropy!",
            "BB_OFFICE_CLOCK_SECONDS": "0.5",
            "BB_LOG_LEVEL": "WARNING",
            # Every test's citizens knock from 127.0.0.1: the per-client limits would take
            # them for one client (tests/security/test_floods.py tests those limits).
            "BB_KNOCKS_PER_CLIENT_PER_MINUTE": "0",
            "BB_WAITING_TICKETS_PER_CLIENT": "0",
            "BB_BOOKINGS_PER_CLIENT_PER_HOUR": "0",
            **(env or {}),
        }
        # One process unless a test asks for the process tree (tests/integration/
        # test_process_tree.py does) or BB_TEST_QUEUE_PROCESSES says otherwise: a test
        # may read a view right after a write, which replicas see a moment later.
        processes = os.environ.get("BB_TEST_QUEUE_PROCESSES", "0")
        self.args = args or ["up", "--queue-processes", processes]
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"system-{self.port}.log"

    def start(self, timeout: float = 120.0) -> None:
        """Wait until /readyz answers 200 (the views have caught up: a loaded machine may
        take a minute), or stop the process and fail, leaving no orphan behind."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *self.args, "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"system exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"system not ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, whatever was in flight."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.base}/api/v1", timeout=10)


@pytest.fixture
def system_factory(tmp_path: Path, nats_server: EmbeddedNats) -> Iterator:  # type: ignore[type-arg]
    started: list[SystemProcess] = []

    def make(
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        data_dir: Path | None = None,
    ) -> SystemProcess:
        system = SystemProcess(data_dir or tmp_path / "data", nats_server.url, env, args)
        system.start()
        started.append(system)
        return system

    yield make
    for system in started:
        system.stop()


@pytest.fixture
def system(system_factory) -> SystemProcess:  # type: ignore[no-untyped-def]
    return system_factory()  # type: ignore[no-any-return]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped afterwards."""
    import psycopg

    name = f"bb_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        if os.environ.get("CI") or os.environ.get("BB_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
