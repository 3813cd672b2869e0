import numpy as np

from spacy_hf_ner.alignment import IGNORE_INDEX, first_subword_targets, strip_offsets, strip_span
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


# -- training targets: the first model token of each word -----------------------------


def test_first_subword_targets_labels_first_model_token_of_each_word():
    # text: "Sarah Parkerson went"  words: Sarah | Parkerson | went
    tok_starts, tok_ends = np.array([0, 6, 16]), np.array([5, 15, 20])
    space = np.zeros(3, dtype=bool)
    gold = np.array([1, 2, 0])
    # [CLS] Sarah Park ##er ##son went [SEP]; specials have start == end
    starts = np.array([0, 0, 6, 10, 12, 16, 0])
    ends = np.array([0, 5, 10, 12, 15, 20, 0])
    got = first_subword_targets(starts, ends, tok_starts, tok_ends, space, gold)
    assert got.tolist() == [IGNORE_INDEX, 1, 2, IGNORE_INDEX, IGNORE_INDEX, 0, IGNORE_INDEX]


def test_first_subword_targets_missing_gold_and_words_inside_a_model_token():
    # words "New" "-" "York" (spaCy split) but one model token "New-York"
    tok_starts, tok_ends = np.array([0, 3, 4]), np.array([3, 4, 8])
    space = np.zeros(3, dtype=bool)
    starts, ends = np.array([0]), np.array([8])
    got = first_subword_targets(starts, ends, tok_starts, tok_ends, space, np.array([5, 6, 6]))
    assert got.tolist() == [5]  # the word the model token starts in
    got = first_subword_targets(starts, ends, tok_starts, tok_ends, space, np.array([IGNORE_INDEX, 6, 6]))
    assert got.tolist() == [IGNORE_INDEX]


def test_first_subword_targets_skip_whitespace_words():
    tok_starts, tok_ends = np.array([0, 2]), np.array([1, 3])
    space = np.array([False, True])
    got = first_subword_targets(np.array([0, 2]), np.array([1, 3]), tok_starts, tok_ends, space, np.array([4, 7]))
    assert got.tolist() == [4, IGNORE_INDEX]


# -- words made of several spaCy tokens (units) ------------------------------------------


import pytest  # noqa: E402
import spacy  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

from spacy_hf_ner.alignment import DEFAULT_INFIXES, align, infix_unit_ids, units_of  # noqa: E402

BLANK = spacy.blank("en")


def unit_texts(text):
    """spaCy's tokens of `text` grouped by `infix_unit_ids`, as strings."""
    doc = BLANK.make_doc(text)
    starts = np.array([t.idx for t in doc], dtype=np.int64)
    ends = starts + np.array([len(t) for t in doc], dtype=np.int64)
    units = units_of(infix_unit_ids(text, starts, ends), starts, ends, np.array([t.is_space for t in doc]))
    return [text[a:b] for a, b in zip(units.starts.tolist(), units.ends.tolist())]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Jean-Luc Brassard of AL-AIN", ["Jean-Luc", "Brassard", "of", "AL-AIN"]),
        ("Rolls-Royce and KwaZulu-Natal", ["Rolls-Royce", "and", "KwaZulu-Natal"]),
        ("Saint-Jean-de-Luz", ["Saint-Jean-de-Luz"]),
        ("won 2-1 on 1996-12-06", ["won", "2-1", "on", "1996-12-06"]),
        ("send an e-mail", ["send", "an", "e-mail"]),
        ("and/or", ["and/or"]),
        # spaCy's own tokens where no infix joins them
        ("Google's CEO", ["Google", "'s", "CEO"]),
        ("U.S.-based IBM", ["U.S.-based", "IBM"]),
        ("New York-based firm", ["New", "York-based", "firm"]),
        ("well - known", ["well", "-", "known"]),
        ("Paris--Berlin", ["Paris", "--", "Berlin"]),
        ("see https://example.com/a-b/c?x=1-2 now", ["see", "https://example.com/a-b/c?x=1-2", "now"]),
        ("mail john.smith-jr@example-mail.com", ["mail", "john.smith-jr@example-mail.com"]),
        ("x - - y", ["x", "-", "-", "y"]),
    ],
)
def test_infix_units_on_spacy_tokens(text, expected):
    assert unit_texts(text) == expected


def test_infix_units_only_join_the_infixes_given():
    text = "Jean-Luc and/or"
    doc = BLANK.make_doc(text)
    starts = np.array([t.idx for t in doc])
    ends = starts + np.array([len(t) for t in doc])
    assert len(set(infix_unit_ids(text, starts, ends, ["-"]).tolist())) == 2 + ("and/or" != doc[-1].text) * 2
    assert infix_unit_ids(text, starts, ends, []).tolist() == list(range(len(doc)))


WORDISH = st.text(alphabet=st.sampled_from(list("abAB12-/ .\n'")), max_size=40)


@given(WORDISH)
@settings(max_examples=300, deadline=None)
def test_infix_units_are_runs_of_touching_tokens(text):
    """Units are consecutive runs of tokens with no whitespace inside, every
    token is in exactly one, and a multi-token unit alternates word and infix."""
    doc = BLANK.make_doc(text)
    starts = np.array([t.idx for t in doc], dtype=np.int64)
    ends = starts + np.array([len(t) for t in doc], dtype=np.int64)
    ids = infix_unit_ids(text, starts, ends)
    assert len(ids) == len(doc)
    if len(ids):
        assert ids[0] == 0 and set(np.diff(ids).tolist()) <= {0, 1}
    units = units_of(ids, starts, ends, np.array([t.is_space for t in doc], dtype=bool))
    for u, (a, b) in enumerate(zip(units.first_token.tolist(), units.last_token.tolist())):
        span = text[units.starts[u] : units.ends[u]]
        if b > a:
            assert not any(c.isspace() for c in span)
            assert all(doc[i].text in DEFAULT_INFIXES for i in range(a + 1, b, 2))
            assert doc[a].text[-1].isalnum() and doc[b].text[0].isalnum()


# -- model tokens -> words -----------------------------------------------------------


def test_align_owner_first_and_cover():
    text = "New York\nis big"
    # words: New, York, \n, is, big ; model tokens: "NewYork"-like piece over two words
    w_starts, w_ends, w_space = arrays(text, ["New", "York", "\n", "is", "big"])
    starts, ends = np.array([0, 9, 12, 13]), np.array([8, 11, 13, 15])  # "New York", "is", "b", "ig"
    alignment = align(starts, ends, w_starts, w_ends, w_space)
    assert alignment.owner.tolist() == [0, 3, 4, 4]
    assert alignment.first.tolist() == [0, -1, -1, 1, 2]
    assert alignment.cover.tolist() == [-1, 0, -1, -1, -1]


def test_a_whitespace_word_is_never_covered():
    """BERT deletes control characters such as \\x0c that Python and spaCy
    count as whitespace, so one model token can run across them: the words
    after the whitespace are not continued by it."""
    text = "\u00cc\x0c\u00d2,"
    w_starts, w_ends, w_space = arrays(text, ["\u00cc", "\x0c", "\u00d2", ","])
    alignment = align(np.array([0, 3]), np.array([3, 4]), w_starts, w_ends, w_space)
    assert alignment.cover.tolist() == [-1, -1, 0, -1]
    assert alignment.first.tolist() == [0, -1, -1, 1]
