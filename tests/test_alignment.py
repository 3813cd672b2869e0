import numpy as np

from spacy_hf_ner.alignment import strip_offsets, strip_span
from spacy_hf_ner.placement import Placed, resolve_overlaps, snap

TEXT = "I  met Jessica-Lee in\nNew York ."
# tokens: "I", " ", "met", "Jessica-Lee", "in", "\n", "New", "York", "."
TOKENS = ["I", " ", "met", "Jessica-Lee", "in", "\n", "New", "York", "."]


def arrays(text=TEXT, tokens=TOKENS):
    starts, pos = [], 0
    for t in tokens:
        s = text.index(t, pos)
        starts.append(s)
        pos = s + len(t)
    starts = np.array(starts)
    ends = starts + np.array([len(t) for t in tokens])
    return starts, ends, np.array([t.isspace() for t in tokens])


def test_strip_span():
    assert strip_span(" a b \n", 0, 6) == (1, 4)
    assert strip_span("   ", 0, 3)[0] == strip_span("   ", 0, 3)[1]


def test_strip_offsets_marks_empty():
    starts, ends, keep = strip_offsets(" ab  c", np.array([0, 3, 5, 2]), np.array([3, 5, 6, 2]))
    assert starts.tolist()[:3] == [1, 5, 5] and ends.tolist()[:3] == [3, 5, 6]
    assert keep.tolist() == [True, False, True, False]


def test_snap_exact_and_expanded():
    ts, te, sp = arrays()
    assert snap(TEXT.index("New"), TEXT.index("York") + 4, ts, te, sp) == (6, 8, False)
    # a piece of a token expands to the whole token
    assert snap(TEXT.index("Jessica"), TEXT.index("Jessica") + 7, ts, te, sp) == (3, 4, True)


def test_snap_never_includes_whitespace_tokens():
    ts, te, sp = arrays()
    # offsets from "in" to "New" cross the newline token but keep it inside
    start, end = TEXT.index("in"), TEXT.index("New") + 3
    assert snap(start, end, ts, te, sp) == (4, 7, False)
    # offsets covering only whitespace place nothing
    assert snap(1, 3, ts, te, sp) is None
    assert snap(5, 5, ts, te, sp) is None


def test_resolve_overlaps_merges_same_label():
    spans = [Placed("LOC", 0.6, 3, 4, 0, True), Placed("LOC", 0.9, 3, 5, 1, True)]
    kept, merged, lost = resolve_overlaps(spans)
    assert [(p.label, p.start, p.end, p.score) for p in kept] == [("LOC", 3, 5, 0.9)]
    assert len(merged) == 1 and lost == []


def test_resolve_overlaps_conflict_goes_to_higher_score():
    spans = [Placed("PER", 0.6, 3, 4, 0, True), Placed("ORG", 0.9, 3, 4, 1, True), Placed("LOC", 0.5, 6, 8, 2, False)]
    kept, merged, lost = resolve_overlaps(spans)
    assert [(p.label, p.start) for p in kept] == [("ORG", 3), ("LOC", 6)]
    assert [p.label for p in lost] == ["PER"]


def test_resolve_overlaps_is_order_independent():
    spans = [Placed("A", 0.5, 0, 2, 0, False), Placed("B", 0.5, 1, 3, 1, False), Placed("C", 0.5, 2, 4, 2, False)]
    first = resolve_overlaps(spans)[0]
    second = resolve_overlaps(list(reversed(spans)))[0]
    assert [(p.label, p.start) for p in first] == [(p.label, p.start) for p in second]
