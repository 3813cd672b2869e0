"""The pipeline side of the server: which components are served under which
names, and what the model worker runs for each kind of request."""
from pathlib import Path
from typing import Any, Dict, Hashable, List, Tuple, Union

from pydantic import BaseModel
from spacy.language import Language

from ..ner import HFNer
from ..textcat import HFTextcat
from .formats import doc_json, render_dependencies, text_classification, token_classification

Served = Union[HFNer, HFTextcat]


def served_components(nlp: Language) -> Dict[str, Served]:
    """The pipeline's `hf_ner` and `hf_textcat` components by name, in pipeline
    order."""
    found = {name: pipe for name, pipe in nlp.pipeline if isinstance(pipe, (HFNer, HFTextcat))}
    if not found:
        raise ValueError(
            f"serve: the pipeline ({', '.join(nlp.pipe_names) or 'no components'}) has no `hf_ner` or "
            "`hf_textcat` component. Fix: add one, e.g. nlp.add_pipe('hf_ner'), or serve a transformers "
            "token/sequence classifier directly"
        )
    return found


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
        model = pipe.engine.model_name
        if not Path(model).expanduser().is_absolute() and not model.startswith((".", "~")):
            aliases.setdefault(model, name)
    return aliases


class PipelineWorker:
    """What the model worker runs, keyed by the batcher: ("token", component,
    parameters), ("text", component, parameters), ("doc",) or ("render",)."""

    def __init__(self, nlp: Language) -> None:
        self.nlp = nlp
        self.components = served_components(nlp)

    def warm_up(self) -> None:
        """Load every model and run each once."""
        list(self.nlp.pipe(["Warm up the models."]))

    def __call__(self, key: Hashable, items: List[Any]) -> List[Any]:
        kind = key[0]  # type: ignore[index]
        if kind == "doc":
            return [doc_json(doc) for doc in self.nlp.pipe(items)]
        if kind == "render":
            return [(doc_json(doc), render_dependencies(doc)) for doc in self.nlp.pipe(items)]
        params = dict(key[2])  # type: ignore[index]
        component = self.components[key[1]]  # type: ignore[index]
        if kind == "token":
            if params.get("ignore_labels") is not None:
                params["ignore_labels"] = list(params["ignore_labels"])
            return token_classification(component, items, **params)  # type: ignore[arg-type]
        return text_classification(component, items, **params)  # type: ignore[arg-type]


def freeze(params: BaseModel) -> Tuple[Tuple[str, Any], ...]:
    """Request parameters as a hashable batching key."""
    values = params.model_dump()
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))
