"""Aggregation of token-classification scores into entities.

Two front ends share one implementation:

* `aggregate_window` reproduces transformers' `TokenClassificationPipeline`
  (`gather_pre_entities` -> `aggregate` -> `group_entities` -> ignore filter) for
  one window of model tokens, for all five strategies, and
  `merge_overlapping` reproduces its `aggregate_overlapping_entities`, used when a
  long text is split into several windows.
* `aggregate_on_tokens` aggregates the same scores over *given* words (spaCy's
  tokens), so that an entity can never start or end inside a word, nor run across a
  whitespace token such as a newline.

Pure logic: numpy only, no spaCy, no torch. Scores are the softmax probabilities
of the model, one row per model token, special tokens already removed.
"""
from functools import lru_cache
from typing import Iterable, List, Literal, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .tags import Scheme, entity_type, hf_get_tag, split_tag, transition_constraints

Strategy = Literal["none", "simple", "first", "average", "max"]
STRATEGIES: Tuple[str, ...] = ("none", "simple", "first", "average", "max")
WORD_STRATEGIES: Tuple[str, ...] = ("first", "average", "max")


class Entity(NamedTuple):
    """An entity in character offsets of the text.

    label: the raw label for strategy "none" ("B-PER"), else the entity group ("PER").
    index: position of the entity's first model token in its window (transformers'
        "index" with strategy "none").
    """

    label: str
    score: float
    start: int
    end: int
    index: int


class TokenEntity(NamedTuple):
    """An entity over words: `start`/`end` are word indices, end exclusive."""

    label: str
    score: float
    start: int
    end: int


def subword_flags(
    token_lengths: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    unknown: np.ndarray,
    text: str,
    word_aware: bool,
) -> np.ndarray:
    """Which tokens continue the previous word, by transformers' rules.

    token_lengths: length of each token's vocabulary string ("##ica" -> 5).
    unknown: True where the token is the tokenizer's unknown token.
    word_aware: True when the tokenizer marks continuing subwords (WordPiece's
        "##"): a token is then a subword iff its string is not as long as the text it
        covers. Otherwise transformers' fallback heuristic applies: a token is a
        subword unless it starts the text or touches a space.
    """
    if word_aware:
        flags = token_lengths != (ends - starts)
    else:
        flags = np.fromiter(
            (s > 0 and " " not in text[s - 1 : s + 1] for s in starts.tolist()),
            dtype=bool,
            count=len(starts),
        )
    return flags & ~unknown


def _word_rows(probs: np.ndarray, word_starts: np.ndarray, strategy: str) -> np.ndarray:
    """The score row of each word made of consecutive rows of `probs`, pooled as
    transformers' `aggregate_word` pools them: the first subword's row ("first"),
    the mean of the rows ("average"), or the row holding the word's highest score
    ("max").

    word_starts: sorted row indices where each word begins (the first is 0).
    """
    if strategy == "first":
        return probs[word_starts]
    if strategy == "average":
        counts = np.diff(np.append(word_starts, len(probs)))
        means = np.add.reduceat(probs, word_starts, axis=0) / counts[:, None]
        if np.isnan(probs).any():  # transformers uses nanmean; keep its NaN rule
            means = np.stack(
                [np.nanmean(probs[a : a + n], axis=0) for a, n in zip(word_starts, counts)]
            )
        return means
    if strategy == "max":
        row_max = probs.max(axis=1)
        bounds = np.append(word_starts, len(probs)).tolist()
        best = np.array(
            [a + int(row_max[a:b].argmax()) for a, b in zip(bounds[:-1], bounds[1:])],
            dtype=np.int64,
        )
        return probs[best]
    raise ValueError(f"Invalid aggregation strategy for words: {strategy!r}")


def _word_scores(
    probs: np.ndarray, word_starts: np.ndarray, strategy: str
) -> Tuple[np.ndarray, np.ndarray]:
    """Label ids and scores of words made of consecutive rows of `probs`:
    exactly transformers' `aggregate_word` for "first", "average" and "max"
    (each word takes its best label in its pooled row, see `_word_rows`)."""
    rows = _word_rows(probs, word_starts, strategy)
    ids = rows.argmax(axis=1)
    return ids, rows[np.arange(len(ids)), ids].astype(probs.dtype)


def viterbi(
    scores: np.ndarray,
    start: Sequence[bool],
    allowed: Sequence[Sequence[bool]],
    end: Sequence[bool],
) -> np.ndarray:
    """The label sequence with the highest product of scores among those the
    constraints allow (see `tags.transition_constraints`).

    scores: (n_items, n_labels) probabilities of each item's labels.
    RETURNS: one label id per item. Where no sequence is allowed (a label set
        without a free label), each item's best label.
    """
    n, k = scores.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # probabilities that underflowed to 0 stay possible, only the constraints forbid
    emit = np.log(np.maximum(np.nan_to_num(scores.astype(np.float64), nan=0.0), 1e-300))
    forbid = np.where(np.asarray(allowed, dtype=bool), 0.0, -np.inf)
    best = emit[0] + np.where(np.asarray(start, dtype=bool), 0.0, -np.inf)
    back = np.zeros((n, k), dtype=np.int64)
    columns = np.arange(k)
    for i in range(1, n):
        candidates = best[:, None] + forbid
        back[i] = candidates.argmax(axis=0)
        best = candidates[back[i], columns] + emit[i]
    best = best + np.where(np.asarray(end, dtype=bool), 0.0, -np.inf)
    if not np.isfinite(best.max()):
        return scores.argmax(axis=1)
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(best.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def _mean(values: np.ndarray) -> float:
    """The mean ignoring NaN, as transformers scores an entity group (`np.nanmean`),
    without nanmean's per-call cost (an error-state context) when there is no NaN."""
    if len(values) == 1:
        return float(values[0])
    if np.isnan(values).any():
        return float(np.nanmean(values))
    return float(values.mean())


def _group(
    labels: Sequence[str], scheme: Optional[Scheme], breaks: Optional[Sequence[bool]] = None
) -> List[Tuple[int, int]]:
    """Runs [a, b) of consecutive items that form one entity group.

    scheme None: transformers' `group_entities` rule (same tag, and not "B").
    `breaks[i]` stops item i from joining the previous one (a gap between words).
    """
    groups: List[Tuple[int, int]] = []
    begin = 0
    last_prefix, last_type = "", None
    for i, label in enumerate(labels):
        if scheme is None:
            prefix, typ = hf_get_tag(label)
            joins = i > begin and typ == last_type and prefix != "B"
        else:
            prefix, typ = split_tag(label, scheme)
            joins = (
                i > begin
                and typ == last_type
                and prefix in ("I", "E")
                and last_prefix in ("B", "I")
            )
        if breaks is not None and breaks[i]:
            joins = False
        if i > begin and not joins:
            groups.append((begin, i))
            begin = i
        last_prefix, last_type = prefix, typ
    if len(labels) > begin:
        groups.append((begin, len(labels)))
    return groups


def aggregate_window(
    probs: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    is_subword: np.ndarray,
    index: np.ndarray,
    id2label: Sequence[str],
    strategy: str,
    ignore_labels: Iterable[str] = ("O",),
) -> List[Entity]:
    """Entities of one window, exactly as transformers' pipeline finds them.

    probs: (n_tokens, n_labels) softmax scores of the non-special tokens.
    starts, ends: their character offsets. is_subword: see `subword_flags`.
    index: their positions in the window (for strategy "none").
    """
    return [
        entity
        for entity, _ in aggregate_window_words(
            probs, starts, ends, is_subword, index, id2label, strategy, ignore_labels
        )
    ]


def aggregate_window_words(
    probs: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    is_subword: np.ndarray,
    index: np.ndarray,
    id2label: Sequence[str],
    strategy: str,
    ignore_labels: Iterable[str] = ("O",),
) -> List[Tuple[Entity, List[Tuple[int, int]]]]:
    """`aggregate_window`, with the words of each entity: row ranges [a, b) of
    `probs`, one per word (one per token for "none" and "simple"), from which
    transformers builds the entity's "word" string."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Invalid aggregation strategy: {strategy!r}")
    ignore = set(ignore_labels)
    n = len(probs)
    if n == 0:
        return []
    if strategy in ("none", "simple"):
        ids = probs.argmax(axis=1)
        scores = probs[np.arange(n), ids]
        w_starts, w_ends, w_index = starts, ends, index
        word_rows = np.arange(n + 1)
    else:
        mask = is_subword.copy()
        mask[0] = False
        word_starts = np.flatnonzero(~mask)
        ids, scores = _word_scores(probs, word_starts, strategy)
        w_starts = starts[word_starts]
        w_ends = ends[np.append(word_starts[1:] - 1, n - 1)]
        w_index = index[word_starts]
        word_rows = np.append(word_starts, n)
    bounds = word_rows.tolist()
    labels = [id2label[i] for i in ids.tolist()]
    if strategy == "none":
        return [
            (
                Entity(labels[i], float(scores[i]), int(w_starts[i]), int(w_ends[i]), int(w_index[i])),
                [(i, i + 1)],
            )
            for i in range(n)
            if labels[i] not in ignore
        ]
    entities = []
    for a, b in _group(labels, scheme=None):
        group = entity_type(labels[a])
        if group in ignore:
            continue
        score = _mean(scores[a:b])
        entities.append(
            (
                Entity(group, score, int(w_starts[a]), int(w_ends[b - 1]), int(w_index[a])),
                [(bounds[w], bounds[w + 1]) for w in range(a, b)],
            )
        )
    return entities


def merge_overlapping(entities: List[Entity]) -> List[Entity]:
    """Merge the entities of overlapping windows, like transformers'
    `aggregate_overlapping_entities`: of entities that overlap, the longer wins,
    then the higher score."""
    if not entities:
        return entities
    ordered = sorted(entities, key=lambda e: e.start)
    merged = []
    previous = ordered[0]
    for entity in ordered:
        if previous.start <= entity.start < previous.end:
            length = entity.end - entity.start
            previous_length = previous.end - previous.start
            if length > previous_length or (
                length == previous_length and entity.score > previous.score
            ):
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged


@lru_cache(maxsize=32)
def _constraints(labels: Tuple[str, ...], scheme: Scheme) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    start, allowed, end = transition_constraints(labels, scheme)
    return np.array(start), np.array(allowed), np.array(end)


def aggregate_on_tokens(
    probs: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    tok_starts: np.ndarray,
    tok_ends: np.ndarray,
    tok_is_space: np.ndarray,
    id2label: Sequence[str],
    strategy: str,
    scheme: Scheme,
    ignore_labels: Iterable[str] = ("O",),
    decoding: str = "greedy",
) -> List[TokenEntity]:
    """Entities over given words (spaCy tokens) from model-token scores.

    probs, starts, ends: model tokens sorted by start, their offsets already
        stripped of whitespace and non-empty (see `alignment.strip_offsets`).
    tok_starts, tok_ends: character offsets of the words (without trailing
        whitespace); tok_is_space: words that are whitespace only.

    Each word takes the scores of the model tokens that start inside it, pooled by
    `strategy` ("first", "average" or "max", as transformers pools subwords). A
    word covered only by a model token that started in an earlier word continues
    that word's entity; a word with no model token at all (whitespace, or
    characters the tokenizer dropped) is outside every entity. Words are grouped
    into entities by the tag scheme, and whitespace words always break a group.

    decoding: "greedy" gives each word its best label (as transformers does; an
        "I-" after "O" starts an entity); "viterbi" gives each run of adjacent words
        the best label sequence that the tag scheme allows (an "I-T" only after
        "B-T"/"I-T"; with BIOES/BILUO every entity closed), from the same pooled
        scores. An entity's score is the mean of its words' scores for their labels.
    """
    if strategy not in WORD_STRATEGIES:
        raise ValueError(
            f"Strategy {strategy!r} does not aggregate words; use one of {WORD_STRATEGIES}"
        )
    ignore = set(ignore_labels)
    n_tok = len(tok_starts)
    if n_tok == 0 or len(probs) == 0:
        return []
    word = np.searchsorted(tok_starts, starts, side="right") - 1
    inside = (word >= 0) & (starts < tok_ends[np.maximum(word, 0)])
    probs, starts, ends, word = probs[inside], starts[inside], ends[inside], word[inside]
    if len(probs) == 0:
        return []
    first_of_word = np.ones(len(word), dtype=bool)
    first_of_word[1:] = word[1:] != word[:-1]
    row_starts = np.flatnonzero(first_of_word)
    rows = _word_rows(probs, row_starts, strategy)
    ids = rows.argmax(axis=1)
    owner = word[row_starts]
    # words continued by a model token that started in an earlier word
    last_word = np.searchsorted(tok_starts, ends, side="left") - 1
    continued = np.zeros(n_tok, dtype=bool)
    for w, lw in zip(word.tolist(), last_word.tolist()):
        if lw > w:
            continued[w + 1 : lw + 1] = True
    continued[owner] = False

    # one item per labelled word, stretched over the words it continues into
    owned = dict(zip(owner.tolist(), range(len(owner))))
    items: List[int] = []
    first: List[int] = []
    last: List[int] = []
    breaks: List[bool] = []
    for w in range(n_tok):
        j = owned.get(w)
        if j is not None and not tok_is_space[w]:
            breaks.append(not last or last[-1] != w - 1)
            items.append(j)
            first.append(w)
            last.append(w)
        elif continued[w] and last and last[-1] == w - 1:
            last[-1] = w
    if not items:
        return []
    item_rows = rows[items]
    if decoding == "viterbi":
        start, allowed, end = _constraints(tuple(id2label), scheme)
        chosen = np.empty(len(items), dtype=np.int64)
        bounds = np.append(np.flatnonzero(breaks), len(items)).tolist()
        for a, b in zip(bounds[:-1], bounds[1:]):
            chosen[a:b] = viterbi(item_rows[a:b], start, allowed, end)
    elif decoding == "greedy":
        chosen = ids[items]
    else:
        raise ValueError(f"Invalid decoding: {decoding!r}; use 'greedy' or 'viterbi'")
    item_scores = item_rows[np.arange(len(items)), chosen].astype(probs.dtype)
    labels = [id2label[i] for i in chosen.tolist()]
    entities: List[TokenEntity] = []
    for a, b in _group(labels, scheme=scheme, breaks=breaks):
        group = entity_type(labels[a])
        if group in ignore:
            continue
        score = _mean(item_scores[a:b])
        entities.append(TokenEntity(group, score, first[a], last[b - 1] + 1))
    return entities
