"""The aggregation logic on hand-made scores: no model, no spaCy."""
import itertools

import numpy as np
import pytest

from spacy_hf_ner.aggregation import (
    Entity,
    TokenEntity,
    aggregate_window,
    decode_words as decode_aligned,
    merge_overlapping,
    subword_flags,
    viterbi,
)
from spacy_hf_ner.alignment import align
from spacy_hf_ner.tags import transition_constraints


def aggregate_on_tokens(probs, starts, ends, tok_starts, tok_ends, tok_is_space, id2label, strategy, scheme, ignore_labels=("O",), decoding="greedy"):
    """Entities over given words: align the model tokens with them, then decode."""
    alignment = align(starts, ends, tok_starts, tok_ends, tok_is_space)
    return decode_aligned(probs, alignment, tok_is_space, id2label, strategy, scheme, ignore_labels, decoding)

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def probs_for(labels, conf=0.9):
    """Rows where `label` has probability `conf` (or the given float per row)."""
    rows = []
    for item in labels:
        label, c = item if isinstance(item, tuple) else (item, conf)
        row = np.full(len(LABELS), (1 - c) / (len(LABELS) - 1), dtype=np.float32)
        row[LABELS.index(label)] = c
        rows.append(row)
    return np.stack(rows)


def window(text, pieces):
    """Offsets of `pieces` (substrings, in order) in `text`."""
    starts, ends, pos = [], [], 0
    for piece in pieces:
        s = text.index(piece, pos)
        starts.append(s)
        ends.append(s + len(piece))
        pos = s + len(piece)
    return np.array(starts), np.array(ends)


def run(text, pieces, labels, strategy, subword=None, ignore=("O",)):
    starts, ends = window(text, pieces)
    probs = probs_for(labels)
    is_sub = np.array(subword if subword is not None else [False] * len(pieces))
    return aggregate_window(probs, starts, ends, is_sub, np.arange(1, len(pieces) + 1), LABELS, strategy, ignore)


TEXT = "Sarah Jessica Parker works at Google"
PIECES = ["Sarah", "Jess", "ica", "Parker", "works", "at", "Google"]
SUB = [False, False, True, False, False, False, False]


def test_simple_groups_bio_runs():
    ents = run(TEXT, PIECES, ["B-PER", "I-PER", "I-PER", "I-PER", "O", "O", "B-ORG"], "simple", SUB)
    assert [(e.label, e.start, e.end) for e in ents] == [("PER", 0, 20), ("ORG", 30, 36)]
    assert ents[0].score == pytest.approx(0.9)


def test_b_starts_new_group_and_i_after_o_starts_one():
    ents = run(TEXT, PIECES, ["B-PER", "B-PER", "I-PER", "O", "O", "I-ORG", "I-ORG"], "simple", SUB)
    assert [(e.label, TEXT[e.start:e.end]) for e in ents] == [
        ("PER", "Sarah"), ("PER", "Jessica"), ("ORG", "at Google")
    ]


def test_bare_labels_continue_runs():
    labels = ["O", "PER", "LOC"]
    text = "Sarah Jessica Paris"
    starts, ends = window(text, ["Sarah", "Jessica", "Paris"])
    probs = np.array([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    ents = aggregate_window(probs, starts, ends, np.zeros(3, bool), np.arange(3), labels, "simple")
    assert [(e.label, text[e.start:e.end]) for e in ents] == [("PER", "Sarah Jessica"), ("LOC", "Paris")]


def test_simple_splits_a_word_when_subwords_disagree():
    ents = run(TEXT, PIECES, ["B-PER", "B-PER", "B-LOC", "I-PER", "O", "O", "O"], "simple", SUB)
    assert [(e.label, TEXT[e.start:e.end]) for e in ents] == [
        ("PER", "Sarah"), ("PER", "Jess"), ("LOC", "ica"), ("PER", "Parker")
    ]


@pytest.mark.parametrize(
    "strategy,expected",
    [("first", [("PER", "Sarah"), ("PER", "Jessica")]), ("max", [("PER", "Sarah"), ("LOC", "Jessica")])],
)
def test_word_strategies_force_agreement(strategy, expected):
    labels = ["B-PER", ("B-PER", 0.6), ("B-LOC", 0.95), "O", "O", "O", "O"]
    starts, ends = window(TEXT, PIECES)
    probs = probs_for(labels)
    ents = aggregate_window(probs, starts, ends, np.array(SUB), np.arange(7), LABELS, strategy)
    assert [(e.label, TEXT[e.start:e.end]) for e in ents] == expected


def test_average_pools_subword_scores():
    starts, ends = window(TEXT, PIECES)
    probs = probs_for(["B-PER", "B-PER", "B-LOC", "O", "O", "O", "O"])
    probs[1] = [0.0, 0.5, 0.0, 0.0, 0.0, 0.5, 0.0]
    probs[2] = [0.0, 0.3, 0.0, 0.0, 0.0, 0.7, 0.0]
    ents = aggregate_window(probs, starts, ends, np.array(SUB), np.arange(7), LABELS, "average")
    assert [(e.label, TEXT[e.start:e.end]) for e in ents] == [("PER", "Sarah"), ("LOC", "Jessica")]
    assert ents[1].score == pytest.approx(0.6)


def test_first_subword_flag_is_ignored_on_first_token():
    starts, ends = window(TEXT, PIECES)
    probs = probs_for(["B-PER", "I-PER", "I-PER", "I-PER", "O", "O", "O"])
    sub = np.array([True] + SUB[1:])
    ents = aggregate_window(probs, starts, ends, sub, np.arange(7), LABELS, "first")
    assert [(e.label, TEXT[e.start:e.end]) for e in ents] == [("PER", "Sarah Jessica Parker")]


def test_none_returns_raw_tokens_with_index():
    ents = run(TEXT, PIECES, ["B-PER", "I-PER", "I-PER", "O", "O", "O", "B-ORG"], "none", SUB)
    assert [(e.label, e.index, TEXT[e.start:e.end]) for e in ents] == [
        ("B-PER", 1, "Sarah"), ("I-PER", 2, "Jess"), ("I-PER", 3, "ica"), ("B-ORG", 7, "Google")
    ]


def test_ignore_labels_filters_groups_and_raw_labels():
    labels = ["B-PER", "I-PER", "I-PER", "I-PER", "O", "O", "B-ORG"]
    assert [e.label for e in run(TEXT, PIECES, labels, "first", SUB, ignore=["O", "ORG"])] == ["PER"]
    assert {e.label for e in run(TEXT, PIECES, labels, "none", SUB, ignore=["O", "B-ORG"])} == {"B-PER", "I-PER"}


def test_empty_window():
    empty = np.zeros((0, len(LABELS)), np.float32)
    z = np.zeros(0, np.int64)
    assert aggregate_window(empty, z, z, z.astype(bool), z, LABELS, "first") == []


def test_unknown_strategy():
    with pytest.raises(ValueError):
        run(TEXT, PIECES, ["O"] * 7, "mean")


def test_subword_flags_word_aware_and_unknown():
    text = "Jessica 😀x"
    starts, ends = np.array([0, 4, 8, 9]), np.array([4, 7, 9, 10])
    lengths = np.array([4, 5, 5, 3])  # "Jess", "##ica", "[UNK]", "##x"
    unk = np.array([False, False, True, False])
    assert subword_flags(lengths, starts, ends, unk, text, True).tolist() == [False, True, False, True]


def test_subword_flags_fallback_heuristic():
    text = "New York,ok"
    starts, ends = np.array([0, 4, 8, 9]), np.array([3, 8, 9, 11])
    flags = subword_flags(np.zeros(4, int), starts, ends, np.zeros(4, bool), text, False)
    assert flags.tolist() == [False, False, True, True]


def test_merge_overlapping_prefers_longer_then_higher_score():
    ents = [
        Entity("PER", 0.9, 0, 5, 1), Entity("PER", 0.8, 0, 13, 1), Entity("LOC", 0.7, 20, 25, 5),
        Entity("LOC", 0.95, 20, 25, 1), Entity("ORG", 0.5, 30, 35, 9),
    ]
    merged = merge_overlapping(ents)
    assert [(e.label, e.start, e.end, e.score) for e in merged] == [
        ("PER", 0, 13, 0.8), ("LOC", 20, 25, 0.95), ("ORG", 30, 35, 0.5)
    ]
    assert merge_overlapping([]) == []


# -- aggregation over given words (spaCy tokens) ----------------------------


def words_of(text, words):
    starts, ends = window(text, words)
    return starts, ends, np.array([w.isspace() for w in words])


def on_tokens(text, words, pieces, labels, strategy="first", scheme="bio", label_set=LABELS):
    ts, te, sp = words_of(text, words)
    starts, ends = window(text, pieces)
    return aggregate_on_tokens(probs_for(labels), starts, ends, ts, te, sp, label_set, strategy, scheme)


def test_newline_breaks_an_entity():
    text = "Angela Merkel\nParis"
    words = ["Angela", "Merkel", "\n", "Paris"]
    ents = on_tokens(text, words, ["Angela", "Merkel", "Paris"], ["B-PER", "I-PER", "I-PER"])
    assert ents == [TokenEntity("PER", pytest.approx(0.9), 0, 2), TokenEntity("PER", pytest.approx(0.9), 3, 4)]


def test_subwords_pool_into_their_token():
    text = "Jessica works"
    ents = on_tokens(text, ["Jessica", "works"], ["Jess", "ica", "works"], ["B-PER", "B-LOC", "O"])
    assert [(e.label, e.start, e.end) for e in ents] == [("PER", 0, 1)]
    ents = on_tokens(text, ["Jessica", "works"], ["Jess", "ica", "works"], ["B-PER", ("B-LOC", 0.99), "O"], "max")
    assert [(e.label, e.start, e.end) for e in ents] == [("LOC", 0, 1)]


def test_model_token_spanning_two_words_continues_the_entity():
    # spaCy splits "NewYork" differently from the model: "New|York" vs one piece
    text = "in NewYork today"
    ents = on_tokens(text, ["in", "New", "York", "today"], ["in", "NewYork", "today"], ["O", "B-LOC", "O"])
    assert [(e.label, e.start, e.end) for e in ents] == [("LOC", 1, 3)]


def test_word_without_model_tokens_is_outside():
    text = "Paris \u200b Berlin"
    words = ["Paris", "\u200b", "Berlin"]
    ents = on_tokens(text, words, ["Paris", "Berlin"], ["B-LOC", "I-LOC"])
    assert [(e.start, e.end) for e in ents] == [(0, 1), (2, 3)]


def test_bioes_scheme_closes_entities():
    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    text = "Ann Lee Bo Jo"
    words = ["Ann", "Lee", "Bo", "Jo"]
    ts, te, sp = words_of(text, words)
    probs = np.eye(5, dtype=np.float32)[[1, 3, 4, 4]]
    ents = aggregate_on_tokens(probs, ts, te, ts, te, sp, labels, "first", "bioes")
    assert [(e.label, e.start, e.end) for e in ents] == [("PER", 0, 2), ("PER", 2, 3), ("PER", 3, 4)]


def test_on_tokens_rejects_strategies_without_words():
    with pytest.raises(ValueError):
        on_tokens("a", ["a"], ["a"], ["O"], "simple")


def test_on_tokens_empty_inputs():
    z = np.zeros(0, np.int64)
    assert aggregate_on_tokens(np.zeros((0, 7), np.float32), z, z, z, z, z.astype(bool), LABELS, "first", "bio") == []


# -- constrained (Viterbi) decoding ---------------------------------------------


def _brute_force_best(scores, labels, scheme):
    """The best allowed sequence by enumeration (tiny inputs only)."""
    start, allowed, end = transition_constraints(labels, scheme)
    best, best_path = -np.inf, None
    for path in itertools.product(range(len(labels)), repeat=len(scores)):
        ok = start[path[0]] and end[path[-1]] and all(
            allowed[a][b] for a, b in zip(path[:-1], path[1:])
        )
        if ok:
            value = float(np.sum(np.log(scores[np.arange(len(path)), path])))
            if value > best:
                best, best_path = value, path
    return best, best_path


@pytest.mark.parametrize("labels,scheme", [
    (["O", "B-PER", "I-PER", "B-ORG", "I-ORG"], "bio"),
    (["O", "B-PER", "I-PER", "E-PER", "S-PER"], "bioes"),
])
def test_viterbi_finds_the_best_allowed_sequence(labels, scheme):
    rng = np.random.default_rng(0)
    start, allowed, end = transition_constraints(labels, scheme)
    for n in (1, 2, 3, 4):
        for _ in range(25):
            scores = rng.dirichlet(np.full(len(labels), 0.3), size=n)
            path = viterbi(scores, start, allowed, end)
            best, _ = _brute_force_best(scores, labels, scheme)
            got = float(np.sum(np.log(scores[np.arange(n), path])))
            assert got == pytest.approx(best)
            assert start[path[0]] and end[path[-1]]
            assert all(allowed[a][b] for a, b in zip(path[:-1], path[1:]))


def test_viterbi_without_any_allowed_sequence_falls_back_to_argmax():
    scores = np.array([[0.2, 0.8], [0.7, 0.3]])
    assert viterbi(scores, [False, False], [[True] * 2] * 2, [True, True]).tolist() == [1, 0]
    assert viterbi(np.zeros((0, 2)), [True] * 2, [[True] * 2] * 2, [True] * 2).tolist() == []


def decode_words(text, words, rows, decoding):
    """Entities over whitespace-split-like `words`, one model token per word."""
    ts, te, sp = words_of(text, words)
    keep = ~sp
    return [
        (e.label, e.start, e.end)
        for e in aggregate_on_tokens(
            rows.astype(np.float32), ts[keep], te[keep], ts, te, sp, LABELS, "first", "bio", decoding=decoding
        )
    ]


def test_viterbi_prefers_the_likely_opening_over_an_orphan_continuation():
    text = "met Angela Merkel in Paris"
    words = text.split()
    rows = probs_for(["O", "I-PER", "I-PER", "O", "I-LOC"])
    rows[1] = [0.02, 0.40, 0.55, 0.01, 0.01, 0.005, 0.005]  # I-PER > B-PER > O
    rows[4] = [0.30, 0.01, 0.01, 0.01, 0.01, 0.25, 0.41]  # I-LOC > O > B-LOC
    assert decode_words(text, words, rows, "greedy") == [("PER", 1, 3), ("LOC", 4, 5)]
    # PER: B-PER (0.40) then I-PER; LOC: O (0.30) beats B-LOC (0.25), I-LOC cannot start
    assert decode_words(text, words, rows, "viterbi") == [("PER", 1, 3)]
    ts, te, sp = words_of(text, words)
    best = aggregate_on_tokens(rows.astype(np.float32), ts, te, ts, te, sp, LABELS, "first", "bio", decoding="viterbi")
    assert best[0].score == pytest.approx((0.40 + 0.9) / 2)


def test_viterbi_fixes_a_type_switch_inside_an_entity():
    text = "the Bank of England said"
    words = text.split()
    rows = probs_for(["O", "B-ORG", "I-ORG", "I-LOC", "O"])
    rows[3] = [0.01, 0.01, 0.01, 0.01, 0.40, 0.01, 0.55]  # I-LOC > I-ORG
    assert decode_words(text, words, rows, "greedy") == [("ORG", 1, 3), ("LOC", 3, 4)]
    assert decode_words(text, words, rows, "viterbi") == [("ORG", 1, 4)]


def test_viterbi_restarts_after_a_whitespace_word():
    text = "Angela Merkel\nParis"
    words = ["Angela", "Merkel", "\n", "Paris"]
    rows = probs_for(["B-PER", "I-PER", "O"])
    rows[2] = [0.30, 0.01, 0.01, 0.01, 0.01, 0.25, 0.41]  # I-LOC, but it opens a new run
    assert decode_words(text, words, rows, "viterbi") == [("PER", 0, 2)]


def test_viterbi_on_bioes_never_leaves_an_entity_open():
    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    text = "Ann Lee said"
    words = text.split()
    ts, te, sp = words_of(text, words)
    probs = np.array(
        [[0.1, 0.6, 0.1, 0.1, 0.1], [0.5, 0.05, 0.05, 0.3, 0.1], [0.9, 0.025, 0.025, 0.025, 0.025]],
        dtype=np.float32,
    )
    greedy = aggregate_on_tokens(probs, ts, te, ts, te, sp, labels, "first", "bioes")
    best = aggregate_on_tokens(probs, ts, te, ts, te, sp, labels, "first", "bioes", decoding="viterbi")
    assert [(e.start, e.end) for e in greedy] == [(0, 1)]  # B-PER O: an open entity
    assert [(e.start, e.end) for e in best] == [(0, 2)]  # B-PER E-PER


def test_unknown_decoding_is_refused():
    with pytest.raises(ValueError, match="decoding"):
        decode_words("a", ["a"], probs_for(["O"]), "beam")


# -- whitespace never inside an entity (property) ------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from spacy_hf_ner.alignment import strip_offsets  # noqa: E402

# every character Python counts as whitespace (spaCy's is_space agrees), among
# them those BERT's normalizer deletes (\x0b, \x0c, \x1c-\x1f, \x85)
WHITESPACE = [chr(c) for c in range(0x3000 + 1) if chr(c).isspace()]


@st.composite
def text_words_tokens(draw):
    """A text of letters and whitespace; its words (runs of either kind, as a
    tokenizer splits them); model tokens that cut the text anywhere, some of
    them running across whitespace (as BERT's tokens do over deleted characters)."""
    pieces = draw(
        st.lists(
            st.one_of(st.text(alphabet="abcXYZ\u00cc\u00d2", min_size=1, max_size=4), st.text(alphabet=WHITESPACE, min_size=1, max_size=2)),
            min_size=1,
            max_size=12,
        )
    )
    text = "".join(pieces)
    bounds = [0]
    for piece in pieces:
        bounds.append(bounds[-1] + len(piece))
    words = []  # merge neighbouring pieces of the same kind into one word
    for a, b in zip(bounds[:-1], bounds[1:]):
        if words and text[a].isspace() == text[words[-1][0]].isspace():
            words[-1] = (words[-1][0], b)
        else:
            words.append((a, b))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=len(text)))) | {0, len(text)})
    starts, ends, keep = strip_offsets(text, np.array(cuts[:-1]), np.array(cuts[1:]))
    return text, words, starts[keep], ends[keep]


@given(text_words_tokens(), st.integers(0, 2**32 - 1), st.sampled_from(["greedy", "viterbi"]))
@settings(max_examples=400, deadline=None)
def test_no_entity_spans_a_whitespace_word(case, seed, decoding):
    text, words, starts, ends = case
    w_starts = np.array([a for a, _ in words])
    w_ends = np.array([b for _, b in words])
    w_space = np.array([text[a].isspace() for a, _ in words])
    probs = np.random.default_rng(seed).dirichlet(np.ones(len(LABELS)) * 0.3, size=len(starts)).astype(np.float32)
    for ent in aggregate_on_tokens(probs, starts, ends, w_starts, w_ends, w_space, LABELS, "first", "bio", decoding=decoding):
        assert not w_space[ent.start:ent.end].any(), (text, ent)
