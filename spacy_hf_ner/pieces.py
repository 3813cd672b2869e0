"""Model tokens ("pieces") of a text's windows -> spaCy tokens, for listeners.

A transformer listener reads, for each spaCy token, the hidden states of the
model tokens that belong to it (a ragged array: the rows of all tokens one
after the other, and how many rows each token has). `token_pieces` says which
row of which window each of those rows is, with the rules inference uses for
the logits: a model token seen in several overlapping windows is read from the
window where it has the most context (`merge_windows`), and a model token
belongs to the spaCy token it starts in, or covers a token in which no model
token starts (`align`). Whitespace tokens, and tokens no model token covers,
get no rows.

Pure logic: numpy only, no spaCy, no torch.
"""
from typing import List, Sequence, Tuple

import numpy as np

from .alignment import align, merge_windows


def token_pieces(
    text: str,
    windows: Sequence[Tuple[np.ndarray, np.ndarray]],
    tok_starts: np.ndarray,
    tok_ends: np.ndarray,
    tok_is_space: np.ndarray,
) -> Tuple[np.ndarray, np.ndarray]:
    """The source of each spaCy token's rows.

    windows: (offsets (n, 2), special (n,)) of the text's windows, in text order.
    tok_starts, tok_ends, tok_is_space: the spaCy tokens (ends without trailing
        whitespace).
    RETURNS (Tuple[np.ndarray, np.ndarray]): `source` (m, 2), the (window,
        position) of each row, token by token; `lengths` (n_tokens,), how many
        rows each token has (they sum to m).
    """
    n_tok = len(tok_starts)
    marked = [
        (offsets, special, np.stack([np.full(len(offsets), k), np.arange(len(offsets))], axis=1))
        for k, (offsets, special) in enumerate(windows)
    ]
    starts, ends, where = merge_windows(text, marked)
    where = where.astype(np.int64).reshape(-1, 2)
    alignment = align(starts, ends, tok_starts, tok_ends, tok_is_space)
    owned = np.flatnonzero(alignment.owner >= 0)
    covered = np.flatnonzero(alignment.cover >= 0)
    rows = np.concatenate([owned, alignment.cover[covered]]).astype(np.int64)
    tokens = np.concatenate([alignment.owner[owned], covered]).astype(np.int64)
    order = np.argsort(tokens, kind="stable")
    lengths = np.bincount(tokens, minlength=n_tok).astype(np.int32)
    return where[rows[order]], lengths


def _flat(source: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Row indices of `source` in the windows' rows concatenated."""
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return offsets[source[:, 0]] + source[:, 1] if len(source) else np.zeros(0, dtype=np.int64)


def gather(states: Sequence[np.ndarray], source: np.ndarray) -> np.ndarray:
    """The rows `source` names, from each window's states (n_window, width)."""
    if len(source) == 0:
        width = states[0].shape[-1] if len(states) else 0
        return np.zeros((0, width), dtype=np.float32)
    flat = _flat(source, [len(s) for s in states])
    rows: np.ndarray = np.concatenate(states).astype(np.float32, copy=False)[flat]
    return rows


def scatter(d_rows: np.ndarray, source: np.ndarray, sizes: Sequence[int]) -> List[np.ndarray]:
    """The gradient of each window's states from the gradient of gathered
    rows: a row read twice (a piece that covers two tokens) adds up.

    sizes: the number of positions of each window.
    """
    width = d_rows.shape[-1]
    out = np.zeros((int(sum(sizes)), width), dtype=np.float32)
    np.add.at(out, _flat(source, sizes), d_rows)
    return np.split(out, np.cumsum(sizes)[:-1])
