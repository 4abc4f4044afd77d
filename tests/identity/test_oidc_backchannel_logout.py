"""The provider signs a user out and the sessions here end (OpenID Connect Back-Channel
Logout 1.0): the logout token is posted by the provider's server to
``/api/v1/auth/oidc/backchannel-logout``; anyone else's post is refused and ends nothing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from tests.conftest import SystemProcess
from tests.identity.conftest import onward, sign_in, staff_client
from tests.identity.provider import Provider, TokenResponse, claims_of

LOGOUT = "/api/v1/auth/oidc/backchannel-logout"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
TRIES = 4  # fresh connections per check: `up` has several processes that serve staff


def _user(provider: Provider) -> str:
    sub = f"u-{uuid.uuid4().hex[:10]}"
    provider.set_user(sub, preferred_username=sub, name="Kim Kataster", groups=["bb-kataster"])
    return sub


def _address() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


def _signed_in(system: SystemProcess, sub: str) -> httpx.Client:
    client, landed = sign_in(system, sub, _address())
    assert onward(landed) == "/staff", landed.text
    return client


def _session_answers(system: SystemProcess, client: httpx.Client) -> set[int]:
    """What /auth/me answers this session over fresh connections."""
    cookie = client.cookies.get("bb_session") or ""
    found = set()
    for _ in range(TRIES):
        with staff_client(system, _address()) as fresh:
            fresh.cookies.set("bb_session", cookie)
            found.add(fresh.get("/api/v1/auth/me").status_code)
    return found


def _logout_token(provider: Provider, **claims: Any) -> str:
    """What the provider would post: its key, ``typ`` logout+jwt, the event."""
    now = int(time.time())
    body = {"iss": provider.issuer, "aud": "buergerbuero", "iat": now, "exp": now + 120,
            "jti": uuid.uuid4().hex, "events": {EVENT: {}}, **claims}
    body = {name: value for name, value in body.items() if value is not None}
    key = RSAKey.import_key(provider.storage.jwk.as_dict(is_private=True))
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "logout+jwt"}, body, key)


def _post(system: SystemProcess, logout_token: str, address: str | None = None
          ) -> httpx.Response:
    """The provider's server posting, as a form (Back-Channel Logout 2.5)."""
    with staff_client(system, address or _address()) as provider_server:
        return provider_server.post(LOGOUT, data={"logout_token": logout_token})


@pytest.fixture
def with_sid(provider: Provider) -> Iterator[Callable[[str], None]]:
    """The provider's next ID tokens carry this provider session id (``sid``)."""
    def use(sid: str) -> None:
        def resign(tokens: TokenResponse) -> TokenResponse:
            claims = {**claims_of(tokens["id_token"]), "sid": sid}
            return {**tokens, "id_token": provider.sign(claims)}

        provider.guard.substitute = resign

    yield use
    provider.guard.substitute = None


class Stream:
    """A staff live stream of this session, read until the server ends it."""

    def __init__(self, system: SystemProcess, client: httpx.Client) -> None:
        self.lines: list[str] = []
        self.ended = threading.Event()
        headers = {**client.headers, "Cookie": f"bb_session={client.cookies.get('bb_session')}"}
        url = f"{system.base}/api/v1/departments/queues/stream"
        threading.Thread(target=self._read, args=(url, headers), daemon=True).start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=None)) as reader, reader.stream(
                    "GET", url, headers=headers) as response:
                for line in response.iter_lines():
                    self.lines.append(line)
        except httpx.HTTPError:
            pass
        self.ended.set()


def _until(check: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_the_providers_logout_of_a_user_ends_every_session_of_theirs(
        oidc_system: SystemProcess, provider: Provider) -> None:
    sub, colleague = _user(provider), _user(provider)
    first, second = _signed_in(oidc_system, sub), _signed_in(oidc_system, sub)
    theirs = _signed_in(oidc_system, colleague)
    stream = Stream(oidc_system, first)
    assert _until(lambda: "event: snapshot" in stream.lines), stream.lines

    logout = _logout_token(provider, sub=sub)
    answer = _post(oidc_system, logout)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"

    assert _session_answers(oidc_system, first) == {401}
    assert _session_answers(oidc_system, second) == {401}
    assert stream.ended.wait(10), "the live stream of a session the provider ended goes on"
    assert _session_answers(oidc_system, theirs) == {200}
    # Signing in again afterwards is a new session, after the provider's logout; the
    # provider sending the same token again (it did not hear the answer) does not end it.
    again = _signed_in(oidc_system, sub)
    assert _post(oidc_system, logout).status_code == 200
    assert _session_answers(oidc_system, again) == {200}


def test_the_providers_logout_of_one_session_ends_only_that_one(
        oidc_system: SystemProcess, provider: Provider, with_sid: Callable[[str], None]
) -> None:
    sub = _user(provider)
    at_the_office, at_home = f"sid-{uuid.uuid4().hex}", f"sid-{uuid.uuid4().hex}"
    with_sid(at_the_office)
    office = _signed_in(oidc_system, sub)
    with_sid(at_home)
    home = _signed_in(oidc_system, sub)

    answer = _post(oidc_system, _logout_token(provider, sid=at_the_office))
    assert answer.status_code == 200, answer.text
    assert _session_answers(oidc_system, office) == {401}
    assert _session_answers(oidc_system, home) == {200}
    # A session the provider names by user and session: that session.
    answer = _post(oidc_system, _logout_token(provider, sub=sub, sid=at_home))
    assert answer.status_code == 200, answer.text
    assert _session_answers(oidc_system, home) == {401}


def _stranger_signed(claims: dict[str, Any]) -> str:
    stranger = RSAKey.generate_key(2048, parameters={"kid": f"stranger-{uuid.uuid4().hex}"})
    return jwt.encode({"alg": "RS256", "kid": stranger.kid}, claims, stranger)


def _hmac_signed(claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key("client-secret-of-the-test"
                                                                   * 2))


@pytest.mark.parametrize("forge", [
    lambda p, sub: _logout_token(p, sub=sub, iss="http://localhost:1"),
    lambda p, sub: _logout_token(p, sub=sub, aud="another-client"),
    lambda p, sub: _logout_token(p, sub=sub, events=None),
    lambda p, sub: _logout_token(p, sub=sub, events={"http://example.org/other": {}}),
    lambda p, sub: _logout_token(p, sub=sub, nonce="an-id-token-s-nonce"),
    lambda p, sub: _logout_token(p, iat=int(time.time()) - 1200, exp=None, sub=sub),
    lambda p, sub: _logout_token(p, iat=int(time.time()) + 600, sub=sub),
    lambda p, sub: _logout_token(p, iat=None, sub=sub),
    lambda p, sub: _logout_token(p, jti=None, sub=sub),
    lambda p, sub: _logout_token(p),  # neither sub nor sid
    lambda p, sub: _stranger_signed(claims_of(_logout_token(p, sub=sub))),
    lambda p, sub: _hmac_signed(claims_of(_logout_token(p, sub=sub))),
    lambda p, sub: "not.a.token",
], ids=["issuer", "audience", "no-event", "other-event", "nonce", "too-old", "future",
        "no-iat", "no-jti", "nobody", "foreign-key", "hmac", "malformed"])
def test_a_logout_token_that_is_not_the_providers_ends_nothing(
        oidc_system: SystemProcess, provider: Provider,
        forge: Callable[[Provider, str], str]) -> None:
    sub = _user(provider)
    client = _signed_in(oidc_system, sub)
    answer = _post(oidc_system, forge(provider, sub))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert answer.json()["error_description"]  # says what is wrong with it
    assert _session_answers(oidc_system, client) == {200}


def test_malformed_and_oversized_posts_are_refused(oidc_system: SystemProcess,
                                                   provider: Provider) -> None:
    token = _logout_token(provider, sub=_user(provider))
    with staff_client(oidc_system, _address()) as client:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for body in [b"", b"logout_token=", f"logout_token={token}&logout_token={token}",
                     b"logout_token=\xff\xfe", b"token=" + token.encode()]:
            answer = client.post(LOGOUT, content=body, headers=form)
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["error"] == "invalid_request"
        answer = client.post(LOGOUT, json={"logout_token": token})
        assert answer.status_code == 400
        answer = client.post(LOGOUT, data={"logout_token": "x" * 100_000})
        assert answer.status_code == 413
        assert client.get(LOGOUT).status_code == 405
    # Only on the staff host, like every sign-in route.
    assert httpx.post(f"{oidc_system.base}{LOGOUT}", data={"logout_token": token},
                      timeout=10).status_code == 404


def test_a_flood_of_forged_logout_tokens_is_throttled(oidc_system: SystemProcess,
                                                      provider: Provider) -> None:
    # Not from _address()'s range, which the sign-in tests share: the address this
    # throttles must never be one another test of the package signs in from.
    address = "192.0.2.20"
    sub = _user(provider)
    for _ in range(20):  # BB_SIGNIN_ADDRESS_FAILURES
        assert _post(oidc_system, _stranger_signed({"sub": sub}), address).status_code == 400
    throttled = _post(oidc_system, _logout_token(provider, sub=sub), address)
    assert throttled.status_code == 429
    assert throttled.json()["error_description"]
    # The provider's own address is another: its logout goes through.
    assert _post(oidc_system, _logout_token(provider, sub=sub)).status_code == 200


def test_unknown_keys_in_posted_tokens_do_not_make_it_ask_the_provider_again_and_again(
        oidc_system: SystemProcess, provider: Provider) -> None:
    """A logout token naming a key the JWKS lacks may be the provider's rotation, so the
    JWKS is fetched again, but at most once a minute: anyone can post tokens."""
    sub = _user(provider)
    before = provider.guard.jwks_fetches
    for _ in range(8):  # each from its own address: not throttled
        assert _post(oidc_system, _stranger_signed({"sub": sub})).status_code == 400
    assert provider.guard.jwks_fetches - before <= 1
