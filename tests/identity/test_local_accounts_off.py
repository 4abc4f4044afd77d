"""BB_LOCAL_ACCOUNTS=false: only the provider signs staff in; without BB_STAFF_HOSTS every
host serves the staff routes (and the provider returns to the origin the request named)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.helpers import DEMO_PASSWORD
from tests.identity.conftest import GROUP_MAP, choose_user, onward
from tests.identity.provider import Provider


@pytest.fixture(scope="module")
def provider_only(provider: Provider, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[SystemProcess]:
    base = tmp_path_factory.mktemp("provider-only")
    nats = EmbeddedNats(base / "nats")
    nats.start()
    system = SystemProcess(base / "data", nats.url, env={
        "BB_OIDC_ISSUER": provider.issuer,
        "BB_OIDC_CLIENT_SECRET": "client-secret-of-the-test",
        "BB_OIDC_GROUP_MAP": json.dumps(GROUP_MAP),
        "BB_LOCAL_ACCOUNTS": "false",
    })
    system.start(timeout=120)
    yield system
    system.stop()
    nats.stop()


def test_only_the_provider_signs_staff_in(provider_only: SystemProcess,
                                          provider: Provider) -> None:
    client = httpx.Client(base_url=provider_only.base, timeout=10)
    assert client.get("/api/v1/auth/methods").json() == {
        "local_accounts": False, "provider": "Keycloak"}
    refused = client.post("/api/v1/auth/login",
                          json={"username": "anna", "password": DEMO_PASSWORD})
    assert refused.status_code == 404 and "bb_session" not in refused.cookies
    # With local accounts off, a provider's user may carry a local account's name.
    provider.set_user("anna-directory", preferred_username="anna", groups=["bb-kataster"])
    started = client.get("/api/v1/auth/oidc/login")
    callback = urlsplit(choose_user(started.headers["location"], "anna-directory"))
    assert f"{callback.scheme}://{callback.netloc}" == provider_only.base
    assert onward(client.get(f"{callback.path}?{callback.query}")) == "/staff"
    assert client.get("/api/v1/auth/me").json()["staff_id"] == "anna"
    assert client.get("/staff").status_code == 200
