"""The page router: server-rendered shells in German or English and every static asset.

No page reads a store or calls a service: the browser code fetches ``/api/v1`` on the
same origin. Tokens never appear in a page URL (invitation links carry theirs in the
fragment, which browsers do not send).
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from services.common.auth import staff_of
from services.web.i18n import LANG_COOKIE, LOCALES, STATIC, environment_for, negotiate

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
}
LANG_COOKIE_SECONDS = 365 * 24 * 3600
# The background behind a staff member's camera: a file of the operator's (PNG, JPEG, WebP
# or SVG), otherwise the shipped placeholder.
BACKGROUND_ENV = "BB_WEB_BACKGROUND_IMAGE"
DEFAULT_BACKGROUND = STATIC / "img" / "background.svg"


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
def knock_page(request: Request, department_id: UUID) -> HTMLResponse:
    return render(request, "knock.html", page="knock", department_id=department_id)


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


@router.get("/staff", response_class=HTMLResponse)
def staff_dashboard(request: Request) -> HTMLResponse:
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
