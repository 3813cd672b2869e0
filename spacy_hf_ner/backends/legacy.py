"""The old form of a component's backend, still read: `backend` as a name
("torch", "onnx" or a registered name) with the component keys `onnx_file`
and `dtype`, as the configs and pipelines written before the backend became a
block have them. Each becomes the block it stands for, with warning W007
showing that block; the component's settings never see the old keys. (The
factories still take them, as null by default, so spaCy's config check lets an
old config through; a new pipeline's config shows them as null.)
"""
import json
import warnings
from typing import Any, Dict, Optional

from ..errors import Errors, HFNerWarning, SpacyHFNerError, Warnings
from . import ALIASES, ONNX, TORCH
from .registry import registry

# the component keys that belonged to a backend
LEGACY_KEYS = ("onnx_file", "dtype")


def upgrade_backend(name: str, settings: Dict[str, Any]) -> Dict[str, Any]:
    """`settings` with an old-form backend made into its block's loader (W007);
    new-form settings come back as they are.

    RAISES (SpacyHFNerError): E031 for an old key next to a backend block,
        E020 for an unknown name, E021 for a key the named backend does not take.
    """
    old = {key: settings[key] for key in LEGACY_KEYS if settings.get(key) is not None}
    backend = settings.get("backend")
    if not old and not isinstance(backend, str):
        return {k: v for k, v in settings.items() if k not in LEGACY_KEYS}
    if not isinstance(backend, str):
        raise SpacyHFNerError(_mixed(name, backend, old))
    block = legacy_block(name, backend, old.get("onnx_file"), old.get("dtype"))
    keys = ["backend", *old]
    shown = "\n".join([f"[components.{name}.backend]", *(f"{k} = {json.dumps(v)}" for k, v in block.items())])
    warnings.warn(
        Warnings.W007.format(
            name=name, s="s" if len(keys) > 1 else "", keys=", ".join(f"`{k}`" for k in keys),
            is_are="are" if len(keys) > 1 else "is", block=shown,
        ),
        HFNerWarning,
    )
    args = {k: v for k, v in block.items() if k != "@hf_backends"}
    upgraded = {k: v for k, v in settings.items() if k not in LEGACY_KEYS}
    upgraded["backend"] = registry.get(block["@hf_backends"])(**args)
    return upgraded


def legacy_block(name: str, backend: str, onnx_file: Optional[str], dtype: Optional[str]) -> Dict[str, Any]:
    """The block (`{"@hf_backends": ..., **arguments}`) that `backend` =
    `backend` with these `onnx_file` and `dtype` stand for."""
    key = ALIASES.get(backend, backend)
    if key not in registry:
        available = ", ".join(repr(n) for n in [*ALIASES, *sorted(registry.get_all())])
        raise SpacyHFNerError(Errors.E020.format(name=name, backend=backend, available=available))
    if key == TORCH and onnx_file is None:
        return {"@hf_backends": TORCH, "dtype": dtype or "float32"}
    if key == ONNX and dtype in (None, "float32"):
        return {"@hf_backends": ONNX, "file": onnx_file}
    if onnx_file is not None:
        raise SpacyHFNerError(
            Errors.E021.format(
                name=name, key="onnx_file", value=onnx_file, applies="backend 'onnx' only",
                fix="set `backend` = 'onnx' to run that file, or `onnx_file` = null",
            )
        )
    if dtype not in (None, "float32"):
        raise SpacyHFNerError(
            Errors.E021.format(
                name=name, key="dtype", value=dtype,
                applies="the torch backend only (an ONNX graph has its own precision)",
                fix="keep `dtype` = 'float32' and pick a lower-precision export with "
                "`onnx_file`, e.g. 'onnx/model_int8.onnx' or 'onnx/model_fp16.onnx'",
            )
        )
    return {"@hf_backends": key}


def _mixed(name: str, backend: Any, old: Dict[str, Any]) -> str:
    """E031: old keys next to a backend block."""
    where = {"dtype": ' (the torch backend\'s `dtype`)', "onnx_file": " (the onnx backend's `file`)"}
    return Errors.E031.format(
        name=name, s="s" if len(old) > 1 else "", keys=", ".join(f"`{k}`" for k in old),
        verb="" if len(old) > 1 else "s", backend=getattr(backend, "name", type(backend).__name__),
        them="them" if len(old) > 1 else "it", where="".join(where[k] for k in old),
    )
