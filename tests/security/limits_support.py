"""What the flood and body-limit tests share: the system in both of `up`'s modes, the
memory of its process tree, and raw HTTP for requests httpx would not send."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess

# up's default on a machine with two cores, and everything in one process.
MODES = ["2", "0"]


def start_system(
    tmp: Path, queue_processes: str, env: dict[str, str] | None = None
) -> Iterator[SystemProcess]:
    nats = EmbeddedNats(tmp / "nats")
    nats.start()
    system = SystemProcess(
        tmp / "data", nats.url, env=env, args=["up", "--queue-processes", queue_processes]
    )
    try:
        system.start(timeout=60)
        yield system
    finally:
        system.stop()
        nats.stop()


def mode_param(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def tree_pids(root: int) -> list[int]:
    """The process and all its descendants (nats-server is the test's, not the system's)."""
    found = [root]
    for pid in found:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def peak_memory_kib(root: int) -> int:
    """Sum of every process's peak resident memory (VmHWM): a body buffered whole and
    freed again shows in it, where VmRSS would already have dropped back."""
    total = 0
    for pid in tree_pids(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


def request_head(method: str, path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawExchange:
    """One request on a raw socket: the head now, the body (if any) from a thread, the
    answer read while the body is still being sent (a server that refuses early closes
    the connection; its answer must not be lost in the reset)."""

    def __init__(self, port: int, head: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(head)
        self.sent = 0
        self._sender: threading.Thread | None = None

    def send_chunked(self, total: int, chunk: int = 64 * 1024) -> None:
        def run() -> None:
            piece = b"%x\r\n" % chunk + b"x" * chunk + b"\r\n"
            try:
                while self.sent < total:
                    self.sock.sendall(piece)
                    self.sent += chunk
                self.sock.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # refused and closed by the server: what the test hopes for

        self._sender = threading.Thread(target=run, daemon=True)
        self._sender.start()

    def answer(self, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of the answer (read until the server closes or the
        announced length arrived)."""
        self.sock.settimeout(timeout)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                got = self.sock.recv(65536)
                if not got:
                    break
                data += got
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:])
            }
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                got = self.sock.recv(65536)
                if not got:
                    break
                body += got
        except ConnectionResetError:
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
        status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
        return status, headers, body

    def close(self) -> None:
        if self._sender is not None:
            self._sender.join(timeout=30)
        self.sock.close()
