"""Who is calling: staff sessions (cookie + CSRF header) and citizens' bearer tokens."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status

from services.common.identity import StaffIdentity
from services.common.tokens import (
    Claims,
    RevocationCheck,
    Scope,
    TokenError,
    TokenExpired,
    TokenRevoked,
    TokenSigner,
    verify_revocable,
)

SESSION_COOKIE = "bb_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def signer(request: Request) -> TokenSigner:
    return request.app.state.signer  # type: ignore[no-any-return]


def start_session(
    response: Response, signer: TokenSigner, identity: StaffIdentity, hours: int, secure: bool
) -> str:
    """Issue a fresh session (a new id on every sign-in) and return its CSRF token."""
    csrf = secrets.token_urlsafe(24)
    token = signer.issue(
        "session",
        identity.staff_id,
        hours * 3600,
        name=identity.display_name,
        roles=sorted(identity.roles),
        csrf=csrf,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=hours * 3600,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )
    return csrf


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _session_claims(request: Request) -> Claims:
    if SESSION_COOKIE not in request.cookies and bearer_token(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only the department's staff may do this.")
    try:
        return signer(request).verify(request.cookies.get(SESSION_COOKIE), "session")
    except TokenError as error:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Please sign in as a staff member."
        ) from error


async def current_staff(request: Request) -> StaffIdentity:
    """The signed-in staff member (a dependency: async, so no thread is needed for it)."""
    return staff_of(request)


def staff_of(request: Request) -> StaffIdentity:
    """The signed-in staff member; state-changing requests must also carry the CSRF token."""
    claims = _session_claims(request)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not secrets.compare_digest(sent, str(claims["csrf"])):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "The request lacks a valid CSRF token (header X-CSRF-Token). Reload the page.",
            )
    return StaffIdentity(claims.subject, str(claims["name"]), frozenset(claims["roles"]))


def csrf_token(request: Request) -> str:
    return str(_session_claims(request)["csrf"])


Staff = Annotated[StaffIdentity, Depends(current_staff)]


def bearer_token(request: Request) -> str | None:
    """A citizen's capability token: ``Authorization: Bearer``, or ``?token=`` for EventSource.

    Query strings are never logged by this application (see logging.py).
    """
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token")


def verify_capability(
    request: Request, scope: Scope, subject: str | None = None, *, link: bool = False
) -> Claims:
    """Verify a bearer token; 401 when missing or wrong, 410 when a link has expired."""
    with _refusals(link):
        return signer(request).verify(_required_token(request), scope, subject)


async def verify_revocable_capability(
    request: Request,
    scope: Scope,
    is_revoked: RevocationCheck,
    subject: str | None = None,
    *,
    link: bool = False,
) -> Claims:
    """``verify_capability``, then the shared denylist (e.g. invitations withdrawn by
    staff, in a NATS KV bucket): a withdrawn link is 410, like an expired one."""
    with _refusals(link):
        return await verify_revocable(
            signer(request), _required_token(request), scope, is_revoked, subject
        )


def _required_token(request: Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "This needs the token you were given.")
    return token


@contextmanager
def _refusals(link: bool) -> Iterator[None]:
    try:
        yield
    except (TokenExpired, TokenRevoked) as error:
        if link:
            raise HTTPException(status.HTTP_410_GONE, _gone_message(error)) from error
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, _gone_message(error)) from error
    except TokenError as error:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "The token is not valid for this request."
        ) from error


def _gone_message(error: Exception) -> str:
    if isinstance(error, TokenRevoked):
        return "This link has been withdrawn. Please ask the office for a new one."
    return "This token has expired. Please start again from the department's page."
