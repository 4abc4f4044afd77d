"""Capability tokens: signed, scoped, expiring; forgeries and algorithm swaps refused."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.tokens import (
    ALGORITHMS,
    ISSUER,
    TokenError,
    TokenExpired,
    TokenRevoked,
    TokenSigner,
    verify_revocable,
)

KEY = b"unit-test-key-with-at-least-32-bytes-of-entropy"
OTHER_KEY = b"another-key-with-at-least-32-bytes-of-entropy!!"


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(KEY)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "scope": "ticket", "sub": "t-1", "iat": now, "exp": now + 600,
            "jti": "x" * 22, **overrides}


def test_a_genuine_token_verifies(signer: TokenSigner) -> None:
    token = signer.issue("ticket", "t-1", 600, department="d-1")
    found = signer.verify(token, "ticket", "t-1")
    assert found.scope == "ticket" and found.subject == "t-1"
    assert found["department"] == "d-1"
    assert found.expires_at - time.time() == pytest.approx(600, abs=5)


def test_token_ids_carry_at_least_128_random_bits(signer: TokenSigner) -> None:
    ids = {signer.verify(signer.issue("ticket", "t-1", 60), "ticket").token_id
           for _ in range(50)}
    assert len(ids) == 50
    assert all(len(unb64(token_id)) >= 16 for token_id in ids)


def test_the_algorithm_is_pinned_to_hs256() -> None:
    assert ALGORITHMS == ["HS256"]


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="256 bits"):
        TokenSigner(b"too-short")


@pytest.mark.parametrize("token", [None, "", "not-a-token", "a.b.c"])
def test_missing_or_malformed(signer: TokenSigner, token: str | None) -> None:
    with pytest.raises(TokenError) as refused:
        signer.verify(token, "ticket")
    assert not isinstance(refused.value, TokenExpired)


def test_a_changed_signature_is_refused(signer: TokenSigner) -> None:
    header, payload, signature = signer.issue("ticket", "t-1", 600).split(".")
    raw = bytearray(unb64(signature))
    raw[0] ^= 0x01
    with pytest.raises(TokenError):
        signer.verify(f"{header}.{payload}.{b64(bytes(raw))}", "ticket")


def test_a_changed_payload_is_refused(signer: TokenSigner) -> None:
    header, payload, signature = signer.issue("ticket", "t-1", 600).split(".")
    data = json.loads(unb64(payload))
    data["sub"] = "t-2"
    forged = f"{header}.{b64(json.dumps(data).encode())}.{signature}"
    with pytest.raises(TokenError):
        signer.verify(forged, "ticket")


def test_an_expired_token_says_so(signer: TokenSigner) -> None:
    with pytest.raises(TokenExpired):
        signer.verify(signer.issue("ticket", "t-1", -1), "ticket")


def test_the_wrong_scope_is_refused(signer: TokenSigner) -> None:
    token = signer.issue("participant", "t-1", 600)
    for scope in ("ticket", "invitation", "session"):
        with pytest.raises(TokenError, match=f"not a {scope} token"):
            signer.verify(token, scope)  # type: ignore[arg-type]


def test_the_wrong_subject_is_refused(signer: TokenSigner) -> None:
    with pytest.raises(TokenError, match="something else"):
        signer.verify(signer.issue("ticket", "t-1", 600), "ticket", "t-2")


def test_alg_none_is_refused(signer: TokenSigner) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    for token in (f"{header}.{payload}.", jwt.encode(claims(), None, algorithm="none")):
        with pytest.raises(TokenError):
            signer.verify(token, "ticket")


def test_a_token_signed_with_another_key_is_refused(signer: TokenSigner) -> None:
    with pytest.raises(TokenError):
        signer.verify(TokenSigner(OTHER_KEY).issue("ticket", "t-1", 600), "ticket")


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithms_with_the_same_key_are_refused(signer: TokenSigner,
                                                             algorithm: str) -> None:
    with pytest.raises(TokenError):
        signer.verify(jwt.encode(claims(), KEY, algorithm=algorithm), "ticket")


def test_an_rs256_token_is_refused(signer: TokenSigner) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(TokenError):
        signer.verify(jwt.encode(claims(), private, algorithm="RS256"), "ticket")


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti", "iss"])
def test_a_token_without_a_required_claim_is_refused(signer: TokenSigner, missing: str) -> None:
    data = claims()
    del data[missing]
    with pytest.raises(TokenError):
        signer.verify(jwt.encode(data, KEY, algorithm="HS256"), "ticket")


def test_a_token_of_another_issuer_is_refused(signer: TokenSigner) -> None:
    with pytest.raises(TokenError):
        signer.verify(jwt.encode(claims(iss="someone-else"), KEY, algorithm="HS256"), "ticket")


def test_a_well_formed_hand_made_token_is_accepted(signer: TokenSigner) -> None:
    # The refusals above are refusals of what they change, not of hand-made tokens.
    assert signer.verify(jwt.encode(claims(), KEY, algorithm="HS256"), "ticket").subject == "t-1"


async def test_a_revoked_token_is_refused(signer: TokenSigner) -> None:
    token = signer.issue("invitation", "i-1", 600, consultation="c-1")
    revoked_ids = {"i-1"}  # the invitation: every token issued for it is refused

    async def is_revoked(subject: str) -> bool:
        return subject in revoked_ids

    async def never(_: str) -> bool:
        return False

    assert (await verify_revocable(signer, token, "invitation", never)).subject == "i-1"
    with pytest.raises(TokenRevoked):
        await verify_revocable(signer, token, "invitation", is_revoked)
