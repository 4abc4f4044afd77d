"""Server-sent events for the live views (a ticket's waiting room, staff's lines, a
department's appointments): one small generator per stream, nothing more — thousands of
citizens keep one open while they wait."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

# An OpenAPI ``responses`` entry for a route that answers with a stream.
SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}
}

Message = tuple[str, dict[str, Any]]  # (event name, data); "ping" becomes a comment


def event_stream(
    messages: AsyncIterator[Message], on_close: Callable[[], Awaitable[None]] | None = None
) -> StreamingResponse:
    """The messages as server-sent events. ``on_close`` runs when the response ends,
    however it ends (also when the client left before it began)."""

    async def encode() -> AsyncIterator[bytes]:
        async for name, data in messages:
            if name == "ping":
                yield b": ping\n\n"
            else:
                yield f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    return _EventStream(
        encode(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        on_close=on_close,
    )


class _EventStream(StreamingResponse):
    def __init__(
        self, *args: Any, on_close: Callable[[], Awaitable[None]] | None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.on_close is not None:
                with anyio.CancelScope(shield=True):  # a client gone cancels the response
                    await self.on_close()
