"""Staff sign-in through the OpenID Connect provider: ``/api/v1/auth/oidc/…``.

``login`` sends the browser to the provider with a fresh state, nonce and PKCE challenge,
kept meanwhile in a short-lived signed cookie (``SameSite=Lax``: the provider's redirect
back is a navigation from another site). ``callback`` checks the state, swaps the code
for tokens, checks the ID token (``oidc.py``), maps the provider's groups to roles and
departments (``oidc_access.py``), puts the staff member on exactly the mapped departments'
rosters, and starts the same session as a local sign-in (``auth.py``), one that ends no
later than the provider's own session. Every refusal goes back to the sign-in page with a
reason (``?oidc_error=``) and no session; failures count like wrong passwords
(``throttle.py``), so a flood of forged callbacks from one address is refused (429 there).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import parse_qs
from uuid import UUID

import jwt
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from services.common import text
from services.common.auth import sessions, signer, start_session
from services.common.clients import client_address
from services.common.identity import AccountError, LocalAccounts, StaffIdentity
from services.common.logging import get_logger, new_correlation_id
from services.common.oidc import (
    LEEWAY_SECONDS,
    LOGOUT_TOKEN_MAX_AGE,
    Flow,
    OidcClient,
    ProviderError,
    TokenRefused,
)
from services.common.oidc_access import (
    Access,
    MappingError,
    access_of,
    check_mapping,
    groups_in,
    staff_id_of,
)
from services.common.settings import Settings
from services.common.throttle import SignInThrottle

log = get_logger(__name__)

PREFIX = "/api/v1/auth/oidc"
FLOW_COOKIE = "bb_oidc_flow"
FLOW_SECONDS = 600  # time to sign in at the provider
SIGN_IN_PAGE = "/staff/login"
LOGOUT_TOKEN_KEPT = LOGOUT_TOKEN_MAX_AGE + LEEWAY_SECONDS  # older ones are refused anyway


class Department(Protocol):
    id: UUID
    slug: str
    roster: dict[str, str]


class Roster(Protocol):
    """The rooms service's departments, as far as sign-in changes their rosters."""

    def departments(self) -> list[Any]: ...
    def assign_staff(self, department_id: UUID, staff_id: str, role: str,
                     correlation_id: str) -> Any: ...
    def unassign_staff(self, department_id: UUID, staff_id: str, correlation_id: str) -> Any: ...


def oidc_router(accounts: LocalAccounts, throttle: SignInThrottle) -> APIRouter:
    router = APIRouter(prefix="/oidc")  # under signin.py's /api/v1/auth
    used_nonces: dict[str, float] = {}
    logouts: dict[str, float] = {}  # logout token's jti -> when it first came

    @router.get("/login", status_code=status.HTTP_303_SEE_OTHER,
                responses={303: {"description": "To the provider's sign-in page"}})
    async def login(request: Request, lang: str = Query("de", pattern="^(de|en)$")
                    ) -> RedirectResponse:
        """Start signing in at the provider."""
        client = _client(request)
        if await throttle.address_refusal(client_address(request.scope)) is not None:
            return _refused("throttled")
        flow = client.new_flow()
        try:
            url = await client.authorization_url(flow, _redirect_uri(request), lang)
        except ProviderError as error:
            log.warning("oidc_provider_unreachable", error=str(error))
            return _refused("provider")
        response = RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
        response.set_cookie(FLOW_COOKIE, _seal(request, flow), max_age=FLOW_SECONDS,
                            httponly=True, secure=_settings(request).secure_cookies,
                            samesite="lax", path=PREFIX)
        return response

    @router.get("/callback", status_code=status.HTTP_200_OK, response_class=HTMLResponse,
                responses={200: {"description": "Signed in: a page that goes on to the "
                                                "staff pages"},
                           303: {"description": "Refused: back to the sign-in page"}})
    async def callback(
        request: Request,
        code: str | None = Query(None, max_length=2048),
        state: str | None = Query(None, max_length=256),
        error: str | None = Query(None, max_length=256),
    ) -> Response:
        """Where the provider sends the browser back with a code (or an error)."""
        client = _client(request)
        address = client_address(request.scope)
        if await throttle.address_refusal(address) is not None:
            return _refused("throttled")
        flow = _unseal(request)
        if flow is None or state is None or not hmac.compare_digest(state, flow.state):
            await throttle.address_failed(address)
            return _refused("state")
        if error is not None:
            return _refused("denied")  # cancelled at the provider: no guess, no count
        if not code:
            await throttle.address_failed(address)
            return _refused("state")
        _forget_lapsed(used_nonces)
        if flow.nonce in used_nonces:
            await throttle.address_failed(address)
            return _refused("refused")
        used_nonces[flow.nonce] = time.time() + FLOW_SECONDS
        settings = _settings(request)
        try:
            signed_in = await client.finish(flow, code, _redirect_uri(request))
            staff_id = staff_id_of(signed_in.claims, settings.oidc_username_claim)
        except (TokenRefused, MappingError) as refusal:
            log.warning("oidc_signin_refused", reason=str(refusal), client=address)
            await throttle.address_failed(address)
            return _refused("refused")
        except ProviderError as trouble:
            log.warning("oidc_provider_unreachable", error=str(trouble))
            return _refused("provider")
        access = access_of(groups_in(signed_in.claims, settings.oidc_groups_claim),
                           settings.oidc_group_map)
        if access.empty or (settings.local_accounts and _is_local(accounts, staff_id)):
            log.warning("oidc_signin_no_access", staff_id=staff_id, client=address)
            await throttle.failed(staff_id, address)
            return _refused("no_access")
        await throttle.succeeded(staff_id)
        await asyncio.to_thread(_sync_roster, _roster(request), staff_id, access)
        identity = StaffIdentity(staff_id, _display_name(signed_in.claims, staff_id),
                                 access.roles)
        response = _onward("/dpo" if "dpo" in access.roles and "staff" not in access.roles
                           else "/staff")
        provider_session = signed_in.claims.get("sid")
        start_session(response, signer(request), identity, settings,
                      ends=signed_in.provider_session_end, id_token=signed_in.id_token,
                      provider_user=str(signed_in.claims["sub"]),
                      provider_session=provider_session if isinstance(provider_session, str)
                      else None)
        response.delete_cookie(FLOW_COOKIE, path=PREFIX)
        log.info("oidc_signed_in", staff_id=staff_id, roles=sorted(access.roles),
                 departments=sorted(access.departments))
        return response

    @router.post("/backchannel-logout", response_class=JSONResponse,
                 responses={200: {"description": "The sessions it names are ended"},
                            400: {"description": "Not a valid logout token of the provider"},
                            429: {"description": "Too many refused logout tokens"},
                            503: {"description": "The provider's keys cannot be read now"}})
    async def backchannel_logout(request: Request) -> JSONResponse:
        """The provider signed a user out (OpenID Connect Back-Channel Logout 1.0): every
        session here that the logout token names ends, in every process. Form-encoded
        ``logout_token``; register this URL at the provider as the client's
        ``backchannel_logout_uri``."""
        client = _client(request)
        address = client_address(request.scope)
        if await throttle.address_refusal(address) is not None:
            return _logout_answer(429, "temporarily_unavailable",
                                  "Too many refused logout tokens from this address.")
        logout_token = _form_field(await request.body(), "logout_token")
        if logout_token is None:
            await throttle.address_failed(address)
            return _logout_answer(400, "invalid_request",
                                  "Send one logout_token, form-encoded.")
        try:
            order = await client.check_logout_token(logout_token)
        except TokenRefused as refusal:
            log.warning("oidc_logout_token_refused", reason=str(refusal), client=address)
            await throttle.address_failed(address)
            return _logout_answer(400, "invalid_request", str(refusal))
        except ProviderError as trouble:
            log.warning("oidc_provider_unreachable", error=str(trouble))
            return _logout_answer(503, "temporarily_unavailable",
                                  "The provider's keys cannot be read now.")
        # Sessions signed in before the token came end (its iat counts whole seconds);
        # the same token again (the provider retrying) ends no later session.
        now = time.time()
        for token_id in [t for t, came in logouts.items() if came < now - LOGOUT_TOKEN_KEPT]:
            del logouts[token_id]
        at = logouts.setdefault(order.token_id, now)
        registry = sessions(request)
        if registry is not None:
            await registry.end_at_provider(order.sub, order.sid, at)
        log.info("oidc_backchannel_logout", provider_user=order.sub,
                 provider_session=order.sid)
        return _logout_answer(200)

    return router


def _form_field(body: bytes, name: str) -> str | None:
    """The one value of ``name`` in a form-encoded body; None if absent, repeated or
    not text."""
    try:
        values = parse_qs(body.decode("ascii"), strict_parsing=True).get(name, [])
    except (UnicodeDecodeError, ValueError):
        return None
    return values[0] if len(values) == 1 and values[0] else None


def _logout_answer(code: int, error: str | None = None, description: str | None = None
                   ) -> JSONResponse:
    """Back-Channel Logout 2.8: 200, or 400 with an OAuth error; never cached."""
    body = {} if error is None else {"error": error, "error_description": description}
    return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})


async def provider_logout_url(request: Request, claims: Mapping[str, Any]) -> str | None:
    """Where a signing-out OIDC session goes next: the provider's end_session_endpoint."""
    id_token = claims.get("idt")
    if not isinstance(id_token, str) or not _settings(request).oidc_issuer:
        return None
    try:
        return await _client(request).logout_url(id_token, f"{_origin(request)}"
                                                  f"{SIGN_IN_PAGE}?signed_out=1")
    except ProviderError as error:
        log.warning("oidc_provider_unreachable", error=str(error))
        return None


def _client(request: Request) -> OidcClient:
    settings = _settings(request)
    if not settings.oidc_issuer:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No identity provider is configured.")
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    if client is None:
        check_mapping(settings.oidc_group_map)
        client = OidcClient(settings.oidc_issuer, settings.oidc_client_id,
                            settings.oidc_client_secret, settings.oidc_scopes)
        request.app.state.oidc = client
        request.app.state.on_stop.append(client.aclose)
    return client


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _origin(request: Request) -> str:
    configured = _settings(request).oidc_redirect_url
    if configured:
        scheme, _, rest = configured.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"
    return str(request.base_url).rstrip("/")


def _redirect_uri(request: Request) -> str:
    return _settings(request).oidc_redirect_url or f"{_origin(request)}{PREFIX}/callback"


def _onward(path: str) -> HTMLResponse:
    """A page of this origin that goes on to ``path``: a redirect would still belong to the
    provider's cross-site navigation, which browsers send no ``SameSite=Strict`` session
    cookie with; this page's own navigation is same-site. No script (CSP): a meta refresh,
    and a link for a browser that does not follow it."""
    return HTMLResponse(
        '<!DOCTYPE html><html lang="de"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={path}">'
        "<title>Bürgerbüro</title></head><body><main><p>"
        f'<a href="{path}">Weiter / Continue</a></p></main></body></html>'
    )


def _refused(reason: str) -> RedirectResponse:
    response = RedirectResponse(f"{SIGN_IN_PAGE}?oidc_error={reason}",
                                status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(FLOW_COOKIE, path=PREFIX)
    return response


def _flow_key(request: Request) -> bytes:
    return hmac.new(request.app.state.settings.signing_key, b"bb-oidc-flow",
                    hashlib.sha256).digest()


def _seal(request: Request, flow: Flow) -> str:
    payload = {"st": flow.state, "nc": flow.nonce, "cv": flow.code_verifier,
               "exp": int(time.time()) + FLOW_SECONDS, "jti": secrets.token_urlsafe(8)}
    return jwt.encode(payload, _flow_key(request), algorithm="HS256")


def _unseal(request: Request) -> Flow | None:
    sealed = request.cookies.get(FLOW_COOKIE)
    if not sealed or len(sealed) > 2048:
        return None
    try:
        payload = jwt.decode(sealed, _flow_key(request), algorithms=["HS256"],
                             options={"require": ["exp"]})
        return Flow(str(payload["st"]), str(payload["nc"]), str(payload["cv"]))
    except (jwt.PyJWTError, KeyError):
        return None


def _forget_lapsed(used: dict[str, float]) -> None:
    now = time.time()
    for nonce in [n for n, until in used.items() if until < now]:
        del used[nonce]


def _is_local(accounts: LocalAccounts, staff_id: str) -> bool:
    """A provider's user named like a local account would share its rosters: refused
    while local accounts are on (with them off, sharing the name is the migration)."""
    try:
        accounts.is_active(staff_id)
    except AccountError:
        return False
    return True


def _display_name(claims: Mapping[str, Any], fallback: str) -> str:
    name = claims.get("name")
    try:
        return text.display_name(name if isinstance(name, str) and name.strip() else fallback)
    except ValueError:
        return fallback


def _roster(request: Request) -> Roster:
    return request.app.state.services["rooms"].app  # type: ignore[no-any-return]


def _sync_roster(roster: Roster, staff_id: str, access: Access) -> None:
    """Exactly the mapped departments, with the mapped role; off every other roster."""
    correlation_id = new_correlation_id()
    known = set()
    for department in roster.departments():
        known.add(department.slug)
        wanted = access.departments.get(department.slug)
        current = department.roster.get(staff_id)
        if wanted is not None and current != wanted:
            roster.assign_staff(department.id, staff_id, wanted, correlation_id)
        elif wanted is None and current is not None:
            roster.unassign_staff(department.id, staff_id, correlation_id)
    for slug in sorted(set(access.departments) - known):
        log.warning("oidc_unknown_department", slug=slug)
