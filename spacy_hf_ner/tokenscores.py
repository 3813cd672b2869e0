"""Model-token scores -> one label per spaCy token (for taggers).

`merge_windows` puts the model tokens of all windows of one text in text order,
each taken from the window where it is most central (as `hf_ner` does with
`words` = "spacy"), and `token_scores` pools their scores over given words
(spaCy's tokens) with transformers' word strategies ("first", "average", "max").

Pure logic: numpy only, no spaCy, no torch. Scores are softmax probabilities,
one row per model token.
"""
from typing import Sequence, Tuple

import numpy as np

from .aggregation import WORD_STRATEGIES, _word_scores
from .alignment import strip_offsets

NO_LABEL = -1


def merge_windows(
    text: str,
    windows: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model tokens of a text's windows, sorted by start and deduplicated.

    windows: (offsets (n, 2), special (n,), probs (n, labels)) per window, in
        text order; offsets are character offsets in the whole text.

    A token seen in several (overlapping) windows is taken from the window where
    it is farthest from the edge, so it has the most context. Offsets are stripped
    of whitespace and tokens covering no text are dropped. Returns (starts, ends,
    probs).
    """
    starts_l, ends_l, probs_l, central_l = [], [], [], []
    n_labels = 0
    for offsets, special, probs in windows:
        n_labels = probs.shape[-1]
        keep = np.flatnonzero(~special)
        if len(keep) == 0:
            continue
        central_l.append(np.minimum(keep - keep[0], keep[-1] - keep))
        starts_l.append(offsets[keep, 0])
        ends_l.append(offsets[keep, 1])
        probs_l.append(probs[keep])
    if not starts_l:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros((0, n_labels), dtype=np.float32)
    starts, ends = np.concatenate(starts_l), np.concatenate(ends_l)
    probs, central = np.concatenate(probs_l), np.concatenate(central_l)
    starts, ends, nonempty = strip_offsets(text, starts, ends)
    order = np.lexsort((-central, starts))
    order = order[nonempty[order]]
    starts, ends, probs = starts[order], ends[order], probs[order]
    if len(windows) > 1:
        first = np.ones(len(starts), dtype=bool)
        first[1:] = starts[1:] != starts[:-1]
        starts, ends, probs = starts[first], ends[first], probs[first]
    return starts, ends, probs


def token_scores(
    probs: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    tok_starts: np.ndarray,
    tok_ends: np.ndarray,
    tok_is_space: np.ndarray,
    strategy: str,
) -> Tuple[np.ndarray, np.ndarray]:
    """One label id and score per word (spaCy token).

    probs, starts, ends: model tokens sorted by start, offsets stripped of
        whitespace and non-empty (see `merge_windows`).
    tok_starts, tok_ends: character offsets of the words (end without trailing
        whitespace); tok_is_space: words that are whitespace only.

    A word takes the scores of the model tokens that start inside it, pooled by
    `strategy` exactly as transformers' `aggregate_word` pools subwords. A word
    inside a model token that started in an earlier word (the tokenizer did not
    split where spaCy did) takes that model token's scores. Whitespace words and
    words no model token covers get id `NO_LABEL` (-1) and score NaN.
    """
    if strategy not in WORD_STRATEGIES:
        raise ValueError(
            f"Strategy {strategy!r} does not aggregate words; use one of {WORD_STRATEGIES}"
        )
    n_tok = len(tok_starts)
    ids = np.full(n_tok, NO_LABEL, dtype=np.int64)
    scores = np.full(n_tok, np.nan, dtype=probs.dtype if len(probs) else np.float32)
    if n_tok == 0 or len(probs) == 0:
        return ids, scores
    word = np.searchsorted(tok_starts, starts, side="right") - 1
    safe = np.maximum(word, 0)
    inside = (word >= 0) & (starts < tok_ends[safe]) & ~tok_is_space[safe]
    if inside.any():
        rows, owners = probs[inside], word[inside]
        first_of_word = np.ones(len(owners), dtype=bool)
        first_of_word[1:] = owners[1:] != owners[:-1]
        row_starts = np.flatnonzero(first_of_word)
        word_ids, word_scores = _word_scores(rows, row_starts, strategy)
        ids[owners[row_starts]] = word_ids
        scores[owners[row_starts]] = word_scores
    # words inside a model token that began before them
    missing = np.flatnonzero((ids == NO_LABEL) & ~tok_is_space)
    if len(missing):
        cover = np.searchsorted(starts, tok_starts[missing], side="right") - 1
        ok = (cover >= 0) & (ends[np.maximum(cover, 0)] > tok_starts[missing])
        missing, cover = missing[ok], cover[ok]
        rows = probs[cover]
        best = rows.argmax(axis=1)
        ids[missing] = best
        scores[missing] = rows[np.arange(len(best)), best]
    return ids, scores


IGNORE_INDEX = -100


def first_subword_targets(
    starts: np.ndarray,
    ends: np.ndarray,
    tok_starts: np.ndarray,
    tok_ends: np.ndarray,
    tok_is_space: np.ndarray,
    tok_targets: np.ndarray,
) -> np.ndarray:
    """Training targets for one window's model tokens: each word's (spaCy token's)
    target on the first model token that starts inside it, `IGNORE_INDEX` (-100,
    what torch's cross entropy skips) everywhere else, as the transformers
    token-classification guide labels subwords.

    starts, ends: the window's model-token offsets in window order, stripped of
        whitespace (see `alignment.strip_offsets`); special tokens and tokens
        covering no text must have start == end.
    tok_starts, tok_ends, tok_is_space: the words, as in `token_scores`.
    tok_targets: one label id per word, `IGNORE_INDEX` for words without gold.

    This mirrors `token_scores` with strategy "first": the model token trained
    for a word is the one whose prediction that word reads.
    """
    targets = np.full(len(starts), IGNORE_INDEX, dtype=np.int64)
    if len(tok_starts) == 0 or len(starts) == 0:
        return targets
    word = np.searchsorted(tok_starts, starts, side="right") - 1
    safe = np.maximum(word, 0)
    inside = (word >= 0) & (starts < ends) & (starts < tok_ends[safe]) & ~tok_is_space[safe]
    rows = np.flatnonzero(inside)
    if len(rows) == 0:
        return targets
    owners = word[rows]
    # the first model token of each word (window order == text order)
    _, first = np.unique(owners, return_index=True)
    targets[rows[first]] = tok_targets[owners[first]]
    return targets
