"""Character offsets -> spaCy token spans.

Pure logic: numpy only, no spaCy, no torch. Words are given as arrays of
character offsets (`tok_starts`, `tok_ends`, end without trailing whitespace)
and a flag for whitespace-only tokens, so the functions work on any tokenization.
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

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


def strip_span(text: str, start: int, end: int) -> Tuple[int, int]:
    """Remove leading and trailing whitespace from text[start:end]."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def strip_offsets(
    text: str, starts: np.ndarray, ends: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    by_label: dict = {}
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
