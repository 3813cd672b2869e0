"""`hf_textcat`: parity with transformers' text-classification pipeline, long
texts, text pairs, serialization and scoring."""

import numpy as np
import pytest
import spacy
from spacy.training import Example

import spacy_hf_ner.textcat  # noqa: F401  (registers the factory and scorer)
from spacy_hf_ner.classify import (
    activate,
    is_multi_label,
    pool_logits,
    resolve_function,
    sigmoid,
    softmax,
    top_k_scores,
)
from spacy_hf_ner.errors import HFNerWarning

from models import build_sequence_classifier, build_token_classifier

TEXTS = [
    "My name is Sarah Jessica Parker and I work at Google in New York.",
    "Angela Merkel said the government of Germany has a bank.",
    "Apple shares were 3 percent up on Monday , Reuters reports .",
    "the",
    "東京都 is a city in 日本 .",
]
MULTI_LABELS = ["toxic", "insult", "threat"]


@pytest.fixture(scope="session")
def multi_textcat(tmp_path_factory):
    return build_sequence_classifier(
        tmp_path_factory.mktemp("multi_textcat"),
        labels=MULTI_LABELS,
        problem_type="multi_label_classification",
        seed=5,
    )


@pytest.fixture(scope="session")
def three_textcat(tmp_path_factory):
    """Single-label, three classes."""
    return build_sequence_classifier(
        tmp_path_factory.mktemp("three_textcat"), labels=["A", "B", "C"], seed=6
    )


@pytest.fixture(scope="session")
def short_textcat(tmp_path_factory):
    """A 32-token window: ordinary texts need several windows."""
    return build_sequence_classifier(tmp_path_factory.mktemp("short_textcat"), model_max_length=32, seed=7, scale=300.0)


@pytest.fixture(scope="session")
def token_model(tmp_path_factory):
    return build_token_classifier(tmp_path_factory.mktemp("token_for_textcat"))


def make_nlp(model, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_textcat", config={"model": str(model), "device": "cpu", **config})
    return nlp


def oracle(model, texts, function_to_apply=None, top_k=None):
    from transformers import pipeline

    kwargs = {} if function_to_apply is None else {"function_to_apply": function_to_apply}
    pipe = pipeline("text-classification", model=str(model), top_k=top_k, device="cpu", **kwargs)
    out = []
    for text in texts:
        out.append(as_dict(pipe(text)))
    return out


def as_dict(result):
    """The pipeline's answer for one input (a str input gives a nested list)."""
    if result and isinstance(result[0], list):
        result = result[0]
    return {r["label"]: r["score"] for r in result}


def assert_cats(got, expected):
    assert set(got) == set(expected)
    for label, score in expected.items():
        assert got[label] == pytest.approx(score, abs=1e-4)


# -- pure logic ----------------------------------------------------------------


def test_resolve_function_follows_transformers():
    assert resolve_function("auto", None, 2) == "softmax"
    assert resolve_function("auto", "single_label_classification", 3) == "softmax"
    assert resolve_function("auto", "multi_label_classification", 3) == "sigmoid"
    assert resolve_function("auto", None, 1) == "sigmoid"
    assert resolve_function("auto", "regression", 1) == "none"
    for f in ("sigmoid", "softmax", "none"):
        assert resolve_function(f, "multi_label_classification", 3) == f
    with pytest.raises(ValueError):
        resolve_function("relu", None, 2)


def test_is_multi_label():
    assert is_multi_label("sigmoid", None, 2)
    assert not is_multi_label("softmax", "multi_label_classification", 3)
    assert is_multi_label("none", "multi_label_classification", 3)
    assert not is_multi_label("none", None, 3)


def test_pool_and_activate():
    a = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    b = np.array([3.0, 0.0, -0.5], dtype=np.float32)
    pooled = pool_logits([a, b])
    np.testing.assert_allclose(pooled, [2.0, -1.0, 0.0])
    np.testing.assert_array_equal(pool_logits([a]), a)
    with pytest.raises(ValueError):
        pool_logits([])
    np.testing.assert_allclose(activate(pooled, "softmax"), softmax(pooled))
    assert activate(pooled, "softmax").sum() == pytest.approx(1.0)
    np.testing.assert_allclose(activate(pooled, "sigmoid"), 1 / (1 + np.exp(-pooled)), rtol=1e-6)
    np.testing.assert_array_equal(activate(pooled, "none"), pooled)
    assert sigmoid(np.array([0.0]))[0] == 0.5
    with pytest.raises(ValueError):
        activate(pooled, "auto")


def test_top_k_scores():
    scores = np.array([0.2, 0.5, 0.2, 0.1])
    labels = ["a", "b", "c", "d"]
    assert list(top_k_scores(scores, labels, None)) == ["b", "a", "c", "d"]
    assert top_k_scores(scores, labels, 2) == {"b": 0.5, "a": 0.2}
    assert len(top_k_scores(scores, labels, 10)) == 4


# -- parity with transformers ----------------------------------------------------


@pytest.mark.parametrize("function_to_apply", [None, "sigmoid", "softmax", "none"])
def test_parity_single_label(bert_textcat, function_to_apply):
    nlp = make_nlp(bert_textcat, function_to_apply=function_to_apply or "auto")
    expected = oracle(bert_textcat, TEXTS, function_to_apply)
    for doc, exp in zip(nlp.pipe(TEXTS), expected):
        assert_cats(doc.cats, exp)


@pytest.mark.parametrize("function_to_apply", [None, "sigmoid", "softmax", "none"])
def test_parity_multi_label(multi_textcat, function_to_apply):
    nlp = make_nlp(multi_textcat, function_to_apply=function_to_apply or "auto")
    assert nlp.get_pipe("hf_textcat").function == (function_to_apply or "sigmoid")
    expected = oracle(multi_textcat, TEXTS, function_to_apply)
    for doc, exp in zip(nlp.pipe(TEXTS), expected):
        assert_cats(doc.cats, exp)


def test_parity_three_classes_single_calls(three_textcat):
    nlp = make_nlp(three_textcat)
    expected = oracle(three_textcat, TEXTS)
    for text, exp in zip(TEXTS, expected):
        assert_cats(nlp(text).cats, exp)
        assert sum(nlp(text).cats.values()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("top_k", [1, 2])
def test_top_k_parity(multi_textcat, top_k):
    nlp = make_nlp(multi_textcat, top_k=top_k)
    expected = oracle(multi_textcat, TEXTS, top_k=top_k)
    for doc, exp in zip(nlp.pipe(TEXTS), expected):
        assert len(doc.cats) == top_k
        assert_cats(doc.cats, exp)
        assert list(doc.cats) == list(exp)


def test_label_map_and_other_cats_kept(bert_textcat):
    nlp = make_nlp(bert_textcat, label_map={"POSITIVE": "POS"})
    doc = nlp.make_doc("I work at Google .")
    doc.cats["OTHER"] = 1.0
    doc = nlp.get_pipe("hf_textcat")(doc)
    assert set(doc.cats) == {"POS", "NEGATIVE", "OTHER"}
    assert nlp.get_pipe("hf_textcat").labels == ["NEGATIVE", "POS"]


# -- long texts ----------------------------------------------------------------


LONG = " ".join(TEXTS[:3] * 3)


def test_long_text_mean_pools_window_logits(short_textcat):
    nlp = make_nlp(short_textcat)
    pipe = nlp.get_pipe("hf_textcat")
    pipe.initialize()
    runtime = pipe.runtime
    windows = runtime.encode([LONG], pipe._stride)
    assert len(windows) > 2
    logits = runtime.logits(windows, 8)
    by_hand = softmax(np.mean(np.stack(logits), axis=0))
    got = nlp(LONG).cats
    for label, score in zip(runtime.id2label, by_hand):
        assert got[label] == pytest.approx(float(score), abs=1e-5)
    first = softmax(logits[0])
    assert max(abs(got[l] - float(s)) for l, s in zip(runtime.id2label, first)) > 1e-4


def test_long_text_truncate_warn_is_first_window(short_textcat):
    from transformers import pipeline

    nlp = make_nlp(short_textcat, long_text="truncate_warn")
    with pytest.warns(HFNerWarning, match="truncated"):
        got = nlp(LONG).cats
    pipe = pipeline("text-classification", model=str(short_textcat), top_k=None, device="cpu")
    expected = as_dict(pipe(LONG, truncation=True))
    assert_cats(got, expected)
    windowed = make_nlp(short_textcat)(LONG).cats
    assert max(abs(windowed[l] - got[l]) for l in got) > 1e-4


def test_long_text_in_a_batch_with_short_ones(short_textcat):
    nlp = make_nlp(short_textcat, batch_size=3)
    texts = [LONG, "the", LONG[:50], ""]
    batched = [doc.cats for doc in nlp.pipe(texts, batch_size=4)]
    for text, cats in zip(texts, batched):
        single = nlp(text).cats
        for label in single:
            assert cats[label] == pytest.approx(single[label], abs=1e-5)


@pytest.mark.parametrize("text", ["", " ", "\n\n  \t", "😀🎉", "😀 the 🎉", "  the  "])
def test_odd_docs_do_not_crash(bert_textcat, multi_textcat, text):
    for model in (bert_textcat, multi_textcat):
        nlp = make_nlp(model)
        doc = nlp(text)
        assert len(doc.cats) == len(nlp.get_pipe("hf_textcat").labels)
        assert all(np.isfinite(v) for v in doc.cats.values())


# -- text pairs ------------------------------------------------------------------

PAIRS = [
    ("I work at Google", "in New York ."),
    ("Angela Merkel said", "the bank has shares"),
    ("the", ""),
]


@pytest.mark.parametrize("model_fixture", ["bert_textcat", "multi_textcat"])
def test_pairs_match_pipeline(request, model_fixture):
    from transformers import pipeline

    model = request.getfixturevalue(model_fixture)
    nlp = make_nlp(model)
    pipe = pipeline("text-classification", model=str(model), top_k=None, device="cpu")
    docs = []
    for text, pair in PAIRS:
        doc = nlp.make_doc(text)
        doc._.hf_text_pair = pair
        docs.append(doc)
    docs.append(nlp.make_doc("I work at Google in New York ."))
    out = list(nlp.pipe(docs))
    for doc, (text, pair) in zip(out, PAIRS):
        expected = as_dict(pipe({"text": text, "text_pair": pair}))
        assert_cats(doc.cats, expected)
    plain = as_dict(pipe("I work at Google in New York ."))
    assert_cats(out[-1].cats, plain)


def test_long_pair_truncates_first_with_warning(short_textcat):
    from transformers import pipeline

    nlp = make_nlp(short_textcat)
    doc = nlp.make_doc(LONG)
    doc._.hf_text_pair = "in New York ."
    with pytest.warns(HFNerWarning, match="only_first"):
        got = nlp(doc).cats
    pipe = pipeline("text-classification", model=str(short_textcat), top_k=None, device="cpu")
    expected = pipe({"text": LONG, "text_pair": "in New York ."}, truncation="only_first")
    assert_cats(got, as_dict(expected))


# -- serialization, scoring, errors ---------------------------------------------


def test_to_disk_and_load(bert_textcat, tmp_path):
    nlp = make_nlp(bert_textcat, top_k=1)
    before = [doc.cats for doc in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("hf_textcat").cfg["top_k"] == 1
    after = [doc.cats for doc in loaded.pipe(TEXTS)]
    for a, b in zip(before, after):
        assert list(a) == list(b)
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)
    assert (tmp_path / "pipeline" / "hf_textcat" / "model" / "config.json").exists()


def test_to_bytes_round_trip(bert_textcat):
    nlp = make_nlp(bert_textcat)
    data = nlp.get_pipe("hf_textcat").to_bytes()
    other = make_nlp(bert_textcat)
    other.get_pipe("hf_textcat").from_bytes(data)
    assert other("the").cats == pytest.approx(nlp("the").cats)


def test_evaluate_single_label(bert_textcat):
    nlp = make_nlp(bert_textcat)
    examples = []
    for i, text in enumerate(TEXTS):
        gold = {"POSITIVE": float(i % 2), "NEGATIVE": float(1 - i % 2)}
        examples.append(Example.from_dict(nlp.make_doc(text), {"cats": gold}))
    scores = nlp.evaluate(examples)
    assert 0.0 <= scores["cats_score"] <= 1.0
    assert "cats_macro_f" in scores and "cats_macro_auc" in scores
    assert scores["cats_score_desc"] == "macro F"
    assert not nlp.get_pipe("hf_textcat").multi_label


def test_evaluate_multi_label(multi_textcat):
    nlp = make_nlp(multi_textcat)
    assert nlp.get_pipe("hf_textcat").multi_label
    examples = []
    for i, text in enumerate(TEXTS):
        gold = {label: float((i + j) % 2) for j, label in enumerate(MULTI_LABELS)}
        examples.append(Example.from_dict(nlp.make_doc(text), {"cats": gold}))
    scores = nlp.evaluate(examples)
    assert 0.0 <= scores["cats_score"] <= 1.0
    assert set(scores["cats_f_per_type"]) == set(MULTI_LABELS)
    assert "cats_macro_auc" in scores


def test_token_model_is_an_error_naming_model(token_model):
    nlp = make_nlp(token_model)
    with pytest.raises(ValueError, match="`model`") as info:
        nlp.initialize()
    assert "sequence classifier" in str(info.value)
    assert "hf_ner" in str(info.value)


@pytest.mark.parametrize(
    "key,value",
    [("function_to_apply", "relu"), ("top_k", 0), ("long_text", "cut"), ("batch_size", 0), ("stride", -1)],
)
def test_bad_config_names_key(bert_textcat, key, value):
    nlp = spacy.blank("en")
    with pytest.raises(Exception, match=key):
        nlp.add_pipe("hf_textcat", config={"model": str(bert_textcat), key: value})


def test_lazy_load_and_no_labels_before(bert_textcat):
    nlp = make_nlp(bert_textcat)
    pipe = nlp.get_pipe("hf_textcat")
    assert not pipe.runtime.is_loaded and pipe.labels == []
    nlp("the")
    assert pipe.labels == ["NEGATIVE", "POSITIVE"]


def test_error_handler_is_used(bert_textcat):
    nlp = make_nlp(bert_textcat)
    pipe = nlp.get_pipe("hf_textcat")
    seen = []
    pipe.set_error_handler(lambda name, proc, docs, e: seen.append((name, len(docs))))
    pipe.predict = None  # calling it fails
    nlp("the")
    list(nlp.pipe(["a", "b"]))
    assert seen == [("hf_textcat", 1), ("hf_textcat", 2)]
