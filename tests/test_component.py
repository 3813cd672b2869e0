"""hf_ner end to end on tiny random models built in fixtures."""
import warnings

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import ConfigValidationError
from transformers import AutoModelForTokenClassification

from spacy_hf_ner import HFNerWarning

from texts import TEXTS


def make(model, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(model), **config})
    return nlp


def test_entry_point_and_labels(bert_ner):
    nlp = make(bert_ner)
    assert nlp.get_pipe("hf_ner").labels == []  # nothing loaded yet
    nlp.initialize()
    assert nlp.get_pipe("hf_ner").labels == ["LOC", "MISC", "ORG", "PER"]


def test_ents_have_scores_and_are_token_aligned(bert_ner):
    nlp = make(bert_ner)
    doc = nlp(TEXTS[0])
    assert len(doc.ents) > 0
    for ent in doc.ents:
        assert 0.0 < ent._.hf_score <= 1.0
        assert ent.label_ in {"PER", "ORG", "LOC", "MISC"}
        assert not ent[0].is_space and not ent[-1].is_space


def test_spacy_words_match_predict(bert_ner):
    nlp = make(bert_ner)
    doc = nlp.make_doc(TEXTS[2])
    predicted = nlp.get_pipe("hf_ner").predict([doc])[0]
    doc = nlp(TEXTS[2])
    assert [(e.label_, e.start, e.end) for e in doc.ents] == [(p.label, p.start, p.end) for p in predicted]
    for ent, p in zip(doc.ents, predicted):
        assert ent._.hf_score == pytest.approx(p.score)


def test_spacy_words_never_glue_across_newline(bert_ner):
    nlp = make(bert_ner)
    for doc in nlp.pipe(["Angela Merkel\nParis", "John Smith\n\nBerlin London"]):
        for ent in doc.ents:
            assert "\n" not in ent.text


def test_model_words_are_snapped_not_dropped(bert_ner):
    """Every transformers entity is written to doc.ents, exact or snapped to tokens,
    or reported: predicted == written + merged + conflicts + unplaced."""
    nlp = make(bert_ner, words="model", aggregation_strategy="simple")
    ner = nlp.get_pipe("hf_ner")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HFNerWarning)
        docs = list(nlp.pipe(TEXTS))
    s = ner.stats
    assert s["predicted"] == s["written"] + s["merged"] + s["conflicts"] + s["unplaced"] + s["below_threshold"]
    assert s["snapped"] > 0  # "simple" cuts words, so some entities needed snapping
    assert sum(len(d.ents) for d in docs) == s["written"]


def test_conflicts_warn_and_stay_in_spans(bert_ner):
    nlp = make(bert_ner, words="model", aggregation_strategy="simple", annotate="both")
    with pytest.warns(HFNerWarning, match="could not be written"):
        docs = list(nlp.pipe(TEXTS))
    ner = nlp.get_pipe("hf_ner")
    assert ner.stats["conflicts"] > 0
    n_spans = sum(len(d.spans["hf_ner"]) for d in docs)
    assert n_spans == ner.stats["written"] + ner.stats["conflicts"]
    for doc in docs:
        group = doc.spans["hf_ner"]
        assert len(group.attrs["scores"]) == len(group)


def test_conflicts_written_to_spans_do_not_warn(bert_ner):
    """With annotate="spans" every entity, overlapping ones included, is in the
    span group: nothing to report as lost."""
    import warnings

    nlp = make(bert_ner, words="model", aggregation_strategy="simple", annotate="spans")
    with warnings.catch_warnings():
        warnings.simplefilter("error", HFNerWarning)
        docs = list(nlp.pipe(TEXTS))
    ner = nlp.get_pipe("hf_ner")
    assert ner.stats["conflicts"] > 0
    assert sum(len(d.spans["hf_ner"]) for d in docs) == ner.stats["written"] + ner.stats["conflicts"]


def test_annotate_spans_only(bert_ner):
    nlp = make(bert_ner, annotate="spans", spans_key="preds")
    doc = nlp(TEXTS[0])
    assert len(doc.ents) == 0
    group = doc.spans["preds"]
    assert len(group) > 0
    assert all(0 < s <= 1 for s in group.attrs["scores"])
    assert [s._.hf_score for s in group] == group.attrs["scores"]


def test_label_map_and_threshold(bert_ner):
    base = make(bert_ner)(TEXTS[2])
    nlp = make(bert_ner, label_map={"PER": "PERSON", "LOC": "GPE"}, threshold=0.7)
    doc = nlp(TEXTS[2])
    expected = [
        ({"PER": "PERSON", "LOC": "GPE"}.get(e.label_, e.label_), e.start, e.end)
        for e in base.ents
        if e._.hf_score >= 0.7
    ]
    assert [(e.label_, e.start, e.end) for e in doc.ents] == expected
    assert nlp.get_pipe("hf_ner").stats["below_threshold"] == len(base.ents) - len(expected)


def test_ignore_labels(bert_ner):
    nlp = make(bert_ner, ignore_labels=["O", "PER", "LOC"])
    for doc in nlp.pipe(TEXTS):
        assert {e.label_ for e in doc.ents} <= {"ORG", "MISC"}


@pytest.mark.parametrize("policy", ["replace", "overwrite", "keep"])
def test_existing_ents_policy(bert_ner_sparse, policy):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "RULE", "pattern": "Reuters"}, {"label": "RULE", "pattern": "Monday"}])
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner_sparse), "existing_ents": policy})
    text = TEXTS[12]
    hf_only = make(bert_ner_sparse)(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HFNerWarning)
        doc = nlp(text)
    rules = {(e.start, e.end) for e in doc.ents if e.label_ == "RULE"}
    model_ents = {(e.start, e.end, e.label_) for e in hf_only.ents}
    got = {(e.start, e.end, e.label_) for e in doc.ents}
    if policy == "replace":
        assert got == model_ents
    elif policy == "keep":
        assert len(rules) == 2  # both rule matches survive
        assert {(s, e, l) for s, e, l in got if l != "RULE"} <= model_ents
    else:
        assert model_ents <= got


def test_stats_count_what_reaches_doc_ents(bert_ner):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "RULE", "pattern": "Google"}])
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "existing_ents": "keep"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HFNerWarning)
        docs = list(nlp.pipe(TEXTS))
    stats = nlp.get_pipe("hf_ner").stats
    assert stats["kept_existing"] > 0
    rules = sum(1 for d in docs for e in d.ents if e.label_ == "RULE")
    assert stats["written"] == sum(len(d.ents) for d in docs) - rules


def test_existing_ents_keep_keeps_rules(bert_ner):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "RULE", "pattern": "Google"}])
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "existing_ents": "keep"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HFNerWarning)
        doc = nlp(TEXTS[0])
    assert "Google" in [e.text for e in doc.ents if e.label_ == "RULE"]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("words", ["spacy", "model"])
def test_bad_input_never_crashes(bert_ner, text, words):
    nlp = make(bert_ner, words=words)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HFNerWarning)
        doc = nlp(text)
    assert doc.text == text
    if not text.strip():
        assert len(doc.ents) == 0


def test_long_doc_is_not_truncated(bert_ner_short):
    """A 100,000-character doc runs in windows; entities reach its very end."""
    sentence = "Sarah Parker works at Google in New York . "
    text = sentence * (100_000 // len(sentence) + 1)
    nlp = make(bert_ner_short, stride=8)
    doc = nlp(text)
    assert len(doc.text) >= 100_000
    assert doc.ents[-1].end_char > len(text) - 200
    # the same text, sentence by sentence, finds entities in every sentence
    assert len({e.start_char // len(sentence) for e in doc.ents}) > 0.9 * (len(text) // len(sentence))


def test_n_process(bert_ner):
    nlp = make(bert_ner)
    texts = [t for t in TEXTS if t.strip()] * 3
    single = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
    multi = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts, n_process=2, batch_size=8)]
    assert multi == single


def test_keeps_pos_and_dependencies(bert_ner):
    """hf_ner writes entities only: tags and parses set before it stay as they were."""
    nlp = make(bert_ner)
    words = TEXTS[0].rstrip(".").split() + ["."]
    doc = Doc(
        nlp.vocab,
        words=words,
        pos=["PRON", "NOUN", "AUX", "PROPN", "PROPN", "PROPN", "CCONJ", "PRON", "VERB", "ADP", "PROPN", "ADP", "PROPN", "PROPN", "PUNCT"],
        heads=[1, 2, 2, 5, 5, 2, 8, 8, 2, 8, 9, 8, 13, 11, 2],
        deps=["poss", "nsubj", "ROOT", "compound", "compound", "attr", "cc", "nsubj", "conj", "prep", "pobj", "prep", "compound", "pobj", "punct"],
    )
    before = [(t.pos_, t.dep_, t.head.i) for t in doc]
    doc = nlp.get_pipe("hf_ner")(doc)
    assert len(doc.ents) > 0
    assert [(t.pos_, t.dep_, t.head.i) for t in doc] == before


# -- config errors ---------------------------------------------------------------


def test_missing_model_dir_names_the_key(tmp_path):
    nlp = make(tmp_path / "nope" / "model")
    with pytest.raises(ValueError, match="`model`.*no directory"):
        nlp("text")


def test_unknown_bundled_model_lists_the_shipped_ones():
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": "spacy-hf-ner:nope"})
    with pytest.raises(ValueError, match="`model` = 'spacy-hf-ner:nope' names no model shipped"):
        nlp.initialize()


def test_bundled_models_resolve_to_package_dirs(monkeypatch, bert_ner):
    from spacy_hf_ner import sources

    monkeypatch.setattr(sources, "BUNDLED_DIR", bert_ner.parent)
    assert bert_ner.name in sources.bundled_models()
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": f"spacy-hf-ner:{bert_ner.name}", "device": "cpu"})
    nlp.initialize()
    assert ner.labels == ["LOC", "MISC", "ORG", "PER"]


def test_not_a_token_classifier(bert_textcat):
    nlp = make(bert_textcat)
    with pytest.raises(ValueError, match="not a token classifier.*hf_textcat"):
        nlp.initialize()


def test_a_saved_pipeline_as_model_names_its_model_folder(bert_ner, tmp_path):
    """`model` = a folder `spacy train` wrote (config.cfg, no config.json):
    E191 names the component's model folder inside it, which then loads."""
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "device": "cpu"})
    nlp.to_disk(tmp_path / "model-best")
    again = spacy.blank("en")
    again.add_pipe("hf_ner", config={"model": str(tmp_path / "model-best"), "device": "cpu"})
    inner = str(tmp_path / "model-best" / "hf_ner" / "model")
    with pytest.raises(ValueError, match=r"\[E191\] hf_ner: config key `model` = .* is a saved spaCy pipeline") as info:
        again("Angela Merkel went to Paris.")
    assert repr(inner) in str(info.value)
    fixed = spacy.blank("en")
    fixed.add_pipe("hf_ner", config={"model": inner, "device": "cpu"})
    text = "Angela Merkel went to Paris."
    assert [(e.text, e.label_) for e in fixed(text).ents] == [(e.text, e.label_) for e in nlp(text).ents]


def test_viterbi_decoding_end_to_end_and_saved(bert_ner, tmp_path):
    """The random model tags many words I- after O: greedy decoding opens an entity
    there (as transformers does), Viterbi picks the best allowed sequence (the
    sequence rules themselves are tested in test_aggregation)."""
    greedy, best = make(bert_ner, decoding="greedy"), make(bert_ner, decoding="viterbi")
    changed = 0
    for text in TEXTS:
        g, v = greedy(text), best(text)
        changed += [(e.start, e.end, e.label_) for e in g.ents] != [(e.start, e.end, e.label_) for e in v.ents]
        for ent in v.ents:
            assert 0.0 < ent._.hf_score <= 1.0 and not ent[0].is_space
    assert changed > 0
    best.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("hf_ner").cfg["decoding"] == "viterbi"
    assert [(e.start, e.end, e.label_) for e in loaded(TEXTS[0]).ents] == [
        (e.start, e.end, e.label_) for e in best(TEXTS[0]).ents
    ]


def test_viterbi_decoding_needs_spacy_words(bert_ner):
    with pytest.raises(ValueError, match="`decoding`.*words"):
        make(bert_ner, decoding="viterbi", words="model")
    with pytest.raises(ConfigValidationError, match="decoding"):
        make(bert_ner, decoding="beam")


def test_unknown_strategy_is_rejected_by_config_validation(bert_ner):
    with pytest.raises(ConfigValidationError, match="aggregation_strategy"):
        make(bert_ner, aggregation_strategy="mean")


def test_simple_with_spacy_words_explains_the_fix(bert_ner):
    with pytest.raises(ValueError, match="words.*model"):
        make(bert_ner, aggregation_strategy="simple")


def test_stride_too_large(bert_ner_short):
    nlp = make(bert_ner_short, stride=40)
    with pytest.raises(ValueError, match="`stride` = 40.*at most 29"):
        nlp("text")


def test_bad_device(bert_ner):
    with pytest.raises(ValueError, match="`device`"):
        make(bert_ner, device="gpu0")


def test_error_handler_routes_runtime_failures(tmp_path):
    nlp = make(tmp_path / "missing" / "x")
    seen = []
    nlp.set_error_handler(lambda name, proc, docs, e: seen.append((name, len(docs))))
    list(nlp.pipe(["a", "b"]))
    assert seen == [("hf_ner", 2)]


# -- serialization -----------------------------------------------------------------


def test_to_disk_and_spacy_load_offline(bert_ner, tmp_path, monkeypatch):
    nlp = make(bert_ner, label_map={"PER": "PERSON"})
    expected = [(e.start, e.end, e.label_, e._.hf_score) for e in nlp(TEXTS[2]).ents]
    nlp.to_disk(tmp_path / "pipeline")
    model_dir = tmp_path / "pipeline" / "hf_ner" / "model"
    assert (model_dir / "config.json").exists() and (model_dir / "tokenizer.json").exists()
    # the saved model folder is plain transformers
    assert AutoModelForTokenClassification.from_pretrained(model_dir).config.num_labels == 9
    # reload with the original model gone and the hub unreachable
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nlp.get_pipe("hf_ner").runtime.model_name = "/nonexistent/original"
    loaded = spacy.load(tmp_path / "pipeline")
    got = [(e.start, e.end, e.label_, e._.hf_score) for e in loaded(TEXTS[2]).ents]
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    assert [g[3] for g in got] == pytest.approx([e[3] for e in expected], abs=1e-5)


def test_to_bytes_round_trip(bert_ner):
    nlp = make(bert_ner)
    expected = [(e.start, e.end, e.label_) for e in nlp(TEXTS[0]).ents]
    data = nlp.to_bytes()
    fresh = spacy.blank("en")
    fresh.add_pipe("hf_ner", config={"model": "/nonexistent/dir"})
    fresh.from_bytes(data)
    assert [(e.start, e.end, e.label_) for e in fresh(TEXTS[0]).ents] == expected


# -- scoring -------------------------------------------------------------------------


def test_evaluate_reports_ents_scores(bert_ner):
    nlp = make(bert_ner)
    predicted = nlp(TEXTS[2])
    gold = nlp.make_doc(TEXTS[2])
    # gold = the prediction minus its last entity: precision < 1, recall 1
    gold.ents = [gold.char_span(e.start_char, e.end_char, label=e.label_) for e in predicted.ents[:-1]]
    scores = nlp.evaluate([Example(nlp.make_doc(TEXTS[2]), gold)])
    n = len(predicted.ents)
    assert scores["ents_r"] == pytest.approx(1.0)
    assert scores["ents_p"] == pytest.approx((n - 1) / n)
    assert set(scores["ents_per_type"]) <= {"PER", "ORG", "LOC", "MISC"}


def test_evaluate_spans(bert_ner):
    nlp = make(bert_ner, annotate="spans")
    gold = nlp(TEXTS[0])
    example = Example(nlp.make_doc(TEXTS[0]), gold)
    scores = nlp.evaluate([example])
    assert scores["spans_hf_ner_f"] == pytest.approx(1.0)


def test_an_existing_spans_group_follows_existing_ents(bert_ner):
    """A group already at `spans_key` is replaced with a warning ("replace"),
    kept where the new spans don't overlap it ("overwrite"), or kept whole with
    only non-overlapping new spans added ("keep")."""
    from spacy.tokens import Span

    text = TEXTS[0]
    fresh_doc = make(bert_ner, annotate="spans")(text)
    fresh = [(s.start, s.end, s.label_) for s in fresh_doc.spans["hf_ner"]]
    assert len(fresh) > 0
    first = fresh[0]

    def run(policy):
        nlp = make(bert_ner, annotate="spans", existing_ents=policy)
        doc = nlp.make_doc(text)
        doc.spans["hf_ner"] = [Span(doc, first[0], first[1], label="MINE"), Span(doc, len(doc) - 1, len(doc), label="TAIL")]
        group = nlp.get_pipe("hf_ner")(doc).spans["hf_ner"]
        assert len(group.attrs["scores"]) == len(group)
        return [(s.start, s.end, s.label_) for s in group]

    with pytest.warns(HFNerWarning, match=r"\[W006\].*`doc.spans\['hf_ner'\]` already held 2 span"):
        assert run("replace") == fresh
    overwritten = run("overwrite")
    assert "MINE" not in {label for _, _, label in overwritten}
    assert len(overwritten) == len(fresh) + ("TAIL" in {label for _, _, label in overwritten})
    kept = run("keep")
    assert {"MINE", "TAIL"} <= {label for _, _, label in kept} and first not in kept
