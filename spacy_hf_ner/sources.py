"""Where a model or a pipeline comes from: models shipped in the package, hub
ids and local folders, the task an architecture serves, and a spaCy pipeline
(or a bare transformers classifier put in a blank one) by name.

No torch import: the command line and the server's start-up read this.
"""
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, get_args

from .errors import Errors, SpacyHFNerError
from .kinds import bare_kind
from .ty import Task

# models that ship inside this package: `model = "spacy-hf-ner:<name>"`
BUNDLED_PREFIX = "spacy-hf-ner:"
BUNDLED_DIR = Path(__file__).parent / "models"
# the architecture suffix of each task's transformers classes
TASK_SUFFIX: Dict[str, str] = {"token": "ForTokenClassification", "sequence": "ForSequenceClassification"}


def bundled_models() -> List[str]:
    """Names of the models shipped with the package."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / "config.json").is_file())


def resolve_model(model: str, name: str) -> str:
    """The hub id or local directory that `model` stands for: "spacy-hf-ner:NAME"
    is a model shipped in this package, a directory is expanded (~)."""
    if model.startswith(BUNDLED_PREFIX):
        path = BUNDLED_DIR / model[len(BUNDLED_PREFIX):]
        if not (path / "config.json").is_file():
            available = ", ".join(BUNDLED_PREFIX + m for m in bundled_models()) or "none"
            raise SpacyHFNerError(Errors.E012.format(name=name, model=model, available=available))
        return str(path)
    expanded = os.path.expanduser(model)
    return expanded if os.path.isdir(expanded) else model


def refuse_pipeline_folder(model: str, name: str) -> None:
    """E191 when `model` is a saved spaCy pipeline folder (config.cfg, no
    config.json) rather than a model folder, naming the model folders of its
    hf_* components (`<pipeline>/<component>/model`)."""
    path = Path(model).expanduser()
    if (path / "config.json").is_file() or not (path / "config.cfg").is_file():
        return
    inside = sorted(str(p.parent) for p in path.glob("*/model/config.json"))
    fix = (
        f"point `model` at the model folder of its component: {' or '.join(repr(d) for d in inside)}"
        if inside
        else "point `model` at a folder holding config.json and the weights"
    )
    raise SpacyHFNerError(Errors.E191.format(name=name, model=model, fix=fix))


def looks_like_path(model: str) -> bool:
    """True for values that can only be a local path, never a hub id."""
    return (
        os.path.isabs(os.path.expanduser(model))
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or "\\" in model
    )


def task_of(architectures: Optional[Iterable[str]]) -> Optional[Task]:
    """The task ("token" or "sequence") of a transformers config's
    `architectures`, or None when it names no classifier of either kind."""
    names = list(architectures or [])
    for task in get_args(Task):
        if any(a.endswith(TASK_SUFFIX[task]) for a in names):
            return task
    return None


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No progress bars or load reports while a model loads or saves (errors
    still show)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if enabled:
            hf_logging.enable_progress_bar()


def load_pipeline(name: str, *, lang: str = "xx", config: Optional[Dict[str, Any]] = None) -> Any:
    """A spaCy pipeline by name: a pipeline folder or an installed package
    (`spacy.load`), else a transformers token or sequence classifier (hub id,
    folder, or `spacy-hf-ner:NAME`) in a blank `lang` pipeline as the kind
    that runs a bare model of its task (`ComponentKind.bare_model`: `hf_ner`,
    `hf_textcat`), with `config` overriding that component's settings.

    name (str): the pipeline or model.
    lang (str): the language of the blank pipeline around a bare model.
    config (Optional[Dict[str, Any]]): component settings for a bare model,
        e.g. {"decoding": "viterbi"}; refused for a pipeline (it has its own).
    RETURNS (Language): the pipeline.
    """
    import spacy
    from spacy.util import is_package
    from transformers import AutoConfig

    path = Path(name).expanduser()
    if (path / "config.cfg").is_file() or is_package(name):
        if config:
            raise SpacyHFNerError(Errors.E017.format(name=name, keys=", ".join(sorted(config))))
        return spacy.load(name)
    source = resolve_model(name, "load")
    try:
        model_config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise SpacyHFNerError(Errors.E018.format(name=name, error=e)) from e
    architectures = getattr(model_config, "architectures", None) or []
    task = task_of(architectures)
    if task is None:
        raise SpacyHFNerError(
            Errors.E019.format(name=name, architectures="/".join(architectures) or "no architecture in its config")
        )
    nlp = spacy.blank(lang)
    nlp.add_pipe(bare_kind(task).factory, config={**(config or {}), "model": name})
    return nlp
