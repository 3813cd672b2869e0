"""The typed settings of the components: one definition per config key,
validated in one place.

Each component declares its keys once, as a pydantic model (`ModelSettings`
holds the keys all of them share). That one definition gives:

* the factory's signature, so spaCy's config validation (`nlp.add_pipe`,
  `spacy train`, `spacy debug config`) checks the same types;
* `validate`, which every construction goes through (the factory and direct
  `HFNer(vocab, ...)` alike), with ranges and cross-key rules, and errors
  that carry a code, name the key and show the fix.

Defaults live only in each factory's `default_config`; direct construction
takes them from there.
"""
import inspect
from typing import Annotated, Any, Callable, Dict, List, Optional, Sequence, Type, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from .errors import Errors, SpacyHFNerError
from .ty import BackendLoader

DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]

S = TypeVar("S", bound="ModelSettings")


class ModelSettings(BaseModel):
    """The keys every component shares: which model, and how it runs.

    model: hub id, local directory, or "spacy-hf-ner:NAME" (a model shipped in
        the package); for training, any encoder (it gets a new head).
    revision: hub revision (branch, tag or commit).
    stride: overlap between the windows of a long text, in model tokens; None:
        an eighth of the window; warns above half the window (the cost grows as
        window / (window - stride)).
    max_length: window length in model tokens; None: the model's own limit;
        checked against the model's position embeddings at load.
    batch_size: windows per forward pass. device: "auto" (CUDA, then MPS, then
        the CPU), "cpu", "cuda", "cuda:N" or "mps".
    backend: what runs the model, a block on the `hf_backends` registry with its
        own arguments (`backends/registry.py`: "spacy-hf-ner.torch.v1" with
        `dtype` and `learn_rate_scale`, "spacy-hf-ner.onnx.v1" with `file`).
    scorer: the scoring function.
    """

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True, protected_namespaces=())

    model: str
    revision: Optional[str]
    stride: Optional[Count]
    max_length: Optional[Positive]
    batch_size: Positive
    device: Annotated[str, Field(pattern=DEVICE_PATTERN)]
    backend: BackendLoader
    scorer: Optional[Callable]

    def check(self, name: str) -> None:
        """Rules between keys; raise a `SpacyHFNerError`. Components add theirs."""


# what to write instead, by pydantic's error type (the key's own fix first)
_FIXES = {
    "model": "give a hub id or a model folder; a training config takes it from a variable: "
    "pass `--paths.base_model NAME_OR_PATH` to `spacy train` / `spacy debug config`",
    "device": "use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'",
    "stride": "use null (an eighth of the window) or a count of model tokens >= 0",
    "max_length": "leave it null to use the model's limit, or give a window length in model tokens",
    "batch_size": "use a positive number, e.g. 64",
    "threshold": "use a score in [0, 1]",
    "top_k": "use null (all labels) or a count >= 1",
}


def _fix(key: str, error: ErrorDetails) -> str:
    if key in _FIXES:
        return _FIXES[key]
    ctx = error.get("ctx") or {}
    if error["type"] == "literal_error":
        return f"use one of {ctx.get('expected')}"
    if error["type"] == "extra_forbidden":
        return "remove it (see the component's documented keys)"
    return error["msg"].replace("Input should be", "give").rstrip(".")


def validate(cls: Type[S], name: str, values: Dict[str, Any]) -> S:
    """`values` as `cls`, checked: types and ranges, then the rules between
    keys (`check`). RAISES SpacyHFNerError: the first problem, coded (E009 for
    a key's own value)."""
    try:
        settings = cls(**values)
    except ValidationError as e:
        error = e.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else "?"
        if error["type"] == "missing":
            problem, fix = "is missing", "give it a value (see the component's documented keys)"
        elif values.get(key) is None:
            problem, fix = "is null (not set)", _fix(key, error)
        else:
            problem, fix = f"is not allowed ({error['msg'].rstrip('.')})", _fix(key, error)
        raise SpacyHFNerError(Errors.E009.format(name=name, key=key, value=values.get(key), problem=problem, fix=fix)) from None
    settings.check(name)
    return settings


def validate_keys(cls: Type[ModelSettings], name: str, **values: Any) -> Dict[str, Any]:
    """Some keys of `cls` on their own (e.g. the per-request parameters of the
    server), None meaning "not given". RETURNS: the given ones, checked."""
    given = {key: value for key, value in values.items() if value is not None}
    for key, value in given.items():
        field = cls.model_fields[key]
        annotation: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        try:
            TypeAdapter(annotation).validate_python(value, strict=True)
        except ValidationError as e:
            error = e.errors()[0]
            problem = f"is not allowed ({error['msg'].rstrip('.')})"
            raise SpacyHFNerError(Errors.E009.format(name=name, key=key, value=value, problem=problem, fix=_fix(key, error))) from None
    return given


def _plain(annotation: Any) -> Any:
    """An annotation without pydantic's `Annotated` constraints (what spaCy's
    config validation reads)."""
    if get_origin(annotation) is Annotated:
        return _plain(get_args(annotation)[0])
    if get_origin(annotation) is Union:
        return Union[tuple(_plain(a) for a in get_args(annotation))]
    return annotation


def factory_signature(
    cls: Type[ModelSettings], nlp_type: Any, *, accept: Optional[Dict[str, Any]] = None, legacy: Sequence[str] = ()
) -> inspect.Signature:
    """The signature of a factory `(nlp, name, **settings)` with one typed
    keyword per key of `cls`, each also taking null (spaCy checks the types; a
    null reaches `validate`, whose coded error names the key and the fix, e.g.
    `model` = ${paths.base_model} not given).

    accept: a wider annotation for some keys (e.g. an old form still read).
    legacy: keys `cls` lacks that the factory still takes (old keys it turns
        into new ones), default null: spaCy refuses a key the signature lacks,
        and writes a parameter's default into the pipeline's config.
    """
    params = [
        inspect.Parameter("nlp", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=nlp_type),
        inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
    ]
    wider = accept or {}
    for key, field in cls.model_fields.items():
        annotation = wider.get(key, _plain(field.annotation))
        params.append(inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[annotation]))
    for key in legacy:
        params.append(inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Any))
    return inspect.Signature(params)


def keys(cls: Type[ModelSettings]) -> List[str]:
    """The config keys of a settings class, in order."""
    return list(cls.model_fields)
