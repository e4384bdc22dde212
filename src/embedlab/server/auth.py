"""Bearer-token authentication for every route except ``/health`` and the static dashboard page.

The dashboard page (``GET /``) holds no data; it asks for the key and sends it on its API calls.
"""

from __future__ import annotations

import hmac

from embedlab.errors import AuthenticationError
from embedlab.server.errors import error_response
from embedlab.server.metrics import ASGIApp, Receive, Scope, Send

OPEN_ROUTES = frozenset({("GET", "/health"), ("HEAD", "/health"), ("GET", "/"), ("HEAD", "/")})


class BearerAuthMiddleware:
    """Pure ASGI middleware: 401 unless ``Authorization: Bearer <api_key>`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.app = app
        self._expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope.get("method", "GET"), scope.get("path", "")) in OPEN_ROUTES:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                given = bytes(value)
                break
        if hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        reason = "no API key given" if not given else "the API key is not valid"
        error = AuthenticationError(f"{reason}; send the header 'Authorization: Bearer <key>'")
        await error_response(error)(scope, receive, send)
