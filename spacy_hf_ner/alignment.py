"""Model tokens <-> words: the one alignment that inference and training share.

A *word* is what a component labels: a spaCy token, or a unit of several
tokens (see `infix_units`). Words are given as character offsets
(`w_starts`, `w_ends`, end without trailing whitespace) and a flag for
whitespace-only words, so the functions work on any tokenization.

`align` decides, once, which model token belongs to which word:

* a model token belongs to the word it starts in (never to a whitespace word);
* the first model token of a word is the one trained for it and the one
  strategy "first" reads (`word_targets`, `pool_words`);
* a word in which no model token starts, but which a model token that began in
  an earlier word covers (the tokenizer did not split where spaCy did), is
  *covered* by that token; a whitespace word is never covered, so nothing
  stretches over whitespace.

Pure logic: numpy only, no spaCy, no torch.
"""
from typing import Iterable, NamedTuple, Sequence, Tuple

import numpy as np

# label id where a word has no label, and the target torch's cross entropy skips
NO_LABEL = -1
IGNORE_INDEX = -100
# what joins spaCy tokens into one word under `infix_units` by default: hyphens
# (ASCII, Unicode hyphen, non-breaking hyphen, en dash) and the slash
DEFAULT_INFIXES: Tuple[str, ...] = ("-", "\u2010", "\u2011", "\u2013", "/")


def strip_span(text: str, start: int, end: int) -> Tuple[int, int]:
    """Remove leading and trailing whitespace from text[start:end]."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def strip_offsets(text: str, starts: np.ndarray, ends: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strip whitespace from many offsets at once.

    Returns new (starts, ends) and a mask of the offsets that keep at least one
    character (zero-width and whitespace-only model tokens cover no text).
    """
    starts = starts.copy()
    ends = ends.copy()
    nonempty = ends > starts
    for i in np.flatnonzero(nonempty).tolist():
        s, e = int(starts[i]), int(ends[i])
        if text[s].isspace() or text[e - 1].isspace():
            starts[i], ends[i] = strip_span(text, s, e)
    return starts, ends, ends > starts


def merge_windows(
    text: str, windows: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model tokens of a text's windows, sorted by start and deduplicated.

    windows: (offsets (n, 2), special (n,), rows (n, labels)) per window, in
        text order; offsets are character offsets in the whole text.

    A token seen in several (overlapping) windows is taken from the window where
    it is farthest from the edge, so it has the most context. Offsets are stripped
    of whitespace and tokens covering no text are dropped. Returns (starts, ends,
    rows).
    """
    starts_l, ends_l, rows_l, central_l = [], [], [], []
    n_labels = 0
    for offsets, special, rows in windows:
        n_labels = rows.shape[-1]
        keep = np.flatnonzero(~special)
        if len(keep) == 0:
            continue
        central_l.append(np.minimum(keep - keep[0], keep[-1] - keep))
        starts_l.append(offsets[keep, 0])
        ends_l.append(offsets[keep, 1])
        rows_l.append(rows[keep])
    if not starts_l:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros((0, n_labels), dtype=np.float32)
    starts, ends = np.concatenate(starts_l), np.concatenate(ends_l)
    rows, central = np.concatenate(rows_l), np.concatenate(central_l)
    starts, ends, nonempty = strip_offsets(text, starts, ends)
    order = np.lexsort((-central, starts))
    order = order[nonempty[order]]
    starts, ends, rows = starts[order], ends[order], rows[order]
    if len(windows) > 1:
        first = np.ones(len(starts), dtype=bool)
        first[1:] = starts[1:] != starts[:-1]
        starts, ends, rows = starts[first], ends[first], rows[first]
    return starts, ends, rows


# -- words made of several spaCy tokens -----------------------------------------------


class Units(NamedTuple):
    """Words made of runs of spaCy tokens: unit u is tokens
    [first_token[u], last_token[u]], its text [starts[u], ends[u])."""

    starts: np.ndarray
    ends: np.ndarray
    is_space: np.ndarray
    first_token: np.ndarray
    last_token: np.ndarray

    def token_span(self, start: int, end: int) -> Tuple[int, int]:
        """The tokens [a, b) of the units [start, end)."""
        return int(self.first_token[start]), int(self.last_token[end - 1]) + 1


def infix_unit_ids(
    text: str,
    tok_starts: np.ndarray,
    tok_ends: np.ndarray,
    infixes: Iterable[str] = DEFAULT_INFIXES,
) -> np.ndarray:
    """The unit of each token when tokens joined by an infix form one word.

    A token whose text is one of `infixes` joins its neighbours into one unit
    when it touches both (no whitespace between) and both sides are word
    characters (letters or digits): "Jean - Luc" from "Jean-Luc", "2 - 1" from
    "2-1", "and / or" from "and/or". That is how CoNLL-2003 and most token
    classification data count words, where spaCy's tokenizer splits them.
    Runs chain ("Saint-Jean-de-Luz" is one unit); anything else ("Google 's",
    "U.S. -based" with a space, "--" between words) stays apart.

    RETURNS (np.ndarray): (n_tokens,) unit index of each token, from 0,
        non-decreasing.
    """
    n = len(tok_starts)
    joined = np.zeros(n, dtype=bool)  # token i belongs to the unit of token i - 1
    if n >= 3:
        lengths = {len(infix) for infix in infixes}
        wanted = set(infixes)
        middle = np.arange(1, n - 1)
        touching = (tok_ends[middle - 1] == tok_starts[middle]) & (tok_ends[middle] == tok_starts[middle + 1])
        sized = np.isin(tok_ends[middle] - tok_starts[middle], list(lengths))
        for i in middle[touching & sized].tolist():
            if (
                text[tok_starts[i] : tok_ends[i]] in wanted
                and text[tok_ends[i - 1] - 1].isalnum()
                and text[tok_starts[i + 1]].isalnum()
            ):
                joined[i] = joined[i + 1] = True
    return np.cumsum(~joined) - 1


def units_of(unit_ids: np.ndarray, tok_starts: np.ndarray, tok_ends: np.ndarray, tok_is_space: np.ndarray) -> Units:
    """The units that `unit_ids` (one per token, from 0, non-decreasing) makes of
    the tokens. A unit is whitespace only when all its tokens are."""
    n = len(unit_ids)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Units(empty, empty, np.zeros(0, dtype=bool), empty, empty)
    first = np.flatnonzero(np.r_[True, unit_ids[1:] != unit_ids[:-1]])
    last = np.r_[first[1:] - 1, n - 1]
    space = np.logical_and.reduceat(np.asarray(tok_is_space, dtype=bool), first)
    return Units(tok_starts[first], tok_ends[last], space, first, last)


# -- model tokens -> words ----------------------------------------------------------


class Alignment(NamedTuple):
    """Which model token belongs to which word.

    owner: (n_model,) the word each model token starts in, -1 for none (it
        starts in no word, in a whitespace word, or covers no text).
    first: (n_words,) the first model token of each word, -1 where none starts
        in it.
    cover: (n_words,) for a word where no model token starts, the one that
        began in an earlier word and covers it; -1 otherwise (always -1 for
        whitespace words).
    """

    owner: np.ndarray
    first: np.ndarray
    cover: np.ndarray


def align(
    starts: np.ndarray, ends: np.ndarray, w_starts: np.ndarray, w_ends: np.ndarray, w_is_space: np.ndarray
) -> Alignment:
    """Align model tokens (sorted by start, offsets stripped of whitespace;
    tokens with start == end cover no text) with words (see the module
    docstring)."""
    n_words = len(w_starts)
    first = np.full(n_words, -1, dtype=np.int64)
    cover = np.full(n_words, -1, dtype=np.int64)
    if n_words == 0 or len(starts) == 0:
        return Alignment(np.full(len(starts), -1, dtype=np.int64), first, cover)
    word = np.searchsorted(w_starts, starts, side="right") - 1
    safe = np.maximum(word, 0)
    inside = (word >= 0) & (starts < ends) & (starts < w_ends[safe]) & ~w_is_space[safe]
    owner = np.where(inside, word, -1)
    rows = np.flatnonzero(inside)
    if len(rows):
        words, at = np.unique(owner[rows], return_index=True)
        first[words] = rows[at]
    missing = np.flatnonzero((first < 0) & ~w_is_space)
    if len(missing):
        real = np.flatnonzero(starts < ends)
        before = np.searchsorted(starts[real], w_starts[missing], side="right") - 1
        ok = before >= 0
        candidate = real[np.maximum(before, 0)]
        ok &= ends[candidate] > w_starts[missing]
        cover[missing[ok]] = candidate[ok]
    return Alignment(owner, first, cover)


def pool_rows(rows: np.ndarray, row_starts: np.ndarray, strategy: str) -> np.ndarray:
    """The score row of each word made of consecutive rows of `rows`, pooled as
    transformers' `aggregate_word` pools subwords: the first subword's row
    ("first"), the mean of the rows ("average", NaN ignored as `np.nanmean`
    does), or the row holding the word's highest score ("max").

    row_starts: sorted row indices where each word begins (the first is 0).
    """
    if strategy == "first":
        return np.asarray(rows[row_starts])
    if strategy == "average":
        counts = np.diff(np.append(row_starts, len(rows)))
        means = np.add.reduceat(rows, row_starts, axis=0) / counts[:, None]
        if np.isnan(rows).any():  # transformers uses nanmean; keep its NaN rule
            means = np.stack([np.nanmean(rows[a : a + n], axis=0) for a, n in zip(row_starts, counts)])
        return means
    if strategy == "max":
        row_max = rows.max(axis=1)
        bounds = np.append(row_starts, len(rows)).tolist()
        best = np.array([a + int(row_max[a:b].argmax()) for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.int64)
        return rows[best]
    raise ValueError(f"Invalid aggregation strategy for words: {strategy!r}")


def best_labels(rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Each row's best label id and its score."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64), rows[:, 0] if rows.ndim == 2 and rows.shape[1] else np.zeros(0, rows.dtype)
    ids = rows.argmax(axis=1)
    return ids, rows[np.arange(len(ids)), ids].astype(rows.dtype)


def pool_words(rows: np.ndarray, alignment: Alignment, strategy: str) -> Tuple[np.ndarray, np.ndarray]:
    """The pooled score row of each word that owns model tokens.

    rows: (n_model, labels) scores of the aligned model tokens.
    RETURNS: (words, pooled): the word indices in order, and their rows.
    """
    owned = np.flatnonzero(alignment.owner >= 0)
    owners = alignment.owner[owned]
    if len(owned) == 0:
        return owners, rows[:0]
    row_starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    return owners[row_starts], pool_rows(rows[owned], row_starts, strategy)


def word_targets(alignment: Alignment, n_model: int, targets: np.ndarray) -> np.ndarray:
    """Training targets of model tokens: each word's target on its first model
    token (the one strategy "first" reads), `IGNORE_INDEX` everywhere else, as
    the transformers token-classification guide labels subwords.

    targets: (n_words,) label id per word, `IGNORE_INDEX` for words without gold.
    """
    out = np.full(n_model, IGNORE_INDEX, dtype=np.int64)
    has = alignment.first >= 0
    out[alignment.first[has]] = targets[has]
    return out


def token_scores(
    rows: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    tok_starts: np.ndarray,
    tok_ends: np.ndarray,
    tok_is_space: np.ndarray,
    strategy: str,
) -> Tuple[np.ndarray, np.ndarray]:
    """One label id and score per word (for taggers).

    rows, starts, ends: model tokens sorted by start, offsets stripped of
        whitespace and non-empty (see `merge_windows`).

    A word takes the scores of the model tokens that start inside it, pooled by
    `strategy` exactly as transformers' `aggregate_word` pools subwords; a word
    covered by a model token that started in an earlier word takes that token's
    scores. Whitespace words and words no model token covers get `NO_LABEL` and
    score NaN.
    """
    n_tok = len(tok_starts)
    ids = np.full(n_tok, NO_LABEL, dtype=np.int64)
    scores = np.full(n_tok, np.nan, dtype=rows.dtype if len(rows) else np.float32)
    alignment = align(starts, ends, tok_starts, tok_ends, tok_is_space)
    words, pooled = pool_words(rows, alignment, strategy)
    ids[words], scores[words] = best_labels(pooled)
    covered = np.flatnonzero(alignment.cover >= 0)
    ids[covered], scores[covered] = best_labels(rows[alignment.cover[covered]])
    return ids, scores


def first_subword_targets(
    starts: np.ndarray,
    ends: np.ndarray,
    tok_starts: np.ndarray,
    tok_ends: np.ndarray,
    tok_is_space: np.ndarray,
    tok_targets: np.ndarray,
) -> np.ndarray:
    """Training targets for one window's model tokens (in window order, offsets
    stripped of whitespace, special tokens and tokens covering no text with
    start == end): each word's target on its first model token, `IGNORE_INDEX`
    elsewhere. The same `align` that inference reads decides which token that
    is."""
    real = np.flatnonzero(starts < ends)
    alignment = align(starts[real], ends[real], tok_starts, tok_ends, tok_is_space)
    out = np.full(len(starts), IGNORE_INDEX, dtype=np.int64)
    out[real] = word_targets(alignment, len(real), tok_targets)
    return out
