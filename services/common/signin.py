"""Staff sign-in with local accounts: ``/api/v1/auth``; and ending the sessions of an
account whose password or roles changed or which was disabled."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.common.auth import (
    Staff,
    end_session,
    session_claims,
    signer,
    start_session,
)
from services.common.bus import Bus
from services.common.clients import client_address
from services.common.errors import Refusal
from services.common.identity import LocalAccounts
from services.common.logging import get_logger
from services.common.oidc_signin import oidc_router, provider_logout_url
from services.common.sessions import lifetime_seconds, raise_void_marker, sessions_bucket
from services.common.settings import Settings
from services.common.throttle import SignInThrottle, Throttled

log = get_logger(__name__)

ACCOUNT_POLL_SECONDS = 1.0


class SignIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Session(BaseModel):
    staff_id: str
    display_name: str
    roles: list[str]
    csrf_token: str
    expires_at: int = Field(
        description="When the session ends unless it is used (Unix seconds); any request "
        "after half of its idle time renews it, up to the session's absolute end."
    )
    idle_seconds: int = Field(
        description="How long the session lasts unused; an open staff page asks /auth/me "
        "well within it, so an open page keeps its session."
    )


class TooManyAttempts(BaseModel):
    detail: str
    retry_after_seconds: int


class SignInMethods(BaseModel):
    local_accounts: bool = Field(description="User name and password")
    provider: str | None = Field(
        description="The identity provider's name for its button; None: no provider"
    )


class ProviderLogout(BaseModel):
    logout_url: str = Field(
        description="Signed in through the identity provider: sign out there too"
    )


def signin_router(accounts: LocalAccounts, throttle: SignInThrottle) -> APIRouter:
    router = APIRouter(prefix="/api/v1/auth", tags=["staff sign-in"])
    router.include_router(oidc_router(accounts, throttle))

    @router.get("/methods", response_model=SignInMethods)
    def methods(request: Request) -> SignInMethods:
        """How staff sign in here (the sign-in page shows what is configured)."""
        settings: Settings = request.app.state.settings
        return SignInMethods(
            local_accounts=settings.local_accounts,
            provider=settings.oidc_provider_name if settings.oidc_issuer else None,
        )

    @router.post(
        "/login",
        response_model=Session,
        responses={
            404: {"description": "Local accounts are switched off"},
            429: {"model": TooManyAttempts, "description": "Too many failed sign-ins"},
        },
    )
    async def login(body: SignIn, request: Request, response: Response) -> Session | JSONResponse:
        if not request.app.state.settings.local_accounts:
            raise Refusal(status.HTTP_404_NOT_FOUND,
                          "Sign-in with a user name and password is switched off here.")
        client = client_address(request.scope)
        refused = await throttle.refusal(body.username, client)
        if refused is not None:
            return _too_many(refused)
        identity = await asyncio.to_thread(accounts.authenticate, body.username, body.password)
        if identity is None:
            await throttle.failed(body.username, client)
            raise Refusal(status.HTTP_401_UNAUTHORIZED, "User name or password is wrong.")
        await throttle.succeeded(body.username)
        settings = request.app.state.settings
        csrf = start_session(response, signer(request), identity, settings)
        return Session(
            staff_id=identity.staff_id,
            display_name=identity.display_name,
            roles=sorted(identity.roles),
            csrf_token=csrf,
            expires_at=_expiry(settings),
            idle_seconds=round(settings.session_idle_minutes * 60),
        )

    @router.post(
        "/logout",
        status_code=status.HTTP_204_NO_CONTENT,
        responses={200: {"model": ProviderLogout,
                         "description": "Signed out here; now at the identity provider"}},
    )
    async def logout(_: Staff, request: Request, response: Response) -> Response:
        at_provider = await provider_logout_url(request, session_claims(request).extra)
        await end_session(request, response)
        if at_provider is None:
            response.status_code = status.HTTP_204_NO_CONTENT
            return response
        answer = JSONResponse({"logout_url": at_provider})
        answer.headers.append("set-cookie", response.headers["set-cookie"])
        return answer

    @router.get("/me", response_model=Session)
    def me(staff: Staff, request: Request) -> Session:
        claims = session_claims(request)
        return Session(
            staff_id=staff.staff_id,
            display_name=staff.display_name,
            roles=sorted(staff.roles),
            csrf_token=str(claims["csrf"]),
            expires_at=claims.expires_at,
            idle_seconds=round(request.app.state.settings.session_idle_minutes * 60),
        )

    return router


def _expiry(settings: Settings) -> int:
    return int(time.time() + min(settings.session_idle_minutes * 60, settings.session_hours * 3600))


def _too_many(refused: Throttled) -> JSONResponse:
    minutes = max(1, round(refused.retry_after / 60))
    return JSONResponse(
        {
            "detail": "Too many failed sign-ins. For your protection, signing in is paused: "
            f"please try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            "retry_after_seconds": refused.retry_after,
        },
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(refused.retry_after)},
    )


async def end_sessions_on_account_changes(
    accounts: LocalAccounts, bus: Bus, settings: Settings
) -> None:
    """Follow the accounts' store (changed by this service or by ``buergerbuero staff`` in
    another process) and void the sessions signed in before each change of a password or
    of roles, and before an account was disabled, in every process (sessions.py).
    Changes older than a session can live are passed over: no session of theirs is left."""
    bucket = None
    position = 0
    while True:
        try:
            bucket = bucket or await sessions_bucket(bus, settings)
            changes, read_to = await asyncio.to_thread(accounts.changes_after, position)
            for change in changes:
                if change.at > time.time() - lifetime_seconds(settings):
                    await raise_void_marker(bucket, change.staff_id, change.at)
                    log.info("sessions_voided", staff_id=change.staff_id, change=change.kind)
                position = change.position
            position = read_to
        except asyncio.CancelledError:
            raise
        except Exception as error:  # NATS or the store away: the same changes again later
            log.warning("account_changes_not_followed", error=repr(error))
        await asyncio.sleep(ACCOUNT_POLL_SECONDS)

