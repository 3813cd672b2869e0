"""Aggregation of token-classification scores into entities.

Two front ends share one implementation:

* `aggregate_window` reproduces transformers' `TokenClassificationPipeline`
  (`gather_pre_entities` -> `aggregate` -> `group_entities` -> ignore filter) for
  one window of model tokens, for all five strategies, and
  `merge_overlapping` reproduces its `aggregate_overlapping_entities`, used when a
  long text is split into several windows.
* `decode_words` labels *given* words (spaCy's tokens, or units of them) from
  the same scores, aligned by `alignment.align`, so that an entity can never
  start or end inside a word, nor run across a whitespace word such as a
  newline.

Pure logic: numpy only, no spaCy, no torch. Scores are the softmax probabilities
of the model, one row per model token, special tokens already removed.
"""
from functools import lru_cache
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike

from .alignment import Alignment, best_labels, pool_rows, pool_words
from .tags import entity_type, hf_get_tag, split_tag, transition_constraints
from .ty import Scheme
from .windows import Window


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
    index: int  # type: ignore[assignment]  # typeshed: a NamedTuple field named like tuple.index (transformers' "index")
    # the window the entity was found in (its position in the batch's windows)
    window: int = -1
    # the rows [a, b) of each of its words among the window's non-special tokens
    # (one per token for "none" and "simple"): what transformers builds the
    # entity's "word" string from
    words: Tuple[Tuple[int, int], ...] = ()


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
    return np.asarray(flags & ~unknown)


def viterbi(
    scores: np.ndarray,
    start: ArrayLike,
    allowed: ArrayLike,
    end: ArrayLike,
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
        return np.asarray(scores.argmax(axis=1))
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
    window: int = -1,
) -> List[Entity]:
    """Entities of one window, exactly as transformers' pipeline finds them,
    each with the rows of its words (`Entity.words`).

    probs: (n_tokens, n_labels) softmax scores of the non-special tokens.
    starts, ends: their character offsets. is_subword: see `subword_flags`.
    index: their positions in the window (for strategy "none").
    window: stamped on each entity (`Entity.window`).
    """
    ignore = set(ignore_labels)
    n = len(probs)
    if n == 0:
        return []
    if strategy in ("none", "simple"):
        ids, scores = best_labels(probs)
        w_starts, w_ends, w_index = starts, ends, index
        word_rows = np.arange(n + 1)
    else:
        mask = is_subword.copy()
        mask[0] = False
        word_starts = np.flatnonzero(~mask)
        ids, scores = best_labels(pool_rows(probs, word_starts, strategy))
        w_starts = starts[word_starts]
        w_ends = ends[np.append(word_starts[1:] - 1, n - 1)]
        w_index = index[word_starts]
        word_rows = np.append(word_starts, n)
    bounds = word_rows.tolist()
    labels = [id2label[i] for i in ids.tolist()]
    if strategy == "none":
        return [
            Entity(labels[i], float(scores[i]), int(w_starts[i]), int(w_ends[i]), int(w_index[i]), window, ((i, i + 1),))
            for i in range(n)
            if labels[i] not in ignore
        ]
    entities = []
    for a, b in _group(labels, scheme=None):
        group = entity_type(labels[a])
        if group in ignore:
            continue
        words = tuple((bounds[w], bounds[w + 1]) for w in range(a, b))
        entities.append(
            Entity(group, _mean(scores[a:b]), int(w_starts[a]), int(w_ends[b - 1]), int(w_index[a]), window, words)
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


def decode_words(
    rows: np.ndarray,
    alignment: Alignment,
    w_is_space: np.ndarray,
    id2label: Sequence[str],
    strategy: str,
    scheme: Scheme,
    ignore_labels: Iterable[str] = ("O",),
    decoding: str = "greedy",
) -> List[TokenEntity]:
    """Entities over words from the scores of the model tokens aligned with them.

    rows: (n_model, labels) softmax scores of the aligned model tokens.
    alignment: `alignment.align` of those tokens with the words.
    w_is_space: the words that are whitespace only.

    Each word takes the scores of the model tokens that start inside it, pooled
    by `strategy` ("first", "average" or "max", as transformers pools subwords).
    A word covered by a model token that started in the word before continues
    that word's entity; a word with no model token at all (whitespace, or
    characters the tokenizer dropped) is outside every entity. Words are grouped
    into entities by the tag scheme, and whitespace words always break a group.

    decoding: "greedy" gives each word its best label (as transformers does; an
        "I-" after "O" starts an entity); "viterbi" gives each run of adjacent words
        the best label sequence that the tag scheme allows (an "I-T" only after
        "B-T"/"I-T"; with BIOES/BILUO every entity closed), from the same pooled
        scores. An entity's score is the mean of its words' scores for their labels.
    RETURNS (List[TokenEntity]): entities in word indices.
    """
    ignore = set(ignore_labels)
    owners, pooled = pool_words(rows, alignment, strategy)
    if len(owners) == 0:
        return []
    # one item per labelled word, stretched over the words it covers after it
    items: List[int] = []
    first: List[int] = []
    last: List[int] = []
    breaks: List[bool] = []
    owned = dict(zip(owners.tolist(), range(len(owners))))
    cover = alignment.cover.tolist()
    for w in range(len(w_is_space)):
        j = owned.get(w)
        if j is not None and not w_is_space[w]:
            breaks.append(not last or last[-1] != w - 1)
            items.append(j)
            first.append(w)
            last.append(w)
        elif cover[w] >= 0 and last and last[-1] == w - 1:
            last[-1] = w
    if not items:
        return []
    item_rows = pooled[items]
    if decoding == "viterbi":
        start, allowed, end = _constraints(tuple(id2label), scheme)
        chosen = np.empty(len(items), dtype=np.int64)
        bounds = np.append(np.flatnonzero(breaks), len(items)).tolist()
        for a, b in zip(bounds[:-1], bounds[1:]):
            chosen[a:b] = viterbi(item_rows[a:b], start, allowed, end)
    elif decoding == "greedy":
        chosen = item_rows.argmax(axis=1)
    else:
        raise ValueError(f"Invalid decoding: {decoding!r}; use 'greedy' or 'viterbi'")
    item_scores = item_rows[np.arange(len(items)), chosen].astype(rows.dtype)
    labels = [id2label[i] for i in chosen.tolist()]
    entities: List[TokenEntity] = []
    for a, b in _group(labels, scheme=scheme, breaks=breaks):
        group = entity_type(labels[a])
        if group in ignore:
            continue
        entities.append(TokenEntity(group, _mean(item_scores[a:b]), first[a], last[b - 1] + 1))
    return entities


class ModelEntities(NamedTuple):
    """A text's entities as transformers finds them, and the windows they were
    found in (`Entity.window` indexes them)."""

    entities: List[Entity]
    windows: List[Window]
