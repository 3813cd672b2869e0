"""A piece encoder for curated's transformer that gives it the pieces hf_ner
reads: the text of each doc tokenized whole by the model's Hugging Face
tokenizer (as hf_ner's windows are), each piece counted to the spaCy token
where it starts, [CLS] before and [SEP] after.

curated's own `BertWordpieceEncoder.v1` tokenizes each spaCy token on its own,
so that "don't" (spaCy: "do", "n't") becomes `do n ' t` where hf_ner reads
`don ' t`: the twin of `scripts/curated_twin.py --pieces raw-text` removes
that difference, leaving the two libraries' pooling of a piece that covers
two tokens (curated: the token where it starts; hf_ner: both) and their
windows of long texts (curated averages the overlap of plain slices; hf_ner
gives each window [CLS]/[SEP] and reads each piece from its most central
window).

Loaded with `--code scripts/twin_pieces.py` (it also applies
`scripts/curated_numpy.py`, which curated needs to train under NumPy 2.4).
"""
from functools import lru_cache
from typing import Any, Callable, List, Tuple

import numpy as np
from spacy.util import registry
from thinc.api import Model, Ragged

from scripts import curated_numpy  # noqa: F401  (the patch, applied on import)
from scripts.curated_twin import PIECE_ENCODERS, PIECE_LOADERS

ENCODER, LOADER = PIECE_ENCODERS["raw-text"], PIECE_LOADERS["raw-text"]


@lru_cache(maxsize=4)
def _tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def doc_pieces(tokenizer: Any, text: str, token_starts: List[int]) -> Tuple[List[int], List[int]]:
    """The piece ids of `text` ([CLS] and [SEP] around them) and how many of
    them each token has ([CLS] and [SEP] counted as tokens of their own, as
    curated counts them)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)  # curated windows it
    starts = [start for start, _ in enc["offset_mapping"]]
    owner = np.searchsorted(np.asarray(token_starts), np.asarray(starts, dtype=np.int64), side="right") - 1
    counts = np.bincount(np.maximum(owner, 0), minlength=len(token_starts)) if len(owner) else np.zeros(len(token_starts), int)
    ids = [tokenizer.cls_token_id, *enc["input_ids"], tokenizer.sep_token_id]
    return ids, [1, *counts.tolist(), 1]


def _forward(model: Model, docs: List[Any], is_train: bool) -> Tuple[List[Ragged], Callable]:
    tokenizer = _tokenizer(model.attrs["tokenizer"])
    out = []
    for doc in docs:  # a Doc, or its tokens other than whitespace (curated's `with_non_ws_tokens`)
        tokens = list(doc)
        text = tokens[0].doc.text if tokens else ""
        ids, lengths = doc_pieces(tokenizer, text, [token.idx for token in tokens])
        out.append(Ragged(model.ops.asarray1i(ids), model.ops.asarray1i(lengths)))
    return out, lambda d_out: []


@registry.architectures(ENCODER)
def raw_text_pieces() -> Model:
    """The piece encoder (its tokenizer set by the loader at `initialize`)."""
    return Model("raw_text_pieces", forward=_forward, attrs={"tokenizer": ""})


@registry.model_loaders(LOADER)
def raw_text_pieces_loader(name: str) -> Callable:
    """Point the piece encoder at the tokenizer of the model at `name`."""

    def load(model: Model, X: Any = None, Y: Any = None) -> Model:
        model.attrs["tokenizer"] = str(name)
        return model

    return load
