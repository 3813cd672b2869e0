"""The pipeline side of the server: which components are served under which
names, and what the model worker runs for each kind of request. What differs
by component kind (the route, its records, windowing) comes from the kind's
`Serving` (`spacy_hf_ner.kinds`)."""
from pathlib import Path
from typing import Any, Dict, Hashable, List, NamedTuple, Optional, Sequence, Tuple

from pydantic import BaseModel
from spacy.language import Language

from ..errors import Errors, SpacyHFNerError
from ..kinds import ComponentKind, all_kinds, kind_of
from ..windows import count_windows
from .formats import doc_json, render_dependencies

# a served component: its kind and the component itself (an HFComponent)
Served = Any


def served_kinds(nlp: Language) -> Dict[str, ComponentKind]:
    """The kind of each of the pipeline's spacy-hf-ner components, by name, in
    pipeline order (E128 when it has none)."""
    found = {}
    for name in nlp.pipe_names:
        kind = kind_of(nlp.get_pipe_meta(name).factory)
        if kind is not None:
            found[name] = kind
    if not found:
        raise SpacyHFNerError(
            Errors.E128.format(pipes=", ".join(nlp.pipe_names) or "no components", kinds=", ".join(sorted(all_kinds())))
        )
    return found


def served_components(nlp: Language) -> Dict[str, Served]:
    """The pipeline's spacy-hf-ner components by name, in pipeline order."""
    return {name: nlp.get_pipe(name) for name in served_kinds(nlp)}


def public_name(model: str) -> str:
    """A model as the server shows it: a hub id or bundled name as it is, a
    local folder by its last part only (never the machine's absolute path)."""
    path = Path(model).expanduser()
    if path.is_absolute() or model.startswith((".", "~")) or path.is_dir():
        return path.resolve().name
    return model


def model_aliases(components: Dict[str, Served]) -> Dict[str, str]:
    """URL names of the served models -> component names: each component's name,
    and its model id when that is a hub id or a bundled model (not a folder)."""
    aliases = {name: name for name in components}
    for name, pipe in components.items():
        model = pipe.runtime.model_name
        if not Path(model).expanduser().is_absolute() and not model.startswith((".", "~")):
            aliases.setdefault(model, name)
    return aliases


class Cost(NamedTuple):
    """The model work of one input: windows and model tokens (special tokens
    and overlaps included), over every model that reads it."""

    windows: int
    tokens: int


class PipelineWorker:
    """What the model worker runs, keyed by the batcher: ("model", component,
    parameters) for a component's Inference API route, ("doc",) or ("render",).

    max_stride (Optional[int]): the largest `parameters.stride` a request may
        ask for; None: half the model's window.
    """

    def __init__(self, nlp: Language, *, max_stride: Optional[int] = None) -> None:
        self.nlp = nlp
        self.kinds = served_kinds(nlp)
        self.components = served_components(nlp)
        self.max_stride = max_stride
        self._counters: Dict[str, Any] = {}

    def stride_limit(self, component: str) -> int:
        """The largest stride a request may ask of `component`."""
        runtime = self.components[component].runtime
        if self.max_stride is not None:
            return self.max_stride
        return (runtime.window - runtime.n_special) // 2

    def cost(self, key: Hashable, items: Sequence[Any]) -> List[Cost]:
        """The model work of each item of a request, counted with the models'
        own tokenizers (run where the model is not: it does not wait for it).
        The windows are exactly those the components will cut.

        Raises ValueError (E121) for a `parameters.stride` over the server's
        limit, or the component's error for one the model cannot take.
        """
        kind = key[0]  # type: ignore[index]
        if kind in ("doc", "render"):
            per_model = [self._windows(name, items, None) for name in self.components]
            return [Cost(sum(c[i].windows for c in per_model), sum(c[i].tokens for c in per_model)) for i in range(len(items))]
        component = key[1]  # type: ignore[index]
        stride = dict(key[2]).get("stride")  # type: ignore[index]
        if stride is not None:
            limit = self.stride_limit(component)
            if stride > limit:
                runtime = self.components[component].runtime
                room = runtime.window - runtime.n_special
                raise SpacyHFNerError(
                    Errors.E121.format(
                        stride=stride,
                        limit=limit,
                        why="--max-stride" if self.max_stride is not None else "half the model's window",
                        room=room,
                        factor=runtime.reads_per_token(min(stride, room - 1)),
                        default=runtime.default_stride(),
                    )
                )
        return self._windows(component, items, stride)

    def _windows(self, component: str, items: Sequence[Any], stride: Optional[int]) -> List[Cost]:
        pipe = self.components[component]
        runtime = pipe.runtime
        stride = runtime.resolve_stride(pipe.settings.stride if stride is None else stride)
        room = runtime.window - runtime.n_special
        windowed = self.kinds[component].serving.windowed(pipe)
        texts = [item if isinstance(item, str) else item[0] for item in items]
        counts = [len(e.ids) for e in self._counter(component).encode_batch(texts, add_special_tokens=False)]
        costs = []
        for item, n in zip(items, counts):
            if not isinstance(item, str):  # a text pair: one window
                costs.append(Cost(1, runtime.window))
                continue
            windows = count_windows(n, room, stride) if windowed else 1
            tokens = n + (windows - 1) * stride if windowed else min(n, room)
            costs.append(Cost(windows, tokens + windows * runtime.n_special))
        return costs

    def _counter(self, component: str) -> Any:
        """A copy of the component's Rust tokenizer without truncation or
        padding, for counting tokens in other threads (the component's own
        tokenizer is reconfigured by each call and cannot be shared)."""
        if component not in self._counters:
            from tokenizers import Tokenizer

            counter = Tokenizer.from_str(self.components[component].runtime.tokenizer.backend_tokenizer.to_str())
            counter.no_truncation()
            counter.no_padding()
            self._counters[component] = counter
        return self._counters[component]

    def warm_up(self) -> None:
        """Load every model, run each once, and make the token counters (here,
        before any request can use the tokenizers from another thread)."""
        list(self.nlp.pipe(["Warm up the models."]))
        for name in self.components:
            self._counter(name)

    def __call__(self, key: Hashable, items: List[Any]) -> List[Any]:
        kind = key[0]  # type: ignore[index]
        if kind == "doc":
            return [doc_json(doc) for doc in self.nlp.pipe(items)]
        if kind == "render":
            return [(doc_json(doc), render_dependencies(doc)) for doc in self.nlp.pipe(items)]
        name = key[1]  # type: ignore[index]
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in key[2]}  # type: ignore[index]
        records = self.kinds[name].serving.records
        assert records is not None, f"{name} has no Inference API route"
        return records(self.nlp, name, items, **params)


def freeze(params: BaseModel) -> Tuple[Tuple[str, Any], ...]:
    """Request parameters as a hashable batching key."""
    values = params.model_dump()
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))
