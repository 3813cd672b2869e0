"""The server's limits and batching settings, validated once by a pydantic
model with coded errors (no web framework imported, so the command line can
show its defaults without the `serve` extra)."""
import ipaddress
import warnings
from typing import Any, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import Errors, HFNerWarning, SpacyHFNerError, Warnings

# the names a browser uses for a server bound to a loopback address
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class _Checked(BaseModel):
    """A settings model whose values are checked once, with coded errors: E123
    names the flag (the key with dashes) of a value out of range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            error = e.errors()[0]
            key, why = str(error["loc"][0]), error["msg"].replace("Input should be", "should be").rstrip(".")
            raise SpacyHFNerError(Errors.E123.format(flag=key.replace("_", "-"), value=values.get(key), why=why)) from None


class BatchLimits(_Checked):
    """How requests are batched into model calls (what `Batcher` reads).

    max_batch: texts per batched model call (1 runs every text on its own).
    max_batch_tokens: model tokens per batched call; a large request is split
        over calls at this size, and other requests share each of them. None:
        no token budget (calls are cut by `max_batch` alone).
    max_wait_ms: how long the worker waits for more requests after the first.
    max_queue: requests waiting for the model; more are refused with 503.
    """

    max_batch: int = Field(32, ge=1)
    max_batch_tokens: Optional[int] = Field(1024, ge=1)
    max_wait_ms: float = Field(5.0, ge=0)
    max_queue: int = Field(1024, ge=1)


class ServeConfig(BatchLimits):
    """Limits and batching of the server: the batching keys of `BatchLimits`,
    and these.

    max_inputs: texts in one request; more are refused with 422.
    max_windows_per_request: model windows one request may need (every
        model's windows of every input, overlaps included); more: 413.
    max_windows_per_input: model windows one input may need; more: 413. One
        input runs in one model call, so this bounds how long another request
        can wait behind it.
    max_stride: the largest `parameters.stride` a request may ask for; None:
        half the model's window. Larger: 422.
    max_body_bytes: request body size; larger bodies are refused with 413.
    timeout_s: a request not answered within it gets 504, and what is left
        of its work is dropped.
    read_timeout_s: a connection whose request (line, headers and body) has
        not arrived this long after it opened (or after the previous response)
        is closed: slow clients cannot hold connections.
    keep_alive_s: an idle keep-alive connection is closed after it.
    max_header_bytes: the largest request line and headers buffered.
    limit_concurrency: open connections (and requests in progress); more get 503.
    allowed_hosts: the names the Host header may carry (port ignored; "*"
        allows any, "*.example.com" its subdomains); others get 400, a defence
        against DNS rebinding. None: the loopback names (see `allowed_hosts_for`
        for the defaults `serve` derives from the bind address).
    """

    max_inputs: int = Field(64, ge=1)
    max_windows_per_request: int = Field(64, ge=1)
    max_windows_per_input: int = Field(8, ge=1)
    max_stride: Optional[int] = Field(None, ge=0)
    max_body_bytes: int = Field(1_000_000, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    read_timeout_s: float = Field(10.0, gt=0)
    keep_alive_s: float = Field(5.0, gt=0)
    max_header_bytes: int = Field(16_384, ge=1024)
    limit_concurrency: int = Field(1000, ge=1)
    allowed_hosts: Optional[Tuple[str, ...]] = None

    def __init__(self, **values: Any) -> None:
        """Check every value once: E123 names the flag of one out of range,
        E120 an `allowed_hosts` that names no host."""
        hosts = values.get("allowed_hosts")
        if hosts is not None:
            values["allowed_hosts"] = tuple(h.strip().lower() for h in hosts if h.strip())
            if not values["allowed_hosts"]:
                raise SpacyHFNerError(Errors.E120.format(value=",".join(hosts)))
        super().__init__(**values)

    @property
    def hosts(self) -> Tuple[str, ...]:
        """The allowed Host names (the loopback names unless configured)."""
        return self.allowed_hosts if self.allowed_hosts is not None else LOOPBACK_HOSTS


def allowed_hosts_for(bind: str, given: Optional[str]) -> Tuple[str, ...]:
    """The Host names a server bound to `bind` accepts: `given` (a
    comma-separated list, from --allowed-hosts) when set; else the loopback
    names for a loopback address, the address (or name) itself for another
    one, and any host, with warning W120, for a wildcard address (0.0.0.0,
    ::), whose names the server cannot know.
    """
    if given is not None:
        return tuple(h.strip() for h in given.split(","))
    name = bind.strip("[]")
    if name == "localhost":
        return LOOPBACK_HOSTS
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return (name,)
    if address.is_loopback:
        return LOOPBACK_HOSTS
    if address.is_unspecified:
        warnings.warn(Warnings.W120.format(bind=bind), HFNerWarning)
        return ("*",)
    return (f"[{name}]" if address.version == 6 else name,)


def host_allowed(host: str, allowed: Tuple[str, ...]) -> bool:
    """Whether a Host header value (with or without a port) is allowed."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        name = host[: host.find("]") + 1] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if not name:
        return False
    for pattern in allowed:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False

