"""Registered rules for what `hf_ner` counts as one word (config key `units`):
a rule maps a text and its spaCy tokens' offsets to a unit index per token.

    [components.hf_ner.units]
    @misc = "spacy-hf-ner.infix_units.v1"
    infixes = ["-", "\u2010", "\u2011", "\u2013", "/"]

The logic is in `alignment.infix_unit_ids` (pure, tested without models).
"""
from typing import Callable, List

import numpy as np
from spacy.util import registry

from .alignment import DEFAULT_INFIXES, infix_unit_ids

# (text, token starts, token ends) -> unit index per token (from 0, non-decreasing)
UnitRule = Callable[[str, np.ndarray, np.ndarray], np.ndarray]


@registry.misc("spacy-hf-ner.token_units.v1")
def make_token_units() -> UnitRule:
    """Every spaCy token is a word of its own."""

    def token_units(text: str, tok_starts: np.ndarray, tok_ends: np.ndarray) -> np.ndarray:
        return np.arange(len(tok_starts))

    return token_units


@registry.misc("spacy-hf-ner.infix_units.v1")
def make_infix_units(infixes: List[str] = list(DEFAULT_INFIXES)) -> UnitRule:
    """spaCy tokens joined by one of `infixes` between word characters, with no
    whitespace, are one word ("Jean-Luc", "2-1", "and/or"): how CoNLL-2003 and
    most token-classification data count words (see `alignment.infix_unit_ids`)."""
    chosen = tuple(infixes)

    def infix_units(text: str, tok_starts: np.ndarray, tok_ends: np.ndarray) -> np.ndarray:
        return infix_unit_ids(text, tok_starts, tok_ends, chosen)

    return infix_units
