"""Security headers on every response of an HTTP service (pure ASGI middleware).

Every response gets `X-Content-Type-Options: nosniff` and a `Referrer-Policy`; every response gets a
Content-Security-Policy with `frame-ancestors 'none'` (no page of ours may be framed: clickjacking).
HTML pages get `HTML_POLICY` unless the route set a policy of its own (a page that needs a CDN or an
inline script hash, such as the OpenAPI page); other responses get `NON_HTML_POLICY`, which lets a
browser run nothing from them.
"""

from __future__ import annotations

import base64
import hashlib

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTML_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
NON_HTML_POLICY = "default-src 'none'; frame-ancestors 'none'"
REFERRER_POLICY = "no-referrer"


def script_hash(script: str) -> str:
    """The CSP source expression that allows exactly this inline script."""
    digest = hashlib.sha256(script.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, html_policy: str = HTML_POLICY) -> None:
        self.app = app
        self.html_policy = html_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                is_html = headers.get("content-type", "").lower().startswith("text/html")
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = self.html_policy if is_html else NON_HTML_POLICY
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", REFERRER_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)
