"""Capability tokens: signed, scoped, expiring, verifiable by any service without a call.

HS256 with a key of at least 256 bits and the algorithm list pinned, so
``alg: none`` and algorithm swaps are refused. Every token names its scope
(``ticket``, ``participant``, ``invitation``, ``session``) and its subject;
a token of one scope is useless for another. Tokens are never logged.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import jwt

ALGORITHMS = ["HS256"]
ISSUER = "buergerbuero"

Scope = Literal[
    "ticket", "participant", "invitation", "session",
    # booking: the appointment's own link, and the short-lived right to knock with priority
    "appointment", "appointment_knock",
]


class TokenError(Exception):
    """The token is missing, malformed, forged, of another scope or subject."""


class TokenExpired(TokenError):
    """The token was genuine but is past its expiry (HTTP 410 for links)."""


class TokenRevoked(TokenError):
    """The token was genuine but has been revoked (HTTP 410 for links)."""


@dataclass(frozen=True)
class Claims:
    scope: Scope
    subject: str
    token_id: str
    expires_at: int
    extra: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.extra[key]


class TokenSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("token key must be at least 256 bits")
        self._key = key

    def issue(self, scope: Scope, subject: str, ttl_seconds: float, **extra: Any) -> str:
        now = int(time.time())
        claims = {
            **extra,
            "iss": ISSUER,
            "scope": scope,
            "sub": subject,
            "iat": now,
            "exp": now + int(ttl_seconds),
            "jti": secrets.token_urlsafe(16),  # 128 bits
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str | None, scope: Scope, subject: str | None = None) -> Claims:
        if not token:
            raise TokenError("no token")
        try:
            data = jwt.decode(
                token,
                self._key,
                algorithms=ALGORITHMS,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti", "iss"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenExpired("token expired") from error
        except jwt.PyJWTError as error:
            raise TokenError("invalid token") from error
        if data.get("scope") != scope:
            raise TokenError(f"not a {scope} token")
        if subject is not None and data["sub"] != subject:
            raise TokenError("token is for something else")
        extra = {
            k: v for k, v in data.items() if k not in {"iss", "scope", "sub", "iat", "exp", "jti"}
        }
        return Claims(scope, data["sub"], data["jti"], int(data["exp"]), extra)


RevocationCheck = Callable[[str], Awaitable[bool]]

# A token issued on the strength of a revocable one (a participant token, for joining by
# an invitation) names it in this claim: revoking that revokes this one as well.
DERIVED_FROM = "inv"


def derived_from(claims: Claims) -> str | None:
    value = claims.extra.get(DERIVED_FROM)
    return str(value) if value else None


async def verify_revocable(
    signer: TokenSigner,
    token: str | None,
    scope: Scope,
    is_revoked: RevocationCheck,
    subject: str | None = None,
) -> Claims:
    """Verify, then ask the shared denylist (e.g. a NATS KV bucket) whether what the token
    is for (its subject, e.g. an invitation) or what it derives from was revoked: every
    token issued for it is."""
    claims = signer.verify(token, scope, subject)
    await refuse_revoked(claims, is_revoked, subject_too=True)
    return claims


async def refuse_revoked(
    claims: Claims, is_revoked: RevocationCheck, *, subject_too: bool = False
) -> None:
    """TokenRevoked when what the token derives from (and with ``subject_too``, what it is
    for) is on the denylist. Without either, nothing is asked."""
    keys = [claims.subject] if subject_too else []
    if origin := derived_from(claims):
        keys.append(origin)
    for key in keys:
        if await is_revoked(key):
            raise TokenRevoked("token revoked")
