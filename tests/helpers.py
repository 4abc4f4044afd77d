"""Small helpers for the integration tests: a citizen, a staff member, the stream."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

DEMO_PASSWORD = "buergerbuero"


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll until ``check`` returns something truthy (tests only; the pages use SSE)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (AssertionError, httpx.HTTPError, KeyError) as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")


def department_id(client: httpx.Client, slug: str) -> str:
    def find() -> str | None:
        for department in client.get("/departments").json():
            if department["slug"] == slug:
                return str(department["id"])
        return None

    return str(eventually(find))


def open_department(client: httpx.Client, slug: str) -> str:
    def find() -> str | None:
        for department in client.get("/departments").json():
            if department["slug"] == slug and department["open"]:
                return str(department["id"])
        return None

    return str(eventually(find))


def knock(client: httpx.Client, dept: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/departments/{dept}/knock", json={"language": "de", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


class StaffClient:
    def __init__(self, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        response = self.http.post("/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        self.csrf = response.json()["csrf_token"]

    def post(self, path: str, json_body: Any = None) -> httpx.Response:
        return self.http.post(path, json=json_body, headers={"X-CSRF-Token": self.csrf})

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)


class StreamReader:
    """Reads an SSE stream in a thread and keeps every event it saw."""

    def __init__(
        self, url: str, headers: dict[str, str] | None = None, cookies: httpx.Cookies | None = None
    ) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._read, args=(url, headers, cookies), daemon=True
        )
        self._thread.start()

    def _read(
        self, url: str, headers: dict[str, str] | None, cookies: httpx.Cookies | None
    ) -> None:
        # The server may go away: the test decides whether that matters.
        with contextlib.suppress(httpx.HTTPError):
            self._read_until_closed(url, headers, cookies)

    def _read_until_closed(
        self, url: str, headers: dict[str, str] | None, cookies: httpx.Cookies | None
    ) -> None:
        with (
            httpx.Client(timeout=None, cookies=cookies) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            name = "message"
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    self.events.append((name, json.loads(line[5:].strip())))
                    name = "message"

    def wait_for(
        self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for name, data in list(self.events):
                if predicate(name, data):
                    return data
            return None

        return dict(eventually(found, timeout))

    def close(self) -> None:
        self._stop.set()
