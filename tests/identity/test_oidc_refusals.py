"""Refusals of the sign-in endpoints (``/api/v1/auth/oidc/login``, ``/callback``,
``/api/v1/auth/methods``, ``/logout``) and the staff's own entry (BB_STAFF_HOSTS)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import SystemProcess
from tests.helpers import DEMO_PASSWORD
from tests.identity.conftest import STAFF_HOST, staff_client, start_at_provider
from tests.identity.provider import Provider


def _address() -> str:
    return f"203.0.113.{uuid.uuid4().int % 250 + 1}"


def _refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/staff/login?oidc_error={reason}"
    assert "bb_session" not in response.cookies


def _started(system: SystemProcess) -> tuple[httpx.Client, str]:
    """A client whose sign-in has begun: the flow cookie set; and the flow's state."""
    client = staff_client(system, _address())
    url = start_at_provider(client)
    state = httpx.URL(url).params["state"]
    return client, state


def test_the_sign_in_page_learns_the_provider(oidc_system: SystemProcess) -> None:
    client = staff_client(oidc_system, _address())
    assert client.get("/api/v1/auth/methods").json() == {
        "local_accounts": True, "provider": "Kreis-SSO"}
    start = client.get("/api/v1/auth/oidc/login", params={"lang": "en"})
    assert start.status_code == 303
    sent = httpx.URL(start.headers["location"]).params
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["ui_locales"] == "en" and len(sent["nonce"]) >= 32 and len(sent["state"]) >= 32
    flow = next(c for c in client.cookies.jar if c.name == "bb_oidc_flow")
    assert flow.path == "/api/v1/auth/oidc" and flow.has_nonstandard_attr("HttpOnly")


def test_a_callback_that_is_not_this_browsers_sign_in_is_refused(
        oidc_system: SystemProcess) -> None:
    client, state = _started(oidc_system)
    _refused(client.get("/api/v1/auth/oidc/callback",
                        params={"code": "x", "state": "another-state"}), "state")
    client, state = _started(oidc_system)
    _refused(client.get("/api/v1/auth/oidc/callback", params={"code": "x"}), "state")
    stranger = staff_client(oidc_system, _address())  # no flow cookie: not its sign-in
    _refused(stranger.get("/api/v1/auth/oidc/callback",
                          params={"code": "x", "state": state}), "state")
    stranger.cookies.set("bb_oidc_flow", "not.a.sealed-flow", path="/api/v1/auth/oidc")
    _refused(stranger.get("/api/v1/auth/oidc/callback",
                          params={"code": "x", "state": state}), "state")


def test_a_callback_without_a_code_or_with_a_made_up_one_is_refused(
        oidc_system: SystemProcess) -> None:
    client, state = _started(oidc_system)
    _refused(client.get("/api/v1/auth/oidc/callback", params={"state": state}), "state")
    client, state = _started(oidc_system)
    _refused(client.get("/api/v1/auth/oidc/callback",
                        params={"state": state, "code": "made-up"}), "refused")
    client, state = _started(oidc_system)
    _refused(client.get("/api/v1/auth/oidc/callback",
                        params={"state": state, "error": "access_denied"}), "denied")


@pytest.mark.parametrize("params", [
    {"state": "s" * 257, "code": "x"},
    {"state": "s", "code": "c" * 2049},
    {"state": "s", "error": "e" * 257},
], ids=["state", "code", "error"])
def test_oversized_callbacks_are_refused(oidc_system: SystemProcess,
                                         params: dict[str, str]) -> None:
    client, _ = _started(oidc_system)
    answer = client.get("/api/v1/auth/oidc/callback", params=params)
    assert answer.status_code == 422 and "bb_session" not in answer.cookies


def test_malformed_requests_are_refused(oidc_system: SystemProcess) -> None:
    client = staff_client(oidc_system, _address())
    assert client.get("/api/v1/auth/oidc/login", params={"lang": "xx"}).status_code == 422
    assert client.post("/api/v1/auth/oidc/login").status_code == 405
    client, _ = _started(oidc_system)
    client.cookies.set("bb_oidc_flow", "x" * 5000, path="/api/v1/auth/oidc")
    _refused(client.get("/api/v1/auth/oidc/callback", params={"code": "x", "state": "s"}),
             "state")


def test_a_flood_of_forged_callbacks_is_throttled(oidc_system: SystemProcess,
                                                  provider: Provider) -> None:
    address = _address()
    client = staff_client(oidc_system, address)
    for _ in range(20):  # BB_SIGNIN_ADDRESS_FAILURES
        _refused(client.get("/api/v1/auth/oidc/callback",
                            params={"code": "x", "state": "forged"}), "state")
    _refused(client.get("/api/v1/auth/oidc/login"), "throttled")
    _refused(client.get("/api/v1/auth/oidc/callback", params={"code": "x", "state": "s"}),
             "throttled")
    # The same address's password sign-in is paused too; another address is not.
    answer = client.post("/api/v1/auth/login", json={"username": "anna",
                                                     "password": DEMO_PASSWORD})
    assert answer.status_code == 429
    assert staff_client(oidc_system, _address()).get(
        "/api/v1/auth/oidc/login").status_code == 303


def test_sign_out_needs_the_session_and_its_csrf_token(oidc_system: SystemProcess) -> None:
    client = staff_client(oidc_system, _address())
    assert client.post("/api/v1/auth/logout").status_code == 401
    signed_in = client.post("/api/v1/auth/login", json={"username": "anna",
                                                        "password": DEMO_PASSWORD})
    assert signed_in.status_code == 200
    assert client.post("/api/v1/auth/logout").status_code == 403
    # A local session signs out here only: no provider to go to.
    out = client.post("/api/v1/auth/logout",
                      headers={"X-CSRF-Token": signed_in.json()["csrf_token"]})
    assert out.status_code == 204


@pytest.mark.parametrize("path", [
    "/staff/login", "/staff", "/dpo", "/api/v1/auth/methods", "/api/v1/auth/oidc/login",
    "/api/v1/offices", "/api/v1/audit/records", "/api/v1/departments/queues/stream",
])
def test_staff_routes_are_not_found_on_the_citizens_host(oidc_system: SystemProcess,
                                                         path: str) -> None:
    public = httpx.get(f"{oidc_system.base}{path}", timeout=10)
    assert public.status_code == 404, public.text
    staff = staff_client(oidc_system, _address()).get(path)
    assert staff.status_code != 404, (path, staff.status_code)


def test_the_citizens_routes_are_served_on_both_hosts(oidc_system: SystemProcess) -> None:
    for path in ("/", "/api/v1/departments", "/static/js/staff-login.js"):
        assert httpx.get(f"{oidc_system.base}{path}", timeout=10).status_code == 200, path
        assert staff_client(oidc_system, _address()).get(path).status_code == 200, path
    login = httpx.post(f"{oidc_system.base}/api/v1/auth/login", timeout=10,
                       json={"username": "anna", "password": DEMO_PASSWORD})
    assert login.status_code == 404 and "bb_session" not in login.cookies
    assert STAFF_HOST not in httpx.get(f"{oidc_system.base}/", timeout=10).text
