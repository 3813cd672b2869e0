"""What a component kind is, described once: `ComponentKind`.

Each component module (`ner.py`, `tagger.py`, `textcat.py`, or a module of
another package) declares its kind and registers it with one line,
`register_factory(cls, KIND, default_config=...)` (spaCy's factory and the
kind together). Everything that differs by kind reads the description:
`sources` (the component a bare model of a task goes into), `init-config` (the
training recipe and score weights), `export-onnx` (how an export is checked)
and the server (which Inference API route serves it, and how).

Kinds are found by factory name: a kind not yet registered is loaded through
spaCy's `spacy_factories` entry point of that name, which imports the module
that registers it. No spaCy or torch import here.
"""
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Dict, Hashable, List, Literal, Mapping, Optional, Tuple

from .errors import Errors, SpacyHFNerError
from .ty import Task

# the Hugging Face Inference API routes (transformers' pipeline task names)
Route = Literal["token-classification", "text-classification"]
# the distribution whose factories are the built-in kinds
DISTRIBUTION = "spacy-hf-ner"


@dataclass(frozen=True)
class Recipe:
    """The fine-tuning recipe `spacy-hf-ner init-config` writes for a kind.

    head: how the head is made, for the comment above `model`.
    batch_words: words per batch. max_steps: training steps.
    """

    head: str
    batch_words: int
    max_steps: int


@dataclass(frozen=True)
class ExportCheck:
    """How `export-onnx` compares a kind's component run with backend "torch"
    and with backend "onnx".

    runs: each compared run by name, with the component settings it uses.
    predictions: what the component predicted for one doc, as {item: score}.
    """

    runs: Mapping[str, Mapping[str, Any]]
    predictions: Callable[[Any], Dict[Hashable, float]]


def _always(component: Any) -> bool:
    return True


@dataclass(frozen=True)
class Serving:
    """How the server serves a kind.

    route: the Inference API route its components answer, or None (served in
        the whole pipeline's `/doc` only).
    records: (nlp, component name, inputs, **parameters) -> per input, the
        route's records (entity dicts, label scores), the parameters as the
        route's request model validated them (None: not given).
    windowed: whether a component cuts a long input into windows (the server
        counts the model work of a request with it); else one window each.
    page: how the server's page lists it: "token" (entities, with a choice of
        aggregation strategy), "text" (categories); None: not listed (its
        annotations still show in the pipeline's view).
    """

    route: Optional[Route] = None
    records: Optional[Callable[..., List[List[Dict[str, Any]]]]] = None
    windowed: Callable[[Any], bool] = _always
    page: Optional[Literal["token", "text"]] = None


@dataclass(frozen=True)
class ComponentKind:
    """One kind of component, e.g. `hf_ner`.

    factory: the spaCy factory name.
    task: the transformers task its models solve, "token" or "sequence".
    writes: what it writes, e.g. "entities -> doc.ents".
    assigns: the attributes it assigns (spaCy's factory meta).
    score_weights: its default score weights (spaCy's factory meta, and the
        `[training.score_weights]` init-config writes).
    recipe: the fine-tuning recipe.
    serving: how the server serves it.
    export: how export-onnx checks an export.
    bare_model: a bare transformers model of `task` is run as this kind (one
        kind per task).
    """

    factory: str
    task: Task
    writes: str
    assigns: Tuple[str, ...]
    score_weights: Mapping[str, Optional[float]]
    recipe: Recipe
    serving: Serving = field(default_factory=Serving)
    export: Optional[ExportCheck] = None
    bare_model: bool = False


_KINDS: Dict[str, ComponentKind] = {}


def register_kind(kind: ComponentKind) -> ComponentKind:
    """Add `kind`; registering the same description again is a no-op (a module
    imported twice), another one under the same factory name raises E038."""
    old = _KINDS.get(kind.factory)
    if old is not None and old != kind:
        raise SpacyHFNerError(Errors.E038.format(factory=kind.factory, old=old, new=kind))
    _KINDS[kind.factory] = kind
    return kind


def kind_of(factory: Optional[str]) -> Optional[ComponentKind]:
    """The kind of a spaCy factory, or None when it is not one of ours (loads
    the factory's module through its entry point when needed)."""
    if factory is None:
        return None
    if factory not in _KINDS:
        for point in entry_points(group="spacy_factories", name=factory):
            point.load()
    return _KINDS.get(factory)


def all_kinds() -> Dict[str, ComponentKind]:
    """Every kind: the built-in ones (this package's factories) and those
    registered so far, by factory name."""
    for point in entry_points(group="spacy_factories"):
        if point.dist is not None and point.dist.name.replace("_", "-").lower() == DISTRIBUTION:
            kind_of(point.name)
    return dict(_KINDS)


def bare_kind(task: str) -> ComponentKind:
    """The kind a bare transformers model of `task` runs as."""
    for kind in all_kinds().values():
        if kind.task == task and kind.bare_model:
            return kind
    raise KeyError(task)
