"""An aiortc that does not fit the forwarding hooks takes down video, not the office:
``up`` still serves the start page, knocks and admits, and says video is unavailable."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.media.system_support import bearer, open_consultation

FAKES = Path(__file__).parent / "fake_aiortc"
ROOT = Path(__file__).resolve().parents[2]


def with_fake(name: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(FAKES / name), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path}


def test_an_aiortc_release_without_the_hooks_fails_to_import_but_is_fenced() -> None:
    probe = (
        "import json;"
        "import services.media.api;"
        "from services.media.availability import load_forwarding;"
        "a = load_forwarding(True);"
        "print(json.dumps([a.available, a.reason, a.detail]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, **with_fake("old_release")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    available, reason, detail = json.loads(done.stdout.strip().splitlines()[-1])
    assert (available, reason) == (False, "aiortc-internals")
    assert "RTCIceTransportPolicy" in detail
    assert "media_forwarding_disabled" in done.stdout + done.stderr


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    server = EmbeddedNats(tmp_path_factory.mktemp("fence-nats"))
    server.start()
    system = SystemProcess(
        Path(tmp_path_factory.mktemp("fence-data")), server.url, env=with_fake("moved_internal")
    )
    try:
        system.start()
        yield system
    finally:
        system.stop()
        server.stop()


async def test_up_with_a_moved_aiortc_internal_serves_the_office_without_video(
    system: SystemProcess,
) -> None:
    start_page = httpx.get(system.base + "/", follow_redirects=True)
    assert start_page.status_code == 200
    assert "text/html" in start_page.headers["content-type"]

    consultation = await asyncio.to_thread(open_consultation, system.base, "anna", False)

    status = httpx.get(f"{system.base}/api/v1/media/status")
    assert status.json() == {"video_available": False, "reason": "aiortc-internals"}
    lookup = httpx.get(
        f"{system.base}/api/v1/media/consultations/{consultation.id}",
        headers=bearer(consultation.tokens["citizen"]),
    )
    assert lookup.status_code == 503
    assert lookup.json()["video_available"] is False
    url = system.base.replace("http", "ws") + (
        f"/api/v1/media/consultations/{consultation.id}/signal"
    )
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": consultation.tokens["citizen"]}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4503
    metrics = httpx.get(f"{system.base}/metrics").text
    assert "bb_media_forwarding_available 0.0" in metrics
    assert "media_forwarding_disabled" in system.log_path.read_text()
