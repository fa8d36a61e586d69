"""Server-Sent Events: the message framing and the text/event-stream answer of GET /v1/stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

import anyio
from fastapi import Response
from starlette.types import Receive, Scope, Send

SSE_HEARTBEAT = b": keep-alive\n\n"


def sse_message(event: str, data: bytes, event_id: str) -> bytes:
    """One Server-Sent Events message; `data` must be a single line (compact JSON is)."""
    return b"id: " + event_id.encode() + b"\nevent: " + event.encode() + b"\ndata: " + data + b"\n\n"


def sse_retry(milliseconds: int) -> bytes:
    """Tells EventSource how long to wait before reconnecting."""
    return f"retry: {milliseconds}\n\n".encode()


class EventStreamResponse(Response):
    """text/event-stream from an async iterator; gives the stream slot back however the stream ends.

    The stream stops when the client disconnects (noticed through `receive`, not only on the next
    write), when the iterator ends (shutdown), or on error.
    """

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncGenerator[bytes, None], release: Callable[[], None]) -> None:
        # Like StreamingResponse: no body attribute, so no Content-Length (chunked transfer).
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"})
        self._chunks = chunks
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(watch_disconnect)
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                async for chunk in self._chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        except OSError:
            pass  # the client went away while we were writing
        finally:
            await self._chunks.aclose()
            self._release()
