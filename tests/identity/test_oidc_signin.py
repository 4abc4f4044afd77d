"""Staff sign-in through a real OpenID Connect provider on loopback (tests/identity/
provider.py), against `buergerbuero up` as a real process: the provider's groups decide
roles and departments, every forged or stale answer gets nothing, sign-out ends the session
here and sends the browser to the provider's end_session_endpoint."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import SystemProcess
from tests.identity.conftest import (
    choose_user,
    come_back,
    onward,
    sign_in,
    staff_client,
    start_at_provider,
)
from tests.identity.provider import Provider, TokenResponse, claims_of


def _user(provider: Provider, groups: list[str], name: str = "Kim Kataster") -> str:
    sub = f"u-{uuid.uuid4().hex[:10]}"
    provider.set_user(sub, preferred_username=sub, name=name, groups=groups)
    return sub


def _address() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


def _refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/staff/login?oidc_error={reason}"
    assert "bb_session" not in response.cookies


def _my_departments(client: httpx.Client) -> dict[str, str]:
    offices = client.get("/api/v1/offices")
    assert offices.status_code == 200, offices.text
    return {office["slug"]: office["my_role"] for office in offices.json()}


@pytest.fixture
def substitute(provider: Provider) -> Iterator[Callable[[Callable[[TokenResponse], TokenResponse]],
                                                        None]]:
    def use(change: Callable[[TokenResponse], TokenResponse]) -> None:
        provider.guard.substitute = change

    yield use
    provider.guard.substitute = None


def test_a_department_group_gets_exactly_that_department(
        oidc_system: SystemProcess, provider: Provider) -> None:
    sub = _user(provider, ["bb-kataster", "some-other-group"])
    client, landed = sign_in(oidc_system, sub, _address())
    assert onward(landed) == "/staff"
    me = client.get("/api/v1/auth/me").json()
    assert me["staff_id"] == sub and me["roles"] == ["staff"]
    assert me["display_name"] == "Kim Kataster"
    assert _my_departments(client) == {"kataster": "staff"}
    assert client.get("/api/v1/audit/records").status_code == 403

    # The provider moves them: at the next sign-in they serve exactly the new department.
    provider.set_user(sub, preferred_username=sub, name="Kim", groups=["bb-einbuergerung-admin"])
    again, _ = sign_in(oidc_system, sub, _address())
    assert _my_departments(again) == {"einbuergerung": "admin"}


def test_dpo_and_operator_groups_give_those_roles(
        oidc_system: SystemProcess, provider: Provider) -> None:
    sub = _user(provider, ["bb-datenschutz"], name="Dana DSB")
    client, landed = sign_in(oidc_system, sub, _address())
    assert onward(landed) == "/dpo"
    assert client.get("/api/v1/auth/me").json()["roles"] == ["dpo"]
    assert client.get("/api/v1/audit/records").status_code == 200
    assert _my_departments(client) == {}
    operator = _user(provider, ["bb-betrieb"])
    client, _ = sign_in(oidc_system, operator, _address())
    assert client.get("/api/v1/auth/me").json()["roles"] == ["operator"]


def test_a_user_without_a_mapped_group_gets_nothing(
        oidc_system: SystemProcess, provider: Provider) -> None:
    client, landed = sign_in(oidc_system, _user(provider, ["bb-unknown", "staff"]), _address())
    _refused(landed, "no_access")
    assert client.get("/api/v1/auth/me").status_code == 401
    # A local account's name from the provider would share its rosters: refused too.
    provider.set_user("anna-sso", preferred_username="anna", groups=["bb-kataster"])
    _, landed = sign_in(oidc_system, "anna-sso", _address())
    _refused(landed, "no_access")


def _resigned(provider: Provider, **changes: Any) -> Callable[[TokenResponse], TokenResponse]:
    def change(tokens: TokenResponse) -> TokenResponse:
        claims = {**claims_of(tokens["id_token"]), **changes}
        return {**tokens, "id_token": provider.sign(claims)}

    return change


@pytest.mark.parametrize("changes", [
    {"iss": "http://localhost:1"},  # another issuer (signed with this provider's key)
    {"exp": int(time.time()) - 600, "iat": int(time.time()) - 900},  # expired
    {"aud": "another-client"},  # for another client
    {"aud": ["buergerbuero", "another-client"], "azp": "another-client"},
    {"nonce": "a-nonce-of-another-sign-in"},
], ids=["issuer", "expired", "audience", "authorized-party", "nonce"])
def test_a_token_that_does_not_prove_this_sign_in_gets_nothing(
        oidc_system: SystemProcess, provider: Provider, substitute: Any,
        changes: dict[str, Any]) -> None:
    sub = _user(provider, ["bb-kataster"])
    substitute(_resigned(provider, **changes))
    client, landed = sign_in(oidc_system, sub, _address())
    _refused(landed, "refused")
    assert client.get("/api/v1/auth/me").status_code == 401


def test_a_token_of_another_provider_or_unsigned_gets_nothing(
        oidc_system: SystemProcess, provider: Provider, substitute: Any) -> None:
    from joserfc import jwt
    from joserfc.jwk import OctKey, RSAKey

    sub = _user(provider, ["bb-kataster"])
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"})
    for sign in (lambda c: jwt.encode({"alg": "RS256", "kid": "stranger"}, c, stranger),
                 lambda c: jwt.encode({"alg": "HS256"}, c, OctKey.import_key("buergerbuero"
                                                                             * 3))):
        substitute(lambda tokens, sign=sign: {**tokens, "id_token": sign(claims_of(
            tokens["id_token"]))})
        _, landed = sign_in(oidc_system, sub, _address())
        _refused(landed, "refused")


def test_a_replayed_id_token_gets_nothing(
        oidc_system: SystemProcess, provider: Provider, substitute: Any) -> None:
    """A genuine ID token of an earlier sign-in, handed back again: its nonce is not this
    sign-in's; and the earlier sign-in's callback itself (code, state, flow cookie)
    cannot be used twice."""
    sub = _user(provider, ["bb-kataster"])
    client = staff_client(oidc_system, _address())
    callback = choose_user(start_at_provider(client), sub)
    flow_cookie = client.cookies.get("bb_oidc_flow") or ""
    first = come_back(client, callback)
    assert "bb_oidc_flow" not in client.cookies  # used up
    assert onward(first) == "/staff"
    earlier = provider.guard.id_tokens[-1]
    substitute(lambda tokens: {**tokens, "id_token": earlier})
    _, landed = sign_in(oidc_system, sub, _address())
    _refused(landed, "refused")
    # The same callback (code, state and flow cookie) again, from a copied request.
    replay = staff_client(oidc_system, _address())
    replay.cookies.set("bb_oidc_flow", flow_cookie)
    _refused(come_back(replay, callback), "refused")  # its nonce is used up


def test_the_provider_rotating_its_keys_is_followed(
        oidc_system: SystemProcess, provider: Provider, substitute: Any) -> None:
    sub = _user(provider, ["bb-kataster"])
    _, landed = sign_in(oidc_system, sub, _address())
    assert onward(landed) == "/staff"
    # The provider's tokens name no key (no kid): a signature the cached keys do not
    # verify makes the system fetch the JWKS again.
    new_kid = provider.rotate_key()
    assert new_kid in httpx.get(f"{provider.issuer}/jwks").text
    client, landed = sign_in(oidc_system, sub, _address())
    assert onward(landed) == "/staff", landed.text
    assert client.get("/api/v1/auth/me").status_code == 200
    # Tokens that name their key: an unknown kid makes it fetch the JWKS again.
    provider.rotate_key()
    substitute(_resigned(provider))
    _, landed = sign_in(oidc_system, sub, _address())
    assert onward(landed) == "/staff", landed.text


def test_the_session_ends_no_later_than_the_providers(
        oidc_system: SystemProcess, provider: Provider, substitute: Any) -> None:
    sub = _user(provider, ["bb-kataster"])
    # Keycloak tells the SSO session's remaining life in refresh_expires_in.
    substitute(lambda tokens: {**tokens, "refresh_expires_in": 120})
    before = time.time()
    client, _ = sign_in(oidc_system, sub, _address())
    assert client.get("/api/v1/auth/me").json()["expires_at"] <= before + 120 + 2
    cookie = next(c for c in client.cookies.jar if c.name == "bb_session")
    assert cookie.expires is not None and cookie.expires <= before + 120 + 2
    # Without it, the ID token's own expiry bounds the session.
    substitute(_resigned(provider, exp=int(time.time()) + 90))
    client, _ = sign_in(oidc_system, sub, _address())
    assert client.get("/api/v1/auth/me").json()["expires_at"] <= time.time() + 90


def test_sign_out_ends_the_session_here_and_at_the_provider(
        oidc_system: SystemProcess, provider: Provider) -> None:
    sub = _user(provider, ["bb-kataster"])
    client, _ = sign_in(oidc_system, sub, _address())
    id_token = provider.guard.id_tokens[-1]
    me = client.get("/api/v1/auth/me").json()
    old_cookie = client.cookies.get("bb_session")
    out = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]})
    assert out.status_code == 200, out.text
    logout_url = out.json()["logout_url"]
    parts = urlsplit(logout_url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{provider.issuer}/oauth2/end_session"
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"][0].endswith("/staff/login?signed_out=1")
    # Ended here, in every process (the bb_sessions bucket), even with the old cookie.
    stale = staff_client(oidc_system, _address())
    stale.cookies.set("bb_session", old_cookie or "")
    assert stale.get("/api/v1/auth/me").status_code == 401
    # At the provider: its end_session page, then back to the sign-in page.
    page = httpx.get(logout_url, timeout=10)
    assert page.status_code == 200 and provider.guard.end_session_hints[-1] == id_token
    back = httpx.post(f"{provider.issuer}/oauth2/end_session/confirm",
                      data={"redirect_uri": query["post_logout_redirect_uri"][0]}, timeout=10)
    assert back.status_code == 302
    assert back.headers["location"] == query["post_logout_redirect_uri"][0]
