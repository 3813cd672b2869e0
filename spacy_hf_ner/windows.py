"""Texts -> windows of model tokens, and windows -> padded batches.

A text longer than the model's window is cut into windows overlapping by
`stride` tokens, as transformers' pipeline does with `stride`; nothing is
truncated. Offsets always refer to the whole text.

numpy and a fast tokenizer only: no spaCy, no torch.
"""
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

# what every tokenizer call asks for: offsets and special tokens, no padding
_OFFSETS: Dict[str, Any] = dict(
    return_offsets_mapping=True, return_special_tokens_mask=True, return_attention_mask=False, padding=False
)


class Window(NamedTuple):
    """One window of one text: model tokens and their offsets."""

    doc: int  # index of the text in the batch
    ids: np.ndarray  # (n,) input ids, special tokens included
    offsets: np.ndarray  # (n, 2) character offsets in the whole text
    special: np.ndarray  # (n,) bool, special tokens
    types: Optional[np.ndarray] = None  # (n,) token type ids (text pairs); None: all 0


def encode(tokenizer: Any, texts: Sequence[str], window: int, stride: int) -> List[Window]:
    """Tokenize texts into windows of at most `window` tokens (special tokens
    included) overlapping by `stride` tokens. Windows come in text order."""
    enc = tokenizer(
        list(texts),
        truncation=True,
        max_length=window,
        stride=stride,
        return_overflowing_tokens=True,
        return_token_type_ids=False,
        **_OFFSETS,
    )
    return [
        Window(
            doc=int(doc),
            ids=np.asarray(enc["input_ids"][i], dtype=np.int64),
            offsets=np.asarray(enc["offset_mapping"][i], dtype=np.int64).reshape(-1, 2),
            special=np.asarray(enc["special_tokens_mask"][i], dtype=bool),
        )
        for i, doc in enumerate(enc["overflow_to_sample_mapping"])
    ]


def encode_pairs(
    tokenizer: Any, texts: Sequence[str], pairs: Sequence[str], window: int
) -> Tuple[List[Window], List[bool]]:
    """Tokenize each text with its pair as one window (`tokenizer(text,
    text_pair)`), truncating only the first text to `window` tokens where the
    pair leaves room ("only_first"). Returns the windows (offsets of pair tokens
    are in the pair's text) and whether each text was truncated."""
    windows: List[Window] = []
    truncated: List[bool] = []
    for d, (text, pair) in enumerate(zip(texts, pairs)):
        full = tokenizer(text, pair, truncation=False, return_attention_mask=False, verbose=False)
        too_long = len(full["input_ids"]) > window
        strategy: Any = False
        if too_long:
            n_pair = len(tokenizer(pair, add_special_tokens=False)["input_ids"])
            n_fixed = tokenizer.num_special_tokens_to_add(pair=True) + n_pair
            strategy = "only_first" if n_fixed < window else "longest_first"
        enc = tokenizer(text, pair, truncation=strategy, max_length=window, return_token_type_ids=True, **_OFFSETS)
        types = enc.get("token_type_ids")
        windows.append(
            Window(
                doc=d,
                ids=np.asarray(enc["input_ids"], dtype=np.int64),
                offsets=np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2),
                special=np.asarray(enc["special_tokens_mask"], dtype=bool),
                types=None if types is None else np.asarray(types, dtype=np.int64),
            )
        )
        truncated.append(too_long)
    return windows, truncated


def pad(windows: Sequence[Window], pad_id: Optional[int]) -> Dict[str, np.ndarray]:
    """A batch of windows padded to its longest: input_ids, attention_mask and
    token_type_ids, int64 arrays (batch, longest)."""
    lengths = [len(w.ids) for w in windows]
    width = max(lengths)
    ids = np.full((len(windows), width), 0 if pad_id is None else pad_id, dtype=np.int64)
    mask = np.zeros((len(windows), width), dtype=np.int64)
    types = np.zeros((len(windows), width), dtype=np.int64)
    for r, (window, n) in enumerate(zip(windows, lengths)):
        ids[r, :n] = window.ids
        mask[r, :n] = 1
        if window.types is not None:
            types[r, :n] = window.types
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def by_doc(windows: Sequence[Window], n_docs: int) -> List[List[int]]:
    """The indices of each doc's windows, in order."""
    out: List[List[int]] = [[] for _ in range(n_docs)]
    for i, window in enumerate(windows):
        out[window.doc].append(i)
    return out


def count_windows(n_tokens: int, room: int, stride: int) -> int:
    """How many windows `encode` cuts a text of `n_tokens` model tokens (special
    tokens excluded) into, `room` text tokens each, overlapping by `stride`:
    one if it fits, else one more for every `room - stride` tokens past the
    first window."""
    if n_tokens <= room:
        return 1
    return 1 + -(-(n_tokens - room) // (room - stride))
