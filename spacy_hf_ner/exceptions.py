"""The package's exception and warning classes (re-exported by `errors.py`,
which holds the messages): every coded error is a `SpacyHFNerError`, every
warning an `HFNerWarning`. No imports beyond the standard library."""
import re
from typing import Any, Optional

_CODE = re.compile(r"^\[([EW]\d{3})\]")


class WithCodes(type):
    """Class attributes named like a code read as "[CODE] message"."""

    def __getattribute__(cls, code: str) -> Any:
        message = super().__getattribute__(code)
        if code.startswith("__") or not isinstance(message, str):
            return message
        return f"[{code}] {message}"


class SpacyHFNerError(ValueError):
    """An error of spacy-hf-ner: its message starts with its code ("[E009] ..."),
    names the component and key at fault, and shows the fix.

    message (str): a message of `Errors`, e.g. `Errors.E001.format(...)`.
    code (Optional[str]): the code; default: the one the message starts with
        ("" for a message without one, e.g. a worker's error passed on).
    """

    code: str

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        if code is None:
            found = _CODE.match(message)
            code = found.group(1) if found else ""
        self.code = code


class SpacyHFNerImportError(SpacyHFNerError, ImportError):
    """A coded error for an optional dependency that is not installed."""


class SpacyHFNerRuntimeError(SpacyHFNerError, RuntimeError):
    """A coded error of a run that failed (e.g. workers that kept crashing)."""


class SpacyHFNerTimeoutError(SpacyHFNerError, TimeoutError):
    """A coded error of a run that stopped instead of hanging."""


class SpacyHFNerFileExistsError(SpacyHFNerError, FileExistsError):
    """A coded error for an output that is already there."""


class HFNerWarning(UserWarning):
    """Warnings of spacy-hf-ner (the package's own category); filter them with
    `warnings.filterwarnings("ignore", category=HFNerWarning)`, or one of them
    by its code: `warnings.filterwarnings("ignore", message=r"\\[W005\\]")`."""
