"""What `export-onnx` exports, and how: its options, checked once
(`ExportOptions`, E162 naming the flag), and the model behind a model
directory, hub id, bundled model or saved pipeline (`resolve_source`, E163),
with the kind of component that runs it."""
import argparse
from pathlib import Path
from typing import Any, Literal, NamedTuple, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import Errors, SpacyHFNerError
from ..kinds import ComponentKind, bare_kind, kind_of
from ..sources import resolve_model, task_of
from ..ty import Int8Mode
from . import ALIASES, TORCH
from .quantize import INT8_MODE

OPSET = 17  # `--opset`
CHECK_TEXTS = 300  # `--check-texts`
MAX_DISAGREEMENT = 0.02  # `--max-disagreement`


class ExportOptions(BaseModel):
    """The command's options, checked once (E162 names the flag)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str
    output: Path
    quantize: Optional[Literal["int8"]] = None
    int8_mode: Int8Mode = INT8_MODE
    component: Optional[str] = None
    opset: int = Field(OPSET, ge=7)
    atol: float = Field(1e-3, gt=0)
    check_texts: int = Field(CHECK_TEXTS, ge=1)
    max_disagreement: float = Field(MAX_DISAGREEMENT, ge=0.0, le=1.0)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ExportOptions":
        values = {key: getattr(args, key) for key in cls.model_fields if hasattr(args, key)}
        try:
            return cls(**values)
        except ValidationError as e:
            error = e.errors()[0]
            key = str(error["loc"][0])
            raise SpacyHFNerError(
                Errors.E162.format(
                    key=key, flag=key.replace("_", "-"), value=values.get(key),
                    problem=f"is not allowed ({error['msg'].rstrip('.')})", fix=_OPTION_FIXES.get(key, "see --help"),
                )
            ) from None


_OPTION_FIXES = {
    "check_texts": "give at least 1 text",
    "max_disagreement": "give a share between 0 and 1, e.g. 0.02",
    "atol": "give a positive difference, e.g. 1e-3",
    "opset": f"give an ONNX opset of 7 or more, e.g. {OPSET}",
}


class Source(NamedTuple):
    """What to export: a transformers model (directory or hub id), the kind of
    component that runs it and the language the check tokenizes with."""

    model: str
    kind: ComponentKind
    lang: str = "en"

    @property
    def task(self) -> str:
        return self.kind.task

    @property
    def factory(self) -> str:
        return self.kind.factory


def resolve_source(model_or_pipeline: str, component: Optional[str] = None) -> Source:
    """The transformers model behind a model directory, hub id, bundled model or
    saved spaCy pipeline."""
    path = Path(model_or_pipeline).expanduser()
    if (path / "config.cfg").is_file():
        return _pipeline_source(path, component)
    if component is not None:
        raise SpacyHFNerError(
            Errors.E163.format(
                path=model_or_pipeline, problem="is not a saved spaCy pipeline, so `--component` does not apply",
                fix="leave out --component, or give a pipeline folder (with config.cfg)",
            )
        )
    from transformers import AutoConfig

    model = resolve_model(model_or_pipeline, "export_onnx")
    architectures = getattr(AutoConfig.from_pretrained(model), "architectures", None) or []
    task = task_of(architectures)
    if task is not None:
        return Source(model, bare_kind(task))
    raise SpacyHFNerError(
        Errors.E163.format(
            path=model_or_pipeline, problem=f"is a {'/'.join(architectures) or 'model of unknown architecture'}, "
            "not a *ForTokenClassification or *ForSequenceClassification model",
            fix="export a token or sequence classifier",
        )
    )


def _pipeline_source(path: Path, component: Optional[str]) -> Source:
    from spacy.util import load_config

    config = load_config(path / "config.cfg", interpolate=False)
    components = config.get("components", {})
    ours = {n: c for n, c in components.items() if kind_of(c.get("factory")) is not None}
    if component is not None and component not in ours:
        fix = f"give one of: {', '.join(ours)}" if ours else "export a pipeline with an hf_* component"
        raise SpacyHFNerError(
            Errors.E162.format(
                key="component", flag="component", value=component, problem="is not an hf_* component of the pipeline", fix=fix
            )
        )
    if component is not None:
        ours = {component: ours[component]}
    if len(ours) != 1:
        raise SpacyHFNerError(
            Errors.E163.format(
                path=path, problem=f"has {len(ours)} hf_* components ({', '.join(ours) or 'none'})",
                fix="pick one with --component NAME" if ours else "export a pipeline with an hf_* component",
            )
        )
    (name, cfg), = ours.items()
    backend = backend_name(cfg.get("backend"))
    if backend != TORCH:
        raise SpacyHFNerError(
            Errors.E163.format(
                path=path, problem=f"runs component '{name}' with backend '{backend}'",
                fix=f"export the pipeline whose component runs the torch backend ('{TORCH}')",
            )
        )
    model_dir = path / name / "model"
    if not (model_dir / "config.json").is_file():
        raise SpacyHFNerError(
            Errors.E163.format(
                path=model_dir, problem="holds no saved model (config.json)", fix="save the pipeline with nlp.to_disk"
            )
        )
    return Source(str(model_dir), kind_of(cfg["factory"]), config["nlp"].get("lang") or "en")  # type: ignore[arg-type]


def backend_name(backend: Any) -> str:
    """The registered name of a saved component's `backend` (a block, or an
    old-form name)."""
    if isinstance(backend, dict):
        return str(backend.get("@hf_backends"))
    return ALIASES.get(backend or "torch", str(backend))
