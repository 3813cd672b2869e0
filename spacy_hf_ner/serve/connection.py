"""The server's HTTP connections: uvicorn with every connection limit set.

uvicorn times out idle keep-alive connections but not a request that arrives
slowly: a client sending its headers or body at one byte a second (slowloris),
or a connection opened and left silent, is held for ever. `TimedH11Protocol`
is uvicorn's h11 protocol with a deadline for reading each request (request
line, headers and body), counted from the connection's start or the end of the
previous response; past it the connection is closed.
"""
import asyncio
from typing import Any, Optional

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import ServeConfig


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection whose request has not
    fully arrived `read_timeout` seconds after the connection opened or the
    previous response ended (see `timed_protocol`)."""

    read_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._read_deadline: Optional[asyncio.TimerHandle] = None
        self._arm_read_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_read_deadline()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._cancel_read_deadline()
        super().connection_lost(exc)

    def _arm_read_deadline(self) -> None:
        self._cancel_read_deadline()
        if not self.transport.is_closing():
            self._read_deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _cancel_read_deadline(self) -> None:
        deadline = getattr(self, "_read_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        # IDLE: the request line or headers are incomplete (or nothing came);
        # SEND_BODY: the body is; DONE: the request is in, the app answers it
        if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            if self.logger.isEnabledFor(10):
                self.logger.debug("closing a connection whose request did not arrive within %s s", self.read_timeout)
            self.transport.close()


def timed_protocol(read_timeout: float) -> type:
    """`TimedH11Protocol` with this read timeout (uvicorn builds the protocol
    itself, so the setting travels on the class)."""
    return type("TimedH11Protocol", (TimedH11Protocol,), {"read_timeout": float(read_timeout)})


def uvicorn_config(app: Any, *, host: str, port: int, config: ServeConfig, log_level: str = "info") -> uvicorn.Config:
    """uvicorn's settings for the server: the read deadline per request
    (`read_timeout_s`), the keep-alive timeout, the largest request head h11
    buffers (`max_header_bytes`), the connection limit (`limit_concurrency`,
    503 above), and a graceful shutdown that answers in-flight requests."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=timed_protocol(config.read_timeout_s),
        timeout_keep_alive=config.keep_alive_s,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=config.max_header_bytes,
        limit_concurrency=config.limit_concurrency,
        timeout_graceful_shutdown=int(max(1, config.timeout_s)),
    )
