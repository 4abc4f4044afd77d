"""The media API: where a consultation's room is, its signalling socket, the browser client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, WebSocket, status
from fastapi.responses import FileResponse

from services.common.errors import Refusal
from services.common.logging import get_logger
from services.common.tokens import TokenError, TokenExpired, derived_from
from services.media.ice import browser_ice_configuration
from services.media.service import MediaService
from services.media.signalling import (
    CloseCode,
    Refused,
    SignallingSession,
    authenticate,
    close,
)

log = get_logger(__name__)

router = APIRouter(prefix="/api/v1/media", tags=["media"])
CLIENT_SCRIPT = Path(__file__).parent / "static" / "media-client.js"


async def media_service(request: Request) -> MediaService:
    return request.app.state.services["media"]  # type: ignore[no-any-return]


Service = Annotated[MediaService, Depends(media_service)]


def signal_path(consultation_id: UUID) -> str:
    return f"/api/v1/media/consultations/{consultation_id}/signal"


@router.get("/consultations/{consultation_id}")
async def where_is_the_room(
    consultation_id: UUID, request: Request, service: Service
) -> dict[str, Any]:
    """Where to signal for this consultation's room (``Authorization: Bearer <participant
    token>``): the socket URL on the hosting replica and the ICE configuration."""
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    try:
        claims = service.signer.verify(token, "participant")
    except TokenExpired as error:
        raise Refusal(status.HTTP_401_UNAUTHORIZED, "The participant token has expired.") from error
    except TokenError as error:
        raise Refusal(status.HTTP_401_UNAUTHORIZED, "A participant token is required.") from error
    if claims.extra.get("consultation") != str(consultation_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "The token is for another consultation.")
    invitation = derived_from(claims)
    if invitation is not None and await service.revocations.is_revoked(invitation):
        raise Refusal(
            status.HTTP_410_GONE, "The invitation you joined by has been withdrawn."
        )
    if not service.availability.available:
        raise Refusal(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Video is not available on this server at the moment.",
            video_available=False,
            reason=service.availability.reason,
        )
    assignment = await service.assignment(consultation_id)
    if assignment is None:
        record = await asyncio.to_thread(service.media.room, consultation_id)
        if record is not None and record.closed:
            raise Refusal(status.HTTP_410_GONE, "The consultation's media room has closed.")
        raise Refusal(
            status.HTTP_404_NOT_FOUND, "The media room is not open yet.", retry_after_seconds=1
        )
    return {
        "consultation_id": consultation_id,
        "participant_id": claims.subject,
        "role": claims.extra.get("role"),
        "replica_id": assignment.replica_id,
        "signal_url": assignment.url + signal_path(consultation_id),
        "ice": browser_ice_configuration(service.settings, claims.subject),
    }


@router.get("/status")
async def media_status(service: Service) -> dict[str, Any]:
    """Whether this server can run media rooms at all (pages show a banner if not)."""
    availability = service.availability
    return {"video_available": availability.available, "reason": availability.reason}


@router.websocket("/consultations/{consultation_id}/signal")
async def signal(websocket: WebSocket, consultation_id: UUID) -> None:
    """The signalling socket; the first message is ``{"type": "auth", "token": ...}``."""
    service: MediaService = websocket.app.state.services["media"]
    await websocket.accept()
    try:
        admitted = await authenticate(websocket, service.signer, consultation_id)
        await service.revocations.refuse_if_withdrawn(admitted.invitation)
        room = await service.live_room(consultation_id)
        hosted = service.hosted
        session = SignallingSession(
            websocket,
            room,
            admitted,
            lambda listener: hosted.listen(consultation_id, listener),
        )
        welcome = {
            "consultation_id": str(consultation_id),
            "participant_id": admitted.participant_id,
            "role": admitted.role,
            "ice": browser_ice_configuration(service.settings, admitted.participant_id),
        }
        async with service.revocations.guard(session):
            await session.run(welcome)
        await close(websocket, *session.farewell())
    except Refused as refused:
        log.info("media_signalling_refused", code=int(refused.code), reason=refused.reason)
        await close(websocket, refused.code, refused.reason)
    except TimeoutError:
        await close(websocket, CloseCode.BAD_MESSAGE, "no join in time")
    except Exception:
        log.exception("media_signalling_failed")
        await close(websocket, CloseCode.SERVER_ERROR, "media server error")


@router.get("/client.js", include_in_schema=False)
async def browser_client() -> FileResponse:
    return FileResponse(
        CLIENT_SCRIPT,
        media_type="application/javascript",
        headers={"Cache-Control": "no-cache"},
    )
