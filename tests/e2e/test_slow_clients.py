"""Slow clients: a request head or body that stalls is cut off after a bounded time (both HTTP services).

The services run as processes with one-second read timeouts; raw sockets play the slow clients.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.subprocesses import ServiceSet

pytestmark = pytest.mark.e2e

TIMEOUT_SECONDS = 1.0
# How long a test waits for the server to act: the timeout plus a margin for a busy machine.
PATIENCE_SECONDS = 10.0


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    stack = ServiceSet(Path(tmp_path_factory.mktemp("slow-clients")))
    timeouts = {"HTTP_HEADER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS), "HTTP_BODY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)}
    try:
        stack.start("aggregator", "aggregator")  # creates the schema the reporting service reads
        stack.start("intake", "intake", **timeouts)
        stack.start("reporting", "reporting", **timeouts, REPORTING_WORKERS="1")
        yield stack
    finally:
        stack.stop_all()


def _connect(stack: ServiceSet, name: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", stack.ports[name]), timeout=PATIENCE_SECONDS)
    return sock


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    received = b""
    while True:
        chunk = sock.recv(65536)  # the socket's timeout bounds each wait
        if not chunk:
            return received, time.monotonic() - started
        received += chunk


@pytest.mark.parametrize("name", ["intake", "reporting"])
def test_a_connection_that_sends_nothing_is_closed(services: ServiceSet, name: str) -> None:
    with _connect(services, name) as sock:
        received, waited = _read_until_closed(sock)
    assert waited < PATIENCE_SECONDS
    assert received == b"" or received.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize("name", ["intake", "reporting"])
def test_a_stalled_request_head_gets_408_and_is_closed(services: ServiceSet, name: str) -> None:
    with _connect(services, name) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        received, waited = _read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408")
    assert b"application/problem+json" in received
    assert TIMEOUT_SECONDS * 0.5 < waited < PATIENCE_SECONDS


def test_a_stalled_request_body_gets_408_and_is_closed(services: ServiceSet) -> None:
    with _connect(services, "intake") as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-intake-token\r\n"
            b"Content-Type: application/cloudevents-batch+json\r\nContent-Length: 1000\r\n\r\n[{"
        )
        received, waited = _read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408")
    assert waited < PATIENCE_SECONDS


def _read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head


@pytest.mark.parametrize("name", ["intake", "reporting"])
def test_prompt_requests_are_served_on_a_kept_alive_connection(services: ServiceSet, name: str) -> None:
    with _connect(services, name) as sock:
        for _ in range(2):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200")


def test_a_live_stream_outlasts_the_read_timeouts(services: ServiceSet) -> None:
    """The timers bound reading a request, never the response: an SSE stream stays open."""
    with _connect(services, "reporting") as sock:
        sock.sendall(b"GET /v1/stream?unit=my-hao&access_token=dev-read-token HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        sock.settimeout(3 * TIMEOUT_SECONDS)
        try:
            more = sock.recv(65536)
        except TimeoutError:
            more = None  # nothing new to send, and the connection is still open
        assert more != b""  # b"" would mean the server closed it
