"""Staff sign-in with local accounts: ``/api/v1/auth``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from services.common.auth import Staff, csrf_token, end_session, signer, start_session
from services.common.errors import Refusal
from services.common.identity import LocalAccounts


class SignIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Session(BaseModel):
    staff_id: str
    display_name: str
    roles: list[str]
    csrf_token: str


def signin_router(accounts: LocalAccounts) -> APIRouter:
    router = APIRouter(prefix="/api/v1/auth", tags=["staff sign-in"])

    @router.post("/login", response_model=Session)
    async def login(body: SignIn, request: Request, response: Response) -> Session:
        identity = await asyncio.to_thread(accounts.authenticate, body.username, body.password)
        if identity is None:
            raise Refusal(status.HTTP_401_UNAUTHORIZED, "User name or password is wrong.")
        settings = request.app.state.settings
        csrf = start_session(
            response, signer(request), identity, settings.session_hours, settings.secure_cookies
        )
        return Session(
            staff_id=identity.staff_id,
            display_name=identity.display_name,
            roles=sorted(identity.roles),
            csrf_token=csrf,
        )

    @router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
    def logout(_: Staff, response: Response) -> None:
        end_session(response)

    @router.get("/me", response_model=Session)
    def me(staff: Staff, request: Request) -> Session:
        return Session(
            staff_id=staff.staff_id,
            display_name=staff.display_name,
            roles=sorted(staff.roles),
            csrf_token=csrf_token(request),
        )

    return router
