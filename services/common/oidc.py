"""An OpenID Connect relying party for staff sign-in: authorization code flow with PKCE.

The provider (Keycloak in most administrations) is found by discovery from its issuer URL.
Its ID token is believed only after every check of OpenID Connect Core 3.1.3.7: signed
by a key of the provider's JWKS with an asymmetric algorithm it announces (never ``none``
or HMAC), issued by that issuer, for this client (``aud``, and ``azp`` when several
audiences), not expired, and carrying the nonce this flow sent. A token signed with a
key the cached JWKS does not know makes it fetch the JWKS again (the provider rotated its
keys), once for each key id it did not know.

A logout token (OpenID Connect Back-Channel Logout 1.0, 2.6) is believed after the same
signature checks and its own: issuer, audience, ``iat`` (not older than ten minutes),
``jti``, the back-channel logout event, ``sub`` or ``sid``, and no ``nonce``. Anyone may post
one, so an unknown key id in it makes the JWKS be fetched again at most once a minute.

Authlib makes the flow's secrets and the PKCE challenge; joserfc (Authlib's JOSE library)
checks the token. The browser-facing routes are in ``oidc_signin.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

from services.common.logging import get_logger

log = get_logger(__name__)

# Only signatures with the provider's public keys; HS* would make the client secret a key.
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
LEEWAY_SECONDS = 30  # clocks of provider and service may differ a little
BACKCHANNEL_LOGOUT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE = 600  # seconds: the provider sends it when the user signs out
UNTRUSTED_REFETCH_SECONDS = 60  # JWKS fetches a posted token can cause, at most one per
HTTP_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 256 * 1024


class ProviderError(Exception):
    """The provider could not be reached or answered nonsense."""


class TokenRefused(Exception):
    """The provider's answer does not prove who signed in (see the reason)."""


@dataclass(frozen=True)
class Flow:
    """What one sign-in keeps between sending the browser off and its return."""

    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class LogoutOrder:
    """A checked logout token: end the provider session ``sid`` or, without one, every
    session of the provider's user ``sub``; ``token_id`` is the token's ``jti``."""

    sub: str | None
    sid: str | None
    token_id: str


@dataclass(frozen=True)
class SignedIn:
    """The checked ID token's claims, the token itself (the hint for signing out), and
    until when the provider vouches for the sign-in (Unix seconds)."""

    claims: dict[str, Any]
    id_token: str
    provider_session_end: float


class OidcClient:
    def __init__(self, issuer: str, client_id: str, client_secret: str | None, scopes: str):
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._refetched_for: list[str] = []  # unknown key ids the JWKS was fetched again for
        self._fetched_at = 0.0  # time.monotonic() of the last JWKS fetch
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- discovery and keys -----------------------------------------------------------

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            found = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            if str(found.get("issuer", "")).rstrip("/") != self.issuer:
                raise ProviderError("the discovery document names another issuer")
            for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(needed), str):
                    raise ProviderError(f"the discovery document lacks {needed}")
            self._metadata = found
        return self._metadata

    async def _key_set(self, kid: str | None, again: bool = False, posted: bool = False
                       ) -> KeySet:
        """The provider's keys; fetched again when a token names a key not among them (the
        provider rotated its keys), once per such key; and when a token without ``kid``
        matches none (``again``). ID tokens come only from the provider's token endpoint,
        for a valid code; a ``posted`` token (a logout token: anyone can send one) makes it
        fetch again at most once in UNTRUSTED_REFETCH_SECONDS."""
        async with self._lock:
            unknown = kid is not None and (self._keys is None or not _has_kid(self._keys, kid))
            wanted = again or (unknown and kid not in self._refetched_for)
            if posted and time.monotonic() - self._fetched_at < UNTRUSTED_REFETCH_SECONDS:
                wanted = False
            if self._keys is None or wanted:
                if kid is not None and self._keys is not None:
                    self._refetched_for = [*self._refetched_for[-99:], kid]
                jwks = await self._get_json((await self.metadata())["jwks_uri"])
                try:
                    self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError, KeyError) as error:
                    raise ProviderError(f"the JWKS cannot be read: {error}") from error
                self._fetched_at = time.monotonic()
                log.info("oidc_jwks_fetched", keys=len(self._keys.keys))
            return self._keys

    def _algorithms(self, metadata: dict[str, Any]) -> list[str]:
        announced = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        return [alg for alg in ASYMMETRIC if alg in announced]

    # -- the flow ---------------------------------------------------------------------

    def new_flow(self) -> Flow:
        return Flow(state=generate_token(32), nonce=generate_token(32),
                    code_verifier=generate_token(64))

    async def authorization_url(self, flow: Flow, redirect_uri: str, locale: str) -> str:
        metadata = await self.metadata()
        params = [
            ("response_type", "code"),
            ("client_id", self.client_id),
            ("redirect_uri", redirect_uri),
            ("scope", self.scopes),
            ("state", flow.state),
            ("nonce", flow.nonce),
            ("code_challenge", create_s256_code_challenge(flow.code_verifier)),
            ("code_challenge_method", "S256"),
            ("ui_locales", locale),
        ]
        return str(add_params_to_uri(metadata["authorization_endpoint"], params))

    async def finish(self, flow: Flow, code: str, redirect_uri: str) -> SignedIn:
        """Swap the code for tokens (with the PKCE verifier) and check the ID token."""
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": flow.code_verifier,
            "client_id": self.client_id,
        }
        auth: httpx.Auth | httpx._client.UseClientDefault = httpx.USE_CLIENT_DEFAULT
        if self.client_secret:  # a confidential client (client_secret_basic)
            auth = httpx.BasicAuth(self.client_id, self.client_secret)
        try:
            response = await self._http.post(metadata["token_endpoint"], data=form, auth=auth)
        except httpx.HTTPError as error:
            raise ProviderError(f"token endpoint: {type(error).__name__}") from error
        if response.status_code != 200 or len(response.content) > MAX_RESPONSE_BYTES:
            raise TokenRefused(f"the provider refused the code ({response.status_code})")
        tokens = _json_object(response)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise TokenRefused("no ID token in the provider's answer")
        claims = await self.check_id_token(id_token, flow.nonce)
        return SignedIn(claims, id_token, _session_end(tokens, claims))

    async def check_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        claims = await self._signed_claims(id_token, "ID token")
        try:
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (JoseError, ValueError) as error:
            raise TokenRefused(f"the ID token is not valid: {error}") from error
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.client_id:
            raise TokenRefused("the ID token was issued to another client (azp)")
        return claims

    async def check_logout_token(self, logout_token: str) -> LogoutOrder:
        """Back-Channel Logout 1.0, 2.6: what the provider's logout token orders."""
        claims = await self._signed_claims(logout_token, "logout token", posted=True)
        try:
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                iat={"essential": True},
                jti={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError) as error:
            raise TokenRefused(f"the logout token is not valid: {error}") from error
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT), dict):
            raise TokenRefused("the token is not a back-channel logout token (events)")
        if "nonce" in claims:
            raise TokenRefused("a logout token must not carry a nonce")
        sub, sid = claims.get("sub"), claims.get("sid")
        if not (isinstance(sub, str) and sub) and not (isinstance(sid, str) and sid):
            raise TokenRefused("the logout token names neither a user (sub) nor a session (sid)")
        if float(claims["iat"]) < time.time() - LOGOUT_TOKEN_MAX_AGE:
            raise TokenRefused("the logout token is too old")
        return LogoutOrder(sub if isinstance(sub, str) and sub else None,
                           sid if isinstance(sid, str) and sid else None,
                           str(claims["jti"]))

    async def _signed_claims(self, token: str, what: str, posted: bool = False
                             ) -> dict[str, Any]:
        """The claims of ``token`` once its signature is the provider's (an asymmetric
        algorithm it announces, a key of its JWKS)."""
        metadata = await self.metadata()
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError) as error:
            raise TokenRefused(f"the {what} is malformed") from error
        algorithms = self._algorithms(metadata)
        if header.get("alg") not in algorithms:
            raise TokenRefused(f"the {what}'s algorithm {header.get('alg')!r} is not allowed")
        kid = header.get("kid")
        keys = await self._key_set(kid if isinstance(kid, str) else None, posted=posted)
        if isinstance(kid, str) and not _has_kid(keys, kid):
            raise TokenRefused(f"the {what} is signed with a key the provider does not list")
        try:
            try:
                decoded = jwt.decode(token, keys, algorithms=algorithms)
            except BadSignatureError:
                if isinstance(kid, str):
                    raise
                # No key id: the provider may have rotated; ask for its keys once more.
                keys = await self._key_set(None, again=True, posted=posted)
                decoded = jwt.decode(token, keys, algorithms=algorithms)
        except (JoseError, ValueError) as error:
            raise TokenRefused(f"the {what} is not valid: {error}") from error
        return dict(decoded.claims)

    async def logout_url(self, id_token: str, after: str) -> str | None:
        """RP-initiated logout at the provider, back to ``after``; None without one."""
        endpoint = (await self.metadata()).get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        params = [("id_token_hint", id_token), ("client_id", self.client_id),
                  ("post_logout_redirect_uri", after)]
        return str(add_params_to_uri(endpoint, params))

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as error:
            raise ProviderError(f"{url}: {type(error).__name__}") from error
        if response.status_code != 200 or len(response.content) > MAX_RESPONSE_BYTES:
            raise ProviderError(f"{url}: HTTP {response.status_code}")
        return _json_object(response)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        found = response.json()
    except ValueError as error:
        raise ProviderError("the provider answered something other than JSON") from error
    if not isinstance(found, dict):
        raise ProviderError("the provider answered something other than a JSON object")
    return found


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _session_end(tokens: dict[str, Any], claims: dict[str, Any]) -> float:
    """Until when the provider vouches for this sign-in: its SSO session (Keycloak says so
    in ``refresh_expires_in``), otherwise the ID token's own expiry."""
    now = time.time()
    refresh = tokens.get("refresh_expires_in")
    if isinstance(refresh, int | float) and refresh > 0:
        return now + float(refresh)
    return float(claims["exp"])
