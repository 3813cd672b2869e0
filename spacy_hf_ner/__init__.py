"""spacy-hf-ner: Hugging Face token and text classifiers as spaCy components."""
from .errors import HFNerWarning
from .ner import HFNer, make_hf_ner, ner_score

__version__ = "0.1.0"
__all__ = ["HFNer", "HFNerWarning", "make_hf_ner", "ner_score", "__version__"]
