"""The page router: server-rendered shells in German or English and every static asset.

No page reads a store or imports a service: the browser code fetches ``/api/v1`` on the
same origin. A department's page is rendered whole for its first view from the same
public API, asked in-process where this app serves it too (``buergerbuero up``); where
it does not (the pages alone in a pod), the script fills the page. Tokens never appear
in a page URL (invitation links carry theirs in the fragment, which browsers do not
send).
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from services.common.auth import staff_of
from services.common.logging import get_logger
from services.web.department import department_page_context
from services.web.i18n import LANG_COOKIE, LOCALES, STATIC, environment_for, negotiate

log = get_logger(__name__)

router = APIRouter(include_in_schema=False)

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".tflite": "application/octet-stream",
    ".binarypb": "application/octet-stream",
    ".data": "application/octet-stream",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".vtt": "text/vtt; charset=utf-8",
}
LANG_COOKIE_SECONDS = 365 * 24 * 3600
# The background behind a staff member's camera: a file of the operator's (PNG, JPEG, WebP
# or SVG), otherwise the shipped placeholder.
BACKGROUND_ENV = "BB_WEB_BACKGROUND_IMAGE"
DEFAULT_BACKGROUND = STATIC / "img" / "background.svg"
# The administration's video in German Sign Language for the Leichte Sprache page (MP4 or
# WebM; captions, if any, as a WebVTT file of the same name next to it), served from here.
SIGN_LANGUAGE_ENV = "BB_WEB_SIGN_LANGUAGE_VIDEO"
SIGN_LANGUAGE_PATH = "/leichte-sprache/gebaerdensprache"
VIDEO_TYPES = (".mp4", ".webm")
# Sec-Fetch-Site of navigations whose Strict cookies the browser withholds.
CROSS_SITE = ("cross-site", "same-site")
# The department's page waits at most this long for the API before it leaves the rest to
# the script.
FIRST_VIEW_TIMEOUT = 2.0


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    locale = negotiate(request)
    settings = request.app.state.settings
    env = environment_for(locale)
    html = env.get_template(template).render(
        request_path=request.url.path,
        district_name=settings.district_name,
        **context,
    )
    response = HTMLResponse(html)
    wanted = request.query_params.get("lang")
    if wanted and wanted[:2] in LOCALES and request.cookies.get(LANG_COOKIE) != wanted[:2]:
        response.set_cookie(
            LANG_COOKIE,
            wanted[:2],
            max_age=LANG_COOKIE_SECONDS,
            samesite="lax",
            httponly=True,
            secure=bool(settings.secure_cookies),
            path="/",
        )
    return response


# -- citizens ---------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def start_page(request: Request) -> HTMLResponse:
    return render(request, "start.html", page="start")


@router.get("/office/{department_id}", response_class=HTMLResponse)
async def knock_page(request: Request, department_id: UUID) -> HTMLResponse:
    """The department as the script would show it, rendered for the first view."""
    locale = negotiate(request)
    department = await _public_api(request, f"/api/v1/departments/{department_id}?lang={locale}")
    context = department_page_context(department, locale) if department else {}
    return render(request, "knock.html", page="knock", department_id=department_id, **context)


async def _public_api(request: Request, path: str) -> Any:
    """GET the public API in-process, as any browser would (no cookie, no token). None when
    this app does not serve it, it refuses or takes too long: the page's script asks."""
    transport = httpx.ASGITransport(app=request.app)
    base = str(request.base_url).rstrip("/")
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url=base, timeout=FIRST_VIEW_TIMEOUT
        ) as client:
            response = await client.get(path, headers={"Accept": "application/json"})
    except httpx.HTTPError:
        log.warning("first_view_unavailable", path=path)
        return None
    return response.json() if response.status_code == status.HTTP_200_OK else None


@router.get("/office/{department_id}/book", response_class=HTMLResponse)
def booking_page(request: Request, department_id: UUID) -> HTMLResponse:
    """The slot picker and the booking form (``?move=`` an appointment: pick its new time)."""
    return render(request, "book.html", page="book", department_id=department_id)


@router.get("/appointments/{appointment_id}", response_class=HTMLResponse)
def appointment_page(request: Request, appointment_id: UUID) -> HTMLResponse:
    """The citizen's appointment: the token is in the fragment and stays in the browser."""
    return render(request, "appointment.html", page="appointment", appointment_id=appointment_id)


@router.get("/visit", response_class=HTMLResponse)
def waiting_room(request: Request) -> HTMLResponse:
    return render(request, "visit.html", page="visit")


@router.get("/visit/consultation/{consultation_id}", response_class=HTMLResponse)
def citizen_consultation(request: Request, consultation_id: UUID) -> HTMLResponse:
    return render(
        request, "consultation.html", page="consultation", consultation_id=consultation_id
    )


@router.get("/invite/{consultation_id}", response_class=HTMLResponse)
def invitation_page(request: Request, consultation_id: UUID) -> HTMLResponse:
    """The interpreter's link: the token is in the fragment and stays in the browser."""
    return render(request, "invite.html", page="invite", consultation_id=consultation_id)


# -- staff ------------------------------------------------------------------------------------


@router.get("/staff/login", response_class=HTMLResponse)
def staff_login(request: Request) -> HTMLResponse:
    return render(request, "staff/login.html", page="staff-login")


@router.get("/staff", response_class=HTMLResponse, response_model=None)
def staff_dashboard(request: Request) -> HTMLResponse | RedirectResponse:
    """The dashboard for a signed-in staff member; the sign-in page (303) for anyone else,
    before any of the dashboard is shown.

    The session cookie is SameSite=Strict, so a navigation that comes from another site
    (the identity provider's redirect after signing in) arrives without it although the
    person is signed in: only then the page's script asks who is signed in."""
    if request.headers.get("sec-fetch-site") in CROSS_SITE:
        return render(request, "staff/dashboard.html", page="staff")
    try:
        staff_of(request)
    except HTTPException as error:
        if error.status_code == status.HTTP_401_UNAUTHORIZED:
            return RedirectResponse("/staff/login", status_code=status.HTTP_303_SEE_OTHER)
        raise
    return render(request, "staff/dashboard.html", page="staff")


@router.get("/staff/office/{department_id}", response_class=HTMLResponse)
def office_settings(request: Request, department_id: UUID) -> HTMLResponse:
    return render(request, "staff/office.html", page="staff-office", department_id=department_id)


@router.get("/staff/appointments/{department_id}", response_class=HTMLResponse)
def staff_appointments(request: Request, department_id: UUID) -> HTMLResponse:
    return render(
        request, "staff/appointments.html", page="staff-appointments", department_id=department_id
    )


@router.get("/staff/consultation/{consultation_id}", response_class=HTMLResponse)
def staff_consultation(request: Request, consultation_id: UUID) -> HTMLResponse:
    return render(
        request,
        "staff/consultation.html",
        page="staff-consultation",
        consultation_id=consultation_id,
    )


@router.get("/staff/background")
def background_image() -> FileResponse:
    """The image shown behind a staff member's camera (the administration's, if configured)."""
    configured = os.environ.get(BACKGROUND_ENV)
    target = Path(configured) if configured else DEFAULT_BACKGROUND
    if not target.is_file():
        target = DEFAULT_BACKGROUND
    media_type = MEDIA_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
    response = FileResponse(target, media_type=media_type)
    response.headers["Cache-Control"] = "no-cache"
    return response


# -- data protection officer ------------------------------------------------------------------


@router.get("/dpo", response_class=HTMLResponse, response_model=None)
def dpo_page(request: Request) -> HTMLResponse | RedirectResponse:
    """The DPO's view of the audit log: signed in with the role ``dpo``, otherwise 403."""
    try:
        staff = staff_of(request)
    except HTTPException as error:
        if error.status_code == status.HTTP_401_UNAUTHORIZED:
            return RedirectResponse("/staff/login", status_code=status.HTTP_303_SEE_OTHER)
        staff = None
    if staff is None or "dpo" not in staff.roles:
        response = render(request, "dpo_forbidden.html", page="dpo-forbidden")
        response.status_code = status.HTTP_403_FORBIDDEN
        return response
    return render(request, "dpo.html", page="dpo")


# -- information ------------------------------------------------------------------------------


@router.get("/accessibility", response_class=HTMLResponse)
def accessibility_statement(request: Request) -> HTMLResponse:
    return render(request, "accessibility.html", page="info")


@router.get("/imprint", response_class=HTMLResponse)
def imprint(request: Request) -> HTMLResponse:
    return render(request, "imprint.html", page="info")


@router.get("/privacy", response_class=HTMLResponse)
def privacy(request: Request) -> HTMLResponse:
    return render(request, "privacy.html", page="info")


@router.get("/leichte-sprache", response_class=HTMLResponse)
def easy_language(request: Request) -> HTMLResponse:
    """The virtual office in Leichte Sprache (BITV 2.0 § 4), with the administration's
    sign-language video where it has given one."""
    video = _sign_language_video()
    return render(
        request,
        "leichte-sprache.html",
        page="info",
        sign_language_video=f"{SIGN_LANGUAGE_PATH}{video.suffix}" if video else None,
        sign_language_type=MEDIA_TYPES[video.suffix] if video else None,
        sign_language_captions=bool(video and video.with_suffix(".vtt").is_file()),
    )


@router.api_route(SIGN_LANGUAGE_PATH + "{suffix}", methods=["GET", "HEAD"])
def sign_language_video(suffix: str) -> FileResponse:
    """The configured video (ranges answered, for seeking), or its captions."""
    video = _sign_language_video()
    if video is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "There is no sign-language video.")
    target = video.with_suffix(".vtt") if suffix == ".vtt" else video
    if suffix != target.suffix or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "There is no such file.")
    response = FileResponse(target, media_type=MEDIA_TYPES[target.suffix])
    response.headers["Cache-Control"] = "no-cache"
    return response


def _sign_language_video() -> Path | None:
    configured = os.environ.get(SIGN_LANGUAGE_ENV)
    if not configured:
        return None
    video = Path(configured)
    return video if video.suffix in VIDEO_TYPES and video.is_file() else None


# -- assets -----------------------------------------------------------------------------------


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"])
def static_file(path: str) -> Response:
    root = STATIC.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "There is no such file.")
    media_type = MEDIA_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
    response = FileResponse(target, media_type=media_type)
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    return RedirectResponse("/static/img/logo.svg", status_code=status.HTTP_301_MOVED_PERMANENTLY)
