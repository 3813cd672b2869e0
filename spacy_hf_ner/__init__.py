"""spacy-hf-ner: Hugging Face token and text classifiers as spaCy components."""
from .bulk import annotate
from .errors import HFNerWarning
from .ner import HFNer, make_hf_ner, ner_score
from .sources import load_pipeline
from .tagger import HFTagger, make_hf_tagger, tagger_score
from .textcat import HFTextcat, make_hf_textcat, textcat_score

__version__ = "0.1.0"
__all__ = [
    "HFNer",
    "HFNerWarning",
    "HFTagger",
    "HFTextcat",
    "annotate",
    "load_pipeline",
    "make_hf_ner",
    "make_hf_tagger",
    "make_hf_textcat",
    "ner_score",
    "tagger_score",
    "textcat_score",
    "__version__",
]
