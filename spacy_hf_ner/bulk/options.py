"""The options of an annotation job, written once: `AnnotateOptions` is what
`spacy_hf_ner.annotate(...)` takes as keywords and what `spacy-hf-ner
annotate` builds from its flags (`add_arguments` makes the flags from the
fields). Each value is checked here, once, with a coded error (E111) that
names the key and the flag.
"""
import argparse
import difflib
from pathlib import Path
from typing import Any, Dict, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import Errors, SpacyHFNerError
from ..ty import Engine
from . import DEFAULT_PIPELINE
PathLike = Union[str, Path]
# fields that are not flags of the command line (Python only) or not `--key`
NOT_FLAGS = ("input", "output", "ray_init", "progress", "resume")


class AnnotateOptions(BaseModel):
    """Everything a job needs, validated.

    input (str): .jsonl, .parquet, .csv, or a folder of .txt files (the Ray
        engine also reads a folder of .jsonl/.parquet files, on any filesystem
        pyarrow or fsspec opens: s3://..., gs://...).
    output (str): .parquet or .jsonl.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str
    output: str
    pipeline: str = Field(
        DEFAULT_PIPELINE,
        description="spaCy pipeline folder or package, or a transformers classifier; at the same path, "
        "or installed, on every worker",
    )
    engine: Engine = Field("local", description="where to run")
    workers: Optional[int] = Field(
        None, ge=1, description="local: processes (default 1); ray: actors (default one per GPU, else as many as the CPUs hold)"
    )
    cpus_per_worker: float = Field(1.0, gt=0, description="ray: CPUs each actor reserves")
    gpus_per_worker: Optional[float] = Field(
        None, ge=0, description="ray: GPUs each actor reserves, fractions share a GPU (default: 1 on a cluster with GPUs, else 0)"
    )
    batch_size: int = Field(64, ge=1, description="documents per batch (the unit of work and of fallback)")
    resume: bool = Field(False, description="keep what an earlier (killed) run wrote and annotate only the rest")
    text_key: str = Field("text", description="input column with the text")
    id_key: Optional[str] = Field(
        None, description="input column with the ids (default: 'id' if present, else the record number; '' for the record number)"
    )
    code: Optional[str] = Field(None, description="Python file to import first in every worker (custom components)")
    max_retries: int = Field(3, ge=0, description="restarts of crashed workers (and retries of their batch)")
    stall_timeout: float = Field(600.0, gt=0, description="seconds without a finished batch before the job stops (E108)")
    checkpoint_every: int = Field(10_000, ge=1, description="documents per written part (what a killed run loses at most)")
    flat: Optional[str] = Field(None, description="also write one row per entity here (.parquet or .jsonl)")
    progress: bool = Field(True, description="show progress")
    ray_address: Optional[str] = Field(None, description="ray: the cluster, e.g. 'auto' (default: start Ray on this machine)")
    ray_init: Optional[Dict[str, Any]] = Field(None, description="more `ray.init` arguments (Python only)")

    @classmethod
    def build(cls, **values: Any) -> "AnnotateOptions":
        """Validate `values` (paths may be `Path`s); E111 on the first bad one."""
        for key in ("input", "output", "flat"):
            if isinstance(values.get(key), Path):
                values[key] = str(values[key])
        try:
            return cls(**values)
        except ValidationError as e:
            raise _coded(e) from None


def _coded(error: ValidationError) -> SpacyHFNerError:
    """The first problem of a ValidationError as E111 (key, flag, the fix)."""
    first = error.errors()[0]
    key = str(first["loc"][0]) if first["loc"] else "?"
    flag = key.replace("_", "-")
    kind, ctx = first["type"], first.get("ctx") or {}
    value = first.get("input")
    if kind == "extra_forbidden":
        near = difflib.get_close_matches(key, list(AnnotateOptions.model_fields), n=1)
        problem, fix = "is not an option", f"use `{near[0]}`" if near else "see `spacy-hf-ner annotate --help`"
    elif kind == "greater_than_equal":
        problem, fix = f"must be at least {ctx['ge']:g}", f"give --{flag} {ctx['ge']:g} or more"
    elif kind == "greater_than":
        problem, fix = "must be positive" if ctx["gt"] == 0 else f"must be more than {ctx['gt']:g}", f"give --{flag} > {ctx['gt']:g}"
    elif kind == "literal_error":
        problem, fix = "is not a choice", f"use {ctx.get('expected')}"
    else:
        problem, fix = f"is not valid ({first['msg']})", f"see `spacy-hf-ner annotate --help` for --{flag}"
    return SpacyHFNerError(Errors.E111.format(key=key, flag=flag, value=value, problem=problem, fix=fix))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command line's flags, one per field (the defaults stay in the model:
    a flag left out is not passed)."""
    fields = AnnotateOptions.model_fields
    parser.add_argument("input", metavar="INPUT", help="corpus: .jsonl, .parquet, .csv, or a folder of .txt files")
    parser.add_argument("output", metavar="OUTPUT", help="annotations, one row per document: .parquet or .jsonl")
    for key, field in fields.items():
        if key in NOT_FLAGS:
            continue
        kind = _scalar(field.annotation)
        extra: Dict[str, Any] = {"choices": list(getattr(field.annotation, "__args__", ()))} if key == "engine" else {}
        default = "" if field.default is None else f" (default: {field.default})"
        parser.add_argument(
            f"--{key.replace('_', '-')}", dest=key, type=kind, default=argparse.SUPPRESS,
            help=f"{field.description}{default}", **extra,
        )
    parser.add_argument("--resume", dest="resume", action="store_true", default=argparse.SUPPRESS, help=fields["resume"].description)
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS, help="no progress bar")


def from_arguments(args: argparse.Namespace) -> AnnotateOptions:
    """The options of a parsed command line."""
    values = {k: v for k, v in vars(args).items() if k in AnnotateOptions.model_fields}
    return AnnotateOptions.build(**values)


def _scalar(annotation: Any) -> Any:
    """The argparse type of a field: the int/float inside an Optional, else str
    (pydantic converts and checks)."""
    args = getattr(annotation, "__args__", (annotation,))
    for kind in (int, float):
        if kind in args or annotation is kind:
            return kind
    return str
