"""One provider and one system for the identity tests: the system signs staff in through
the provider and serves staff routes only on the staff host name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.identity.provider import Provider, running_provider

STAFF_HOST = "staff.localhost"
GROUP_MAP = {
    "bb-kataster": "staff:kataster",
    "bb-einbuergerung-admin": "admin:einbuergerung",
    "bb-datenschutz": "dpo",
    "bb-betrieb": "operator",
}


@pytest.fixture(scope="package")
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


@pytest.fixture(scope="package")
def oidc_system(provider: Provider, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[SystemProcess]:
    base: Path = tmp_path_factory.mktemp("identity")
    nats = EmbeddedNats(base / "nats")
    nats.start()
    system = SystemProcess(base / "data", nats.url, env={
        "BB_OIDC_ISSUER": provider.issuer,
        "BB_OIDC_PROVIDER_NAME": "Kreis-SSO",
        "BB_OIDC_CLIENT_SECRET": "client-secret-of-the-test",  # client_secret_basic
        "BB_OIDC_GROUP_MAP": json.dumps(GROUP_MAP),
        "BB_STAFF_HOSTS": STAFF_HOST,
    })
    system.start(timeout=120)  # the machine is shared: give a loaded one time
    yield system
    system.stop()
    nats.stop()


def staff_client(system: SystemProcess, address: str) -> httpx.Client:
    """A browser on the staff host, coming from ``address`` (the system trusts loopback's
    X-Forwarded-For, as it trusts its own forwarder: each test its own client address)."""
    return httpx.Client(base_url=system.base, timeout=10, headers={
        "Host": f"{STAFF_HOST}:{system.port}", "X-Forwarded-For": address})


def start_at_provider(client: httpx.Client) -> str:
    """Sign-in's first step: where the system sends the browser (the provider's page)."""
    started = client.get("/api/v1/auth/oidc/login")
    assert started.status_code == 303, started.text
    return started.headers["location"]


def choose_user(authorize_url: str, sub: str) -> str:
    """At the provider's page: sign in as ``sub``; the callback URL it redirects to."""
    answer = httpx.post(authorize_url, data={"sub": sub}, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def come_back(client: httpx.Client, callback_url: str) -> httpx.Response:
    parts = urlsplit(callback_url)
    assert parts.netloc == f"{STAFF_HOST}:{client.base_url.port}", callback_url
    return client.get(f"{parts.path}?{parts.query}")


def sign_in(system: SystemProcess, sub: str, address: str) -> tuple[httpx.Client, httpx.Response]:
    client = staff_client(system, address)
    return client, come_back(client, choose_user(start_at_provider(client), sub))


def onward(response: httpx.Response) -> str:
    """Where the callback sends the browser: signed in, a same-origin page that refreshes
    to the staff pages (a redirect would carry no SameSite=Strict cookie); refused, a 303."""
    if response.status_code == 303:
        return response.headers["location"]
    assert response.status_code == 200, response.text
    found = re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', response.text)
    assert found, response.text
    return found.group(1)
