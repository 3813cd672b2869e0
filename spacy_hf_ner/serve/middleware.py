"""ASGI middleware of the server (no web framework needed)."""
import json
from typing import Any, Callable, Dict, Iterable, Tuple

from .config import host_allowed


class BodyLimit:
    """ASGI middleware: 413 for request bodies over `max_bytes`, by the
    Content-Length header or while reading a chunked body (the body is read here,
    at most `max_bytes` of it, and handed to the app as one message)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body is larger than the server's limit of {self.max_bytes} bytes (--max-body-bytes)"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.max_bytes
            except ValueError:
                await _send_error(send, 400, "the Content-Length header is not a number")
                return
            if too_large:
                await _send_error(send, 413, message)
                return
        body = bytearray()
        more = True
        while more:
            event = await receive()
            if event["type"] != "http.request":  # the client went away
                return
            body += event.get("body", b"")
            more = event.get("more_body", False)
            if len(body) > self.max_bytes:
                await _send_error(send, 413, message)
                return
        replayed = False

        async def replay() -> Dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class HostCheck:
    """ASGI middleware: 400 for a Host header not in `allowed` (a defence
    against DNS rebinding: a page on another origin that resolves its own name
    to this server's address still sends its own name as Host)."""

    def __init__(self, app: Any, allowed: Tuple[str, ...]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket") or "*" in self.allowed:
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        if host_allowed(host, self.allowed):
            await self.app(scope, receive, send)
            return
        await _send_error(
            send,
            400,
            f"the Host header {host!r} is not one of this server's names ({', '.join(self.allowed)}). "
            "Fix: reach the server by one of them, or add the name with --allowed-hosts",
        )


# the page (`/`) sets its own Content-Security-Policy; the interactive API docs
# load their scripts from a CDN and get none
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
NO_CSP = ("/docs", "/redoc", "/docs/oauth2-redirect")


class SecurityHeaders:
    """ASGI middleware: every response gets X-Content-Type-Options: nosniff,
    X-Frame-Options: DENY and Referrer-Policy: no-referrer, and a
    Content-Security-Policy that allows nothing (`DEFAULT_CSP`) unless the
    route set its own (the page) or serves the API docs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = scope.get("path") not in NO_CSP

        async def send_with_headers(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_security_headers(message.get("headers") or [], csp)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with_security_headers(headers: Iterable[Tuple[bytes, bytes]], csp: bool) -> list:
    headers = list(headers)
    present = {name.lower() for name, _ in headers}
    extra = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if csp:
        extra.append((b"content-security-policy", DEFAULT_CSP.encode()))
    return headers + [(name, value) for name, value in extra if name not in present]


async def _send_error(send: Callable, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
