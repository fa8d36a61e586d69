"""Bounded request reads for the HTTP services: a client that stalls mid-request is cut off.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) but not a request in progress: a
client that sends half a request head, or a body slower than it promised, holds a connection and
its buffers for ever. This protocol (uvicorn's httptools protocol plus two timers) gives a request
`HTTP_HEADER_TIMEOUT_SECONDS` from its first byte (or from the connection's opening) to the end of
its head, and `HTTP_BODY_TIMEOUT_SECONDS` from there to the last byte of its body. When a timer
fires, the client gets a 408 if no response has started, and the connection is closed; the
application sees a disconnect. Responses (an SSE stream, say) are not bounded by these timers.

Use it with `uvicorn.run(..., http=PROTOCOL)`: uvicorn imports it by name in every worker.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROTOCOL = "services.infra.http_timeouts:DeadlineHttpToolsProtocol"

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/problem+json\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)
_PROBLEM = (
    b'{"type":"about:blank","title":"Request timeout","status":408,'
    b'"detail":"the request was not received in time; the connection is closed"}'
)


class HttpTimeouts(BaseSettings):
    """From the environment, like every setting of the services (both HTTP services read these)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    # A request head is a few hundred bytes: 10 s is generous even on a poor link.
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    # The largest body the intake takes is 1 MiB: 30 s allows about 35 kB/s.
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)


@cache
def _timeouts() -> HttpTimeouts:
    return HttpTimeouts()


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on reading each request (head, then body)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(seconds, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(_timeouts().http_header_timeout_seconds)  # a new connection must send a request

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(_timeouts().http_header_timeout_seconds)

    def on_headers_complete(self) -> None:
        self._arm(_timeouts().http_body_timeout_seconds)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle until the next request: uvicorn's keep-alive timeout applies, not ours.

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(_REQUEST_TIMEOUT % (len(_PROBLEM), _PROBLEM))
        if cycle is not None:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
