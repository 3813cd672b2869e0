"""ASGI middleware of the server (no web framework needed)."""
import json
from typing import Any, Callable, Dict


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
