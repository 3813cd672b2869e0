"""`spacy apply` on an hf_ner pipeline (the bulk path the README documents with
`-b 64`): the DocBin it writes keeps the entities and their scores
(`span._.hf_score`, stored in the docs' user data), the same as `nlp(text)`."""
import pytest
import spacy
import srsly
from spacy.cli.apply import apply
from spacy.tokens import DocBin

TEXTS = [
    "My name is Sarah Jessica Parker and I work at Google in New York .",
    "Angela Merkel went to Paris .",
    "John Smith works at Microsoft in Seattle .",
]


@pytest.mark.parametrize("annotate", ["ents", "both"])
def test_spacy_apply_keeps_entities_and_scores(bert_ner, tmp_path, annotate):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "device": "cpu", "annotate": annotate})
    nlp.to_disk(tmp_path / "pipeline")
    srsly.write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in TEXTS])
    apply(tmp_path / "in.jsonl", tmp_path / "out.spacy", str(tmp_path / "pipeline"), "text", 64, 1)
    expected = list(nlp.pipe(TEXTS))
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(nlp.vocab))
    assert [d.text for d in docs] == TEXTS
    assert sum(len(d.ents) for d in expected) > 0
    for got, want in zip(docs, expected):
        assert [(e.start_char, e.end_char, e.label_) for e in got.ents] == [
            (e.start_char, e.end_char, e.label_) for e in want.ents
        ]
        assert [e._.hf_score for e in got.ents] == pytest.approx([e._.hf_score for e in want.ents], abs=1e-5)
        assert all(isinstance(e._.hf_score, float) for e in got.ents)
        if annotate == "both":
            key = nlp.get_pipe("hf_ner").settings.spans_key
            assert [(s.start, s.end, s.label_) for s in got.spans[key]] == [
                (s.start, s.end, s.label_) for s in want.spans[key]
            ]
            assert [s._.hf_score for s in got.spans[key]] == pytest.approx(
                [s._.hf_score for s in want.spans[key]], abs=1e-5
            )
