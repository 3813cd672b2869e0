"""The server's limits and batching settings (no web framework imported, so the
command line can show its defaults without the `serve` extra)."""
from dataclasses import dataclass


@dataclass
class ServeConfig:
    """Limits and batching of the server.

    max_batch: texts per batched model call (a request is never split; 1 runs
        every request on its own).
    max_wait_ms: how long the worker waits for more requests after the first.
    max_queue: requests waiting for the model; more are refused with 503.
    max_inputs: texts in one request; more are refused with 422.
    max_body_bytes: request body size; larger bodies are refused with 413.
    timeout_s: a request not answered within it gets 504.
    """

    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 1024
    max_inputs: int = 64
    max_body_bytes: int = 1_000_000
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for key, ok in (
            ("max_batch", self.max_batch >= 1),
            ("max_wait_ms", self.max_wait_ms >= 0),
            ("max_queue", self.max_queue >= 1),
            ("max_inputs", self.max_inputs >= 1),
            ("max_body_bytes", self.max_body_bytes >= 1),
            ("timeout_s", self.timeout_s > 0),
        ):
            if not ok:
                raise ValueError(f"serve: `{key}` = {getattr(self, key)!r} is out of range; use a positive value")
