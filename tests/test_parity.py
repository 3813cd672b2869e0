"""words="model" reproduces transformers' TokenClassificationPipeline exactly:
the pipeline is the oracle, on many texts and every strategy."""
import warnings

import pytest
import spacy
from transformers import pipeline

from texts import TEXTS

STRATEGIES = ["none", "simple", "first", "average", "max"]
LONG = " ".join(TEXTS[:3] + TEXTS[6:14])


def hf_entities(hf, text, strategy, **kwargs):
    key = "entity" if strategy == "none" else "entity_group"
    return [(e[key], float(e["score"]), e["start"], e["end"]) for e in hf(text, **kwargs)]


def ours(nlp, text):
    ner = nlp.get_pipe("hf_ner")
    return [(e.label, e.score, e.start, e.end) for e in ner.predict([nlp.make_doc(text)])[0]]


def assert_same(expected, got):
    assert [(l, s, e) for l, _, s, e in got] == [(l, s, e) for l, _, s, e in expected]
    for (_, ours_score, *_), (_, hf_score, *_) in zip(got, expected):
        assert ours_score == pytest.approx(hf_score, abs=1e-4)


def make(model, strategy, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "hf_ner",
        config={"model": str(model), "words": "model", "aggregation_strategy": strategy, **config},
    )
    return nlp


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("model_name", ["bert_ner", "bert_ner_sparse", "bpe_ner", "bert_ner_uncased"])
def test_parity_short_texts(request, model_name, strategy):
    model = request.getfixturevalue(model_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = pipeline("token-classification", model=str(model), aggregation_strategy=strategy)
        nlp = make(model, strategy)
        n_entities = 0
        for text in TEXTS:
            expected = hf_entities(hf, text, strategy)
            assert_same(expected, ours(nlp, text))
            n_entities += len(expected)
    assert n_entities > 20  # the oracle found plenty to compare


@pytest.mark.parametrize("strategy", ["simple", "first", "average", "max"])
@pytest.mark.parametrize("stride", [0, 4, 12])
def test_parity_long_texts_with_stride(bert_ner_short, strategy, stride):
    """Texts longer than the 32-token window: windows overlap by `stride` and
    their entities merge like the pipeline's."""
    hf = pipeline("token-classification", model=str(bert_ner_short), aggregation_strategy=strategy)
    nlp = make(bert_ner_short, strategy, stride=stride)
    for text in [LONG, TEXTS[0] * 3, TEXTS[2] + "\n" + TEXTS[11]]:
        expected = hf_entities(hf, text, strategy, stride=stride)
        assert_same(expected, ours(nlp, text))


def test_parity_in_batches(bert_ner):
    """Length-sorted, padded batches give the same entities as one text at a time."""
    hf = pipeline("token-classification", model=str(bert_ner), aggregation_strategy="average")
    nlp = make(bert_ner, "average", batch_size=4)
    docs = [nlp.make_doc(t) for t in TEXTS]
    batched = nlp.get_pipe("hf_ner").predict(docs)
    for text, got in zip(TEXTS, batched):
        assert_same(hf_entities(hf, text, "average"), [(e.label, e.score, e.start, e.end) for e in got])
