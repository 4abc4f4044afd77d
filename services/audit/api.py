"""The audit service's HTTP API under ``/api/v1/audit``: read-only, every route a GET.

Public (hashes and signatures only, for anyone who keeps a copy of the log's state):
the latest signed checkpoint, the verifier key, the list of checkpoints, consistency proofs.
Everything that shows records is for the role ``dpo`` alone, and every such read is
recorded as an ``AuditViewed`` event before it is answered. Nothing here writes to or
deletes from the log: there is no route that could.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from services.audit import views
from services.audit._text import b64encode
from services.audit.export import export_lines, plan_export
from services.audit.proofs import build_bundle
from services.audit.service import AuditService, audit_service
from services.audit.verify import verify_stored
from services.common.auth import Staff
from services.common.identity import StaffIdentity

Service = Annotated[AuditService, Depends(audit_service)]
TZ = "Europe/Berlin"
MAX_PAGE = 1000

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def dpo(staff: Staff) -> StaffIdentity:
    if "dpo" not in staff.roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only a data protection officer may.")
    return staff


Dpo = Annotated[StaffIdentity, Depends(dpo)]


def time_zone(tz: str = TZ) -> str:
    """An IANA time zone name; anything else is a 422 that says so (not a 500)."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Unknown time zone '{tz[:64]}': use an IANA name such as Europe/Berlin or UTC.",
        ) from None
    return tz


TimeZone = Annotated[str, Depends(time_zone)]


async def _seen(service: AuditService, staff: StaffIdentity, action: str, target: str) -> None:
    try:
        await service.record_view(staff, action, target)
    except Exception as error:  # an unrecorded read is not allowed
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "The read could not be recorded; try again.") from error


# -- public: the log's state --------------------------------------------------------------------

@router.get("/checkpoint", response_class=PlainTextResponse)
async def latest_checkpoint(service: Service) -> PlainTextResponse:
    """The newest signed checkpoint (C2SP tlog-checkpoint), as text."""
    latest = await asyncio.to_thread(service.checkpointer.latest)
    if latest is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No checkpoint has been signed yet.")
    return PlainTextResponse(latest.note)


@router.get("/checkpoint/fresh", response_class=PlainTextResponse)
async def fresh_checkpoint(service: Service, staff: Dpo) -> PlainTextResponse:
    """Sign the current tree now (if it grew since the last checkpoint) and return it."""
    await service.sign_now()  # a log that contradicts its checkpoints: 409 (refusals)
    return await latest_checkpoint(service)


@router.get("/key", response_class=PlainTextResponse)
def verifier_key(service: Service) -> PlainTextResponse:
    """The log's public key as a signed-note verifier key ``<origin>+<id>+<key>``."""
    return PlainTextResponse(service.checkpointer.verifier.encode() + "\n")


@router.get("/checkpoints")
async def signed_checkpoints(service: Service, min_size: int = Query(0, ge=0),
                             limit: int = Query(100, ge=1, le=MAX_PAGE)) -> list[dict[str, Any]]:
    found = await asyncio.to_thread(service.store.checkpoints, min_size)
    return [{"size": size, "checkpoint": note} for size, note in found[:limit]]


@router.get("/proof/consistency")
async def consistency_proof(service: Service, first: int = Query(ge=0),
                            second: int = Query(ge=0)) -> dict[str, Any]:
    """RFC 9162 consistency proof from tree size ``first`` to ``second`` (hashes only)."""
    if not first <= second <= service.store.size:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Need first <= second <= log size.")
    try:
        proof = await asyncio.to_thread(service.store.tree(second).consistency_proof, first)
    except LookupError as error:
        raise HTTPException(status.HTTP_410_GONE, f"Dropped by retention: {error}") from error
    return {"first": first, "second": second, "proof": [b64encode(h) for h in proof]}


# -- the DPO's view -----------------------------------------------------------------------------

@router.get("/consultations")
async def consultations_of_a_day(service: Service, staff: Dpo, department_id: UUID,
                                 day: Annotated[date, Query(alias="date")],
                                 tz: TimeZone) -> list[dict[str, Any]]:
    await _seen(service, staff, "consultations", f"department={department_id};date={day}")
    return await asyncio.to_thread(views.consultations, service.store, department_id, day, tz)


@router.get("/consultations/{consultation_id}")
async def consultation_timeline(consultation_id: UUID, service: Service,
                                staff: Dpo) -> dict[str, Any]:
    await _seen(service, staff, "timeline", f"consultation={consultation_id}")
    found = await asyncio.to_thread(views.timeline, service.store, consultation_id)
    if not found["steps"]:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such consultation in the log.")
    return found


@router.get("/statistics")
async def queue_statistics(service: Service, staff: Dpo, department_id: UUID,
                           first: Annotated[date, Query(alias="from")],
                           last: Annotated[date, Query(alias="to")],
                           tz: TimeZone) -> dict[str, Any]:
    await _seen(service, staff, "statistics", f"department={department_id};from={first};to={last}")
    return await asyncio.to_thread(views.queue_statistics, service.store, department_id,
                                   first, last, tz)


@router.get("/search")
async def search(service: Service, staff: Dpo, id: UUID) -> dict[str, Any]:
    """A consultation or a ticket by its id: its timeline."""
    await _seen(service, staff, "search", f"id={id}")
    found = await asyncio.to_thread(views.timeline, service.store, id)
    kind = "consultation"
    if not found["steps"]:
        found, kind = await asyncio.to_thread(views.ticket_timeline, service.store, id), "ticket"
    if not found["steps"]:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Neither a consultation nor a ticket.")
    return {"kind": kind, **found}


@router.get("/views")
async def who_looked(service: Service, staff: Dpo, consultation_id: UUID | None = None,
                     limit: int = Query(100, ge=1, le=MAX_PAGE)) -> list[dict[str, Any]]:
    """Who looked, the newest first: every recorded read of the log by a DPO
    (``AuditViewed``) and of a consultation by a staff member (``ConsultationViewed``);
    with ``consultation_id``, only those of that consultation."""
    await _seen(service, staff, "views",
                "" if consultation_id is None else f"of_consultation={consultation_id}")
    return await asyncio.to_thread(views.who_looked, service.store, consultation_id, limit)


@router.get("/records")
async def records(service: Service, staff: Dpo, start: int = Query(0, ge=0),
                  limit: int = Query(100, ge=1, le=MAX_PAGE)) -> list[dict[str, Any]]:
    await _seen(service, staff, "records", f"start={start};limit={limit}")
    rows = await asyncio.to_thread(service.store.records, start, start + limit)
    return [{"index": index, "leaf_hash": b64encode(leaf),
             "record": None if data is None else json.loads(data)}
            for index, data, leaf in rows]


@router.get("/records/{index}/proof", response_class=PlainTextResponse)
async def record_proof(index: int, service: Service, staff: Dpo) -> PlainTextResponse:
    """The record with its inclusion proof and checkpoint (C2SP tlog-proof), checkable alone."""
    await _seen(service, staff, "proof", f"index={index}")
    return PlainTextResponse(await asyncio.to_thread(_bundle, service, index))


def _bundle(service: AuditService, index: int) -> str:
    service.checkpointer.sign_if_grown()
    latest = service.checkpointer.latest()
    rows = service.store.records(index, index + 1)
    if latest is None or not rows or rows[0][1] is None or index >= latest.size:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such record (or not yet signed).")
    return build_bundle(service.store.tree(latest.size), index, latest.note, rows[0][1]).encode()


@router.get("/export", response_class=StreamingResponse, responses={
    200: {"description": "JSON Lines", "content": {"application/x-ndjson": {}}}})
async def export(service: Service, staff: Dpo, start: int = Query(0, ge=0),
                 end: int | None = Query(None, ge=0), proofs: bool = False,
                 consistency_from: int | None = Query(None, ge=0)) -> StreamingResponse:
    """JSON Lines: records, leaf hashes and the signed checkpoints covering them; with
    ``consistency_from``, the consistency proof from that tree size (a kept checkpoint's)."""
    plan = await asyncio.to_thread(plan_export, service.store, service.checkpointer,
                                   start, end, consistency_from)
    await _seen(service, staff, "export", f"start={plan.start};end={plan.end};proofs={proofs}"
                + ("" if consistency_from is None else f";consistency_from={consistency_from}"))
    lines = export_lines(service.store, service.checkpointer, plan, proofs)

    async def stream() -> AsyncIterator[bytes]:
        while True:
            block = await asyncio.to_thread(_take, lines, 2048)
            if not block:
                return
            yield block

    filename = f"audit-{plan.start}-{plan.end}.jsonl"
    return StreamingResponse(stream(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _take(lines: Any, count: int) -> bytes:
    out = []
    for line in lines:
        out.append(line)
        if len(out) >= count:
            break
    return b"".join(out)


@router.get("/verify")
async def verify(service: Service, staff: Dpo) -> dict[str, Any]:
    """Recompute the stored log and check every signed checkpoint; names the first failure."""
    await _seen(service, staff, "verify", "")
    report = await asyncio.to_thread(verify_stored, service.store, service.checkpointer.verifier)
    if not report.ok:
        service.checkpointer.broken = f"the stored log fails verification: {report.failure}"
    return report.as_dict()
