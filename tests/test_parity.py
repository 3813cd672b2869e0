"""words="model" reproduces transformers' TokenClassificationPipeline exactly:
the pipeline is the oracle, on many texts and every strategy. The one parity
test of the package: it compares the Inference API records the server returns
(`payloads.token_classification`, "word" and "index" included) and the
component's own `predict` with them."""
import warnings

import pytest
import spacy
from transformers import pipeline

from spacy_hf_ner.payloads import token_classification

from texts import TEXTS

STRATEGIES = ["none", "simple", "first", "average", "max"]
LONG = " ".join(TEXTS[:3] + TEXTS[6:14])


def hf_entities(hf, text, strategy, **kwargs):
    """The pipeline's entities as plain values."""
    return [
        {k: (float(v) if k == "score" else int(v) if k in ("start", "end", "index") else v) for k, v in e.items()}
        for e in hf(text, **kwargs)
    ]


def ours(nlp, text, strategy, **kwargs):
    """The server's records for `text`, checked against the component's own
    `predict` (same labels, offsets and scores)."""
    records = token_classification(nlp, "hf_ner", [text], aggregation_strategy=strategy, **kwargs)[0]
    if not kwargs:
        predicted = nlp.get_pipe("hf_ner").predict([nlp.make_doc(text)])[0]
        key = "entity" if strategy == "none" else "entity_group"
        assert [(e.label, e.start, e.end, e.score) for e in predicted] == [
            (r[key], r["start"], r["end"], r["score"]) for r in records
        ]
    return records


def assert_same(expected, got):
    """Equal dicts ("word" included), scores to 1e-4."""
    assert [{k: v for k, v in e.items() if k != "score"} for e in got] == [
        {k: v for k, v in e.items() if k != "score"} for e in expected
    ]
    for ours_entity, hf_entity in zip(got, expected):
        assert ours_entity["score"] == pytest.approx(hf_entity["score"], abs=1e-4)


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
            assert_same(expected, ours(nlp, text, strategy))
            n_entities += len(expected)
            ignore = ["O", "MISC"]
            assert_same(hf_entities(hf, text, strategy, ignore_labels=ignore), ours(nlp, text, strategy, ignore_labels=ignore))
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
        assert_same(expected, ours(nlp, text, strategy))
        # a per-request stride (the server's `parameters.stride`) on a component with another
        assert_same(expected, ours(make(bert_ner_short, strategy), text, strategy, stride=stride))


def test_parity_in_batches(bert_ner):
    """Length-sorted, padded batches give the same entities as one text at a time."""
    hf = pipeline("token-classification", model=str(bert_ner), aggregation_strategy="average")
    nlp = make(bert_ner, "average", batch_size=4)
    docs = [nlp.make_doc(t) for t in TEXTS]
    batched = nlp.get_pipe("hf_ner").predict(docs)
    for text, got in zip(TEXTS, batched):
        expected = [(e["entity_group"], e["start"], e["end"]) for e in hf_entities(hf, text, "average")]
        assert [(e.label, e.start, e.end) for e in got] == expected
