"""A small asyncio HTTP/1.1 client for load generation: keep-alive connections and SSE.

Lighter than httpx: on a 2-core machine the load generator shares the CPU with the
server, and a light client leaves more of it to the system under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"


class HttpError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_chunk(reader: asyncio.StreamReader) -> bytes:
    """One chunk of a chunked body; b"" at its end."""
    size_line = await reader.readline()
    if not size_line:
        raise asyncio.IncompleteReadError(b"", None)
    size = int(size_line.split(b";")[0].strip(), 16)
    data = await reader.readexactly(size + 2)
    return data[:-2]


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while chunk := await _read_chunk(reader):
            parts.append(chunk)
        return b"".join(parts)
    return await reader.read()


def _request_bytes(
    method: str, path: str, port: int, headers: dict[str, str] | None, body: bytes | None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        data = _request_bytes(method, path, self.port, headers, body)
        for attempt in (1, 2):
            fresh = self.writer is None
            if fresh:
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            assert self.reader and self.writer
            try:
                self.writer.write(data)
                status, response_headers = await _read_head(self.reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                # The server closed an idle keep-alive connection before reading: resend once.
                self.close()
                if fresh or attempt == 2:
                    raise
                continue
            body_bytes = await _read_body(self.reader, response_headers)
            if response_headers.get("connection", "").lower() == "close":
                self.close()
            return Response(status, response_headers, body_bytes)
        raise HttpError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pool:
    """Keep-alive connections handed out one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[Connection] = []

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        conn = self.idle.pop() if self.idle else Connection(self.port)
        try:
            response = await conn.request(method, path, body, headers)
        except BaseException:
            conn.close()
            raise
        self.idle.append(conn)
        return response

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


OnEvent = Callable[[str, dict[str, Any], float], None]


class EventStream:
    """One SSE stream: ``open`` returns the status; ``run`` calls ``on_event`` per event."""

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.path = path
        self.headers = {"Accept": "text/event-stream", **(headers or {})}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None
        self.first = asyncio.Event()

    async def open(self, on_event: OnEvent) -> int:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        self.writer.write(_request_bytes("GET", self.path, self.port, self.headers, None))
        status, headers = await _read_head(self.reader)
        if status != 200:
            await _read_body(self.reader, headers)
            self.close()
            return status
        self.task = asyncio.create_task(self._run(on_event))
        return status

    async def _run(self, on_event: OnEvent) -> None:
        assert self.reader
        buffer = b""
        with contextlib.suppress(
            ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError
        ):
            while chunk := await _read_chunk(self.reader):
                arrived = time.perf_counter()
                buffer += chunk
                while b"\n\n" in buffer:
                    raw, buffer = buffer.split(b"\n\n", 1)
                    name, data = "message", []
                    for line in raw.decode().split("\n"):
                        if line.startswith("event:"):
                            name = line[6:].strip()
                        elif line.startswith("data:"):
                            data.append(line[5:].lstrip())
                    if data:
                        on_event(name, json.loads("\n".join(data)), arrived)
                        self.first.set()

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.close()
        self.writer = None
