"""A `web_system` for the consultation tests that waits longer for the system to be ready.

On the shared two-core machine with other suites running, `buergerbuero up` with two queue
processes took more than the 30 s the package's fixture waits (load 20+): the modules that
import this fixture give it two minutes, and stop it also when it never became ready (the
package's fixture left such a system running).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess

READY_WITHIN_SECONDS = 120.0


@pytest.fixture(scope="module", name="web_system")
def patient_web_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    base = tmp_path_factory.mktemp("consultation")
    nats = EmbeddedNats(base / "nats")
    nats.start()
    processes = os.environ.get("BB_TEST_QUEUE_PROCESSES", "2")
    system = SystemProcess(base / "data", nats.url, args=["up", "--queue-processes", processes])
    try:
        system.start(timeout=READY_WITHIN_SECONDS)
        yield system
    finally:
        system.stop()
        nats.stop()
