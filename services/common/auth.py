"""Who is calling: staff sessions (cookie + CSRF header) and citizens' bearer tokens.

How a staff session lives and ends (idle expiry, renewal, sign-out, void after an
account change) is told in services/common/sessions.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response, status
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from services.common.identity import StaffIdentity
from services.common.sessions import SessionEnded, SessionRegistry, SessionsUnknown
from services.common.settings import Settings
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
# Keys in a request's ASGI scope: its checked session, and a renewed cookie to send back.
_CHECKED = "bb.session"
_RENEWED = "bb.session_cookie"


def signer(request: Request) -> TokenSigner:
    return request.app.state.signer  # type: ignore[no-any-return]


def sessions(request: Request) -> SessionRegistry | None:
    return getattr(request.app.state, "sessions", None)


def start_session(
    response: Response,
    signer: TokenSigner,
    identity: StaffIdentity,
    settings: Settings,
    *,
    ends: float | None = None,
    id_token: str | None = None,
    provider_user: str | None = None,
    provider_session: str | None = None,
) -> str:
    """Issue a fresh session (a new id on every sign-in) and return its CSRF token.

    Signed in at an identity provider: ``ends`` is when the provider's own session ends
    (the session here never outlives it), ``id_token`` the hint for signing out there,
    ``provider_user`` and ``provider_session`` what its back-channel logout names."""
    csrf = secrets.token_urlsafe(24)
    now = time.time()
    claims: dict[str, Any] = {
        "name": identity.display_name,
        "roles": sorted(identity.roles),
        "csrf": csrf,
        "sid": secrets.token_urlsafe(16),  # 128 bits
        "auth_time": round(now, 3),
    }
    if ends is not None:
        claims["ends"] = round(ends, 3)
    if id_token is not None:
        claims["idt"] = id_token
    if provider_user is not None:
        claims["psub"] = provider_user
    if provider_session is not None:
        claims["psid"] = provider_session
    token, cookie_seconds = _issue(signer, identity.staff_id, claims, settings, now)
    _set_cookie(response, token, cookie_seconds, settings.secure_cookies)
    return csrf


def absolute_end(claims: Mapping[str, Any], settings: Settings) -> float:
    """When a session ends however it is used: ``session_hours`` after signing in, or
    earlier when the identity provider's session ends earlier."""
    end = float(claims["auth_time"]) + settings.session_hours * 3600
    provider_end = claims.get("ends")
    return min(end, float(provider_end)) if isinstance(provider_end, int | float) else end


def _issue(
    signer: TokenSigner, subject: str, claims: dict[str, Any], settings: Settings, now: float
) -> tuple[str, float]:
    """A session token good for the idle time, never beyond the session's absolute end;
    and how long its cookie should be kept (to that end: an expired token then reads as
    'your session has expired' rather than as never signed in)."""
    end = absolute_end(claims, settings)
    idle_end = now + settings.session_idle_minutes * 60
    token = signer.issue("session", subject, round(min(idle_end, end) - now), **claims)
    return token, end - now


def _set_cookie(response: Response, token: str, seconds: float, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, int(seconds)),
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )


async def end_session(request: Request, response: Response) -> None:
    """Sign-out: the session is over in every process (not only this browser's cookie)."""
    claims = _session_claims(request)
    request.scope.pop(_RENEWED, None)
    registry = sessions(request)
    if registry is not None:
        await registry.end(claims)
    response.delete_cookie(SESSION_COOKIE, path="/")


def session_claims(request: Request) -> Claims:
    """The checked session of this request (401 without one)."""
    return _session_claims(request)


def _session_claims(request: Request) -> Claims:
    checked: Claims | None = request.scope.get(_CHECKED)
    if checked is not None:
        return checked
    if SESSION_COOKIE not in request.cookies and bearer_token(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only the department's staff may do this.")
    try:
        claims = signer(request).verify(request.cookies.get(SESSION_COOKIE), "session")
        if "sid" not in claims.extra or "auth_time" not in claims.extra:
            raise TokenError("a session token of an older kind")
        registry = sessions(request)
        if registry is not None:
            registry.check(claims)
    except TokenExpired as error:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Your session has expired (unused for a while, or signed in long ago). "
            "Please sign in again.",
        ) from error
    except SessionEnded as error:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "This session has ended. Please sign in again."
        ) from error
    except SessionsUnknown as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Sessions cannot be checked right now. Please try again in a moment.",
        ) from error
    except TokenError as error:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Please sign in as a staff member."
        ) from error
    _renew_if_due(request, claims)
    request.scope[_CHECKED] = claims
    return claims


def _renew_if_due(request: Request, claims: Claims) -> None:
    """Past half of its idle time a session gets a fresh token (sliding expiry), which
    ``SessionResponses`` puts on the response."""
    settings: Settings = request.app.state.settings
    now = time.time()
    if claims.expires_at - now > settings.session_idle_minutes * 30:  # half, in seconds
        return
    if claims.expires_at >= int(absolute_end(claims.extra, settings)):
        return  # renewing would not lengthen it
    token, cookie_seconds = _issue(signer(request), claims.subject, claims.extra, settings, now)
    carrier = Response()
    _set_cookie(carrier, token, cookie_seconds, settings.secure_cookies)
    request.scope[_RENEWED] = next(
        value for name, value in carrier.raw_headers if name == b"set-cookie"
    )


class SessionResponses:
    """What a staff session means for a response as a whole: the response carries the
    renewed cookie its check asked for (also a stream: the check runs before it starts),
    and a response still running when its session ends (a staff member's live stream,
    an export) ends then, in whichever process serves it: to the application it looks
    as if the client had gone."""

    def __init__(self, app: ASGIApp, registry: SessionRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = finished = False

        async def send_with_cookie(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
                if cookie := scope.get(_RENEWED):
                    message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        async def receive_until_ended() -> Message:
            claims: Claims | None = scope.get(_CHECKED)
            if claims is None or not self.registry.enforced:
                return await receive()  # e.g. a request's body, read before its check
            ending = self.registry.ending(claims)
            asking = asyncio.ensure_future(receive())
            waiting = asyncio.ensure_future(ending.wait())
            try:
                await asyncio.wait({asking, waiting}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when the caller gives up: no receive left behind to take a message
                waiting.cancel()
                if not asking.done():
                    asking.cancel()
            if asking.done() and not asking.cancelled():
                return asking.result()
            return {"type": "http.disconnect"}

        await self.app(scope, receive_until_ended, send_with_cookie)
        if started and not finished:  # ended by its session: close the response properly
            with contextlib.suppress(OSError, RuntimeError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


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
