"""Entities in character offsets -> spans of spaCy tokens, and overlapping
spans -> a set `doc.ents` can hold.

Pure logic: numpy only, no spaCy, no torch. Tokens are given as arrays of
character offsets (`tok_starts`, `tok_ends`, end without trailing whitespace)
and a flag for whitespace-only tokens.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np


class Placed(NamedTuple):
    """A span over tokens [start, end) with its label and score.

    source: position of the entity in the list it was placed from, so callers can
        report which inputs were merged or lost.
    snapped: True when the character offsets did not fall on token boundaries.
    """

    label: str
    score: float
    start: int
    end: int
    source: int
    snapped: bool


def snap(
    start: int,
    end: int,
    tok_starts: np.ndarray,
    tok_ends: np.ndarray,
    tok_is_space: np.ndarray,
) -> Optional[Tuple[int, int, bool]]:
    """The smallest run of tokens covering text[start:end].

    Returns (first token, end token exclusive, snapped) or None when the
    offsets cover no token. Whitespace tokens at the edges are never included;
    `snapped` is True when the offsets did not match token boundaries exactly.
    """
    if end <= start:
        return None
    first = int(np.searchsorted(tok_ends, start, side="right"))
    stop = int(np.searchsorted(tok_starts, end, side="left"))
    while first < stop and tok_is_space[first]:
        first += 1
    while stop > first and tok_is_space[stop - 1]:
        stop -= 1
    if first >= stop:
        return None
    exact = tok_starts[first] == start and tok_ends[stop - 1] == end
    return first, stop, not bool(exact)


def resolve_overlaps(spans: Sequence[Placed]) -> Tuple[List[Placed], List[Placed], List[Placed]]:
    """Make spans non-overlapping, deterministically.

    1. Overlapping spans of the same label are one entity cut in pieces (a word
       the model split): they merge into their union, with the highest score.
    2. Of overlapping spans with different labels, the higher score wins, then
       the longer span, then the earlier one.

    Returns (kept spans in text order, spans merged into another, spans lost to a
    conflict).
    """
    merged_away: List[Placed] = []
    by_label: Dict[str, List[Placed]] = {}
    for span in sorted(spans, key=lambda s: (s.start, s.end, s.source)):
        runs = by_label.setdefault(span.label, [])
        if runs and span.start < runs[-1].end:
            last = runs[-1]
            keep, other = (last, span) if last.score >= span.score else (span, last)
            runs[-1] = keep._replace(
                start=min(last.start, span.start),
                end=max(last.end, span.end),
                snapped=last.snapped or span.snapped,
            )
            merged_away.append(other)
        else:
            runs.append(span)
    candidates = [s for runs in by_label.values() for s in runs]
    candidates.sort(key=lambda s: (-s.score, -(s.end - s.start), s.start, s.label))
    taken = np.zeros(max((s.end for s in candidates), default=0), dtype=bool)
    kept: List[Placed] = []
    lost: List[Placed] = []
    for span in candidates:
        if taken[span.start : span.end].any():
            lost.append(span)
        else:
            taken[span.start : span.end] = True
            kept.append(span)
    kept.sort(key=lambda s: s.start)
    return kept, merged_away, lost


def merge_existing(
    existing: Sequence[Tuple[int, int]], new: Sequence[Tuple[int, int]], policy: str
) -> Tuple[List[int], List[int]]:
    """Which spans to keep when new spans meet spans already there, under the
    `existing_ents` policy: "replace" keeps only the new ones, "overwrite" the
    new ones and the old ones they don't overlap, "keep" the old ones and the
    new ones that don't overlap them.

    existing, new: (start, end) token spans.
    RETURNS: (indices of `existing` kept, indices of `new` kept).
    """
    if policy == "replace" or not existing:
        return [], list(range(len(new)))
    first, second = (existing, new) if policy == "keep" else (new, existing)
    taken = np.zeros(max(end for _, end in [*first, *second]), dtype=bool)
    for start, end in first:
        taken[start:end] = True
    rest = [i for i, (start, end) in enumerate(second) if not taken[start:end].any()]
    if policy == "keep":
        return list(range(len(existing))), rest
    return rest, list(range(len(new)))
