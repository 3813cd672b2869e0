"""spacy-hf-ner: Hugging Face token and text classifiers as spaCy components.

The components' modules (spaCy, torch, transformers) are imported when one of
their names is first used (`spacy_hf_ner.HFNer`, `from spacy_hf_ner import
load_pipeline`), so that the command line (`spacy-hf-ner --help`) and the
displaCy colours entry point start without them. spaCy finds the factories
through the `spacy_factories` entry points either way.
"""
from importlib import import_module
from typing import Any

from .errors import HFNerWarning

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "HFNer": ".ner",
    "make_hf_ner": ".ner",
    "ner_score": ".ner",
    "load_pipeline": ".sources",
    "HFTagger": ".tagger",
    "make_hf_tagger": ".tagger",
    "tagger_score": ".tagger",
    "HFTextcat": ".textcat",
    "make_hf_textcat": ".textcat",
    "textcat_score": ".textcat",
    "annotate": ".bulk",
}
__all__ = ["HFNerWarning", *_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
