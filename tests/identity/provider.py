"""A real OpenID Connect provider on loopback: oidc-provider-mock (Authlib's server), with
what it lacks added in front of it as WSGI, and hooks for the refusal tests.

oidc-provider-mock signs ID tokens (RS256, ``kid``), publishes discovery and JWKS, keeps
the nonce, passes any custom claim (``groups``) through and has an end_session endpoint.
It does not check PKCE and has no login session of its own. ``PkceGuard`` makes it
check PKCE (S256, as RFC 7636 4.6 says: no challenge, no code; a wrong verifier, no
token); it also records what the provider was asked (the nonces of authorize requests,
end_session calls, JWKS fetches) and can change the token response on its way back
(``substitute``), which is how the tests hand the relying party another issuer's, an expired, a
wrong-audience or a replayed ID token.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import flask
import oidc_provider_mock
import werkzeug.serving
from joserfc import jwt
from joserfc.jwk import RSAKey

TokenResponse = dict[str, Any]


class PkceGuard:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.challenges: dict[str, str] = {}  # code -> S256 challenge
        self.nonces: list[str] = []
        self.end_session_hints: list[str] = []
        self.id_tokens: list[str] = []
        self.jwks_fetches = 0
        self.substitute: Callable[[TokenResponse], TokenResponse] | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/oauth2/authorize":
            return self._authorize(environ, start_response, query)
        if path == "/oauth2/token":
            return self._token(environ, start_response)
        if path == "/jwks":
            with self._lock:
                self.jwks_fetches += 1
        if path == "/oauth2/end_session":
            with self._lock:
                self.end_session_hints.extend(query.get("id_token_hint", []))
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def _authorize(self, environ: dict[str, Any], start_response: Callable[..., Any],
                   query: dict[str, list[str]]) -> Iterable[bytes]:
        if query.get("code_challenge_method") != ["S256"] or not query.get("code_challenge"):
            return _error(start_response, 400, "invalid_request", "PKCE (S256) is required")
        captured: dict[str, str] = {}

        def capture(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            for name, value in headers:
                if name.lower() == "location":
                    captured.update({k: v[0] for k, v in parse_qs(urlsplit(value).query).items()})
            return start_response(status, headers, *rest)

        body = list(self.app(environ, capture))
        with self._lock:
            if "code" in captured:
                self.challenges[captured["code"]] = query["code_challenge"][0]
                self.nonces.extend(query.get("nonce", []))
        return body

    def _token(self, environ: dict[str, Any], start_response: Callable[..., Any]
               ) -> Iterable[bytes]:
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") == "authorization_code":
            with self._lock:
                challenge = self.challenges.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if challenge is None or expected.decode().rstrip("=") != challenge:
                return _error(start_response, 400, "invalid_grant", "PKCE verification failed")
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        answer: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            answer["status"], answer["headers"] = status, headers
            return lambda _: None

        body = b"".join(self.app(environ, keep))
        if answer["status"].startswith("200"):
            tokens = json.loads(body)
            with self._lock:
                self.id_tokens.append(tokens.get("id_token", ""))
            if self.substitute is not None:
                tokens = self.substitute(tokens)
            body = json.dumps(tokens).encode()
        headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
        start_response(answer["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]


def _error(start_response: Callable[..., Any], code: int, error: str, description: str
           ) -> Iterable[bytes]:
    body = json.dumps({"error": error, "error_description": description}).encode()
    start_response(f"{code} Error", [("Content-Type", "application/json"),
                                     ("Content-Length", str(len(body)))])
    return [body]


class Provider:
    """A running provider: its issuer URL, its users, its signing key."""

    def __init__(self, guard: PkceGuard, server: werkzeug.serving.BaseWSGIServer,
                 storage: dict[str, Any]) -> None:
        self.guard = guard
        self.issuer = f"http://localhost:{server.server_port}"
        self._storage = storage

    @property
    def storage(self) -> Any:
        return self._storage["storage"]

    def set_user(self, sub: str, **claims: Any) -> None:
        import httpx

        httpx.put(f"{self.issuer}/users/{sub}", json=claims, timeout=5).raise_for_status()

    def rotate_key(self) -> str:
        """A new signing key (with a new ``kid``): the JWKS lists only the new one."""
        from authlib import jose

        self.storage.jwk = jose.RSAKey.generate_key(is_private=True)
        return str(self.storage.jwk.as_dict()["kid"])

    def sign(self, claims: dict[str, Any]) -> str:
        """An ID token signed with this provider's current key (what it would issue)."""
        key = RSAKey.import_key(self.storage.jwk.as_dict(is_private=True))
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def claims_of(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


@contextmanager
def running_provider() -> Iterator[Provider]:
    app = oidc_provider_mock.app(require_nonce=True)
    storage: dict[str, Any] = {}

    @app.before_request
    def keep_storage() -> None:  # the mock's storage lives on flask.g during requests
        storage["storage"] = flask.g.oidc_provider_mock_storage

    guard = PkceGuard(app.wsgi_app)
    app.wsgi_app = guard  # type: ignore[method-assign]
    server = werkzeug.serving.make_server("localhost", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    provider = Provider(guard, server, storage)
    try:
        import httpx

        deadline = time.monotonic() + 10
        while "storage" not in storage and time.monotonic() < deadline:
            httpx.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=5)
        yield provider
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
