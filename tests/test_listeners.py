"""hf_* components as the upstream of spacy-curated-transformers listeners: one
forward pass for the component and the heads that listen to it (tiny models)."""
import random
from pathlib import Path

import numpy as np
import pytest
import spacy
from hypothesis import given, settings, strategies as st
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_hf_ner.backends.registry import registry as backend_registry
from spacy_hf_ner.pieces import gather, scatter, token_pieces

pytest.importorskip("spacy_curated_transformers")

LISTENER = "spacy-curated-transformers.LastTransformerLayerListener.v1"
TAGS = [
    ("My name is Sarah Jessica Parker and I work at Google in New York .",
     "PRP$ NN VBZ NNP NNP NNP CC PRP VBP IN NNP IN NNP NNP ."),
    ("Angela Merkel went to Paris .", "NNP NNP VBD IN NNP ."),
    ("John Smith works at Microsoft in Seattle .", "NNP NNP VBZ IN NNP IN NNP ."),
    ("Barack Obama lived in Washington .", "NNP NNP VBD IN NNP ."),
]  # fmt: skip
TEXTS = [t for t, _ in TAGS] + ["The company said shares of Apple were up 3 percent on Monday ."]


def listener(upstream="hf_ner", width=32, grad_factor=1.0, architecture=LISTENER):
    return {
        "@architectures": architecture,
        "width": width,
        "pooling": {"@layers": "reduce_mean.v1"},
        "upstream": upstream,
        "grad_factor": grad_factor,
    }


def tagger_config(**kwargs):
    return {"model": {"@architectures": "spacy.Tagger.v2", "nO": None, "tok2vec": listener(**kwargs)}}


def shared_nlp(model: Path, **kwargs):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(model)})
    nlp.add_pipe("tagger", config=tagger_config(**kwargs))
    return nlp


def tag_examples(nlp):
    return [Example.from_dict(nlp.make_doc(t), {"tags": tags.split()}) for t, tags in TAGS]


def init_heads(nlp, egs):
    """Initialize the heads only (hf_ner keeps its pretrained head and loads on
    first use), as `spacy train` does with hf_ner in `frozen_components`."""
    with nlp.select_pipes(disable=["hf_ner"]):
        return nlp.initialize(lambda: egs)


def ents(docs):
    return [[(e.start, e.end, e.label_, round(e._.hf_score, 5)) for e in d.ents] for d in docs]


def encoder_grads(ner):
    return [p.grad.clone() if p.grad is not None else None for p in ner.runtime.model.bert.parameters()]


# -- pure logic -----------------------------------------------------------------


def test_token_pieces_owned_covered_and_whitespace():
    text = "New York-based Sarah  went"
    # [CLS] New York - based Sarah went [SEP] ; spaCy: New York - based Sarah " " went
    offsets = np.array([[0, 0], [0, 3], [4, 8], [8, 9], [9, 14], [15, 20], [22, 26], [0, 0]])
    special = np.array([1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    starts, ends = np.array([0, 4, 8, 9, 15, 21, 22]), np.array([3, 8, 9, 14, 20, 21, 26])
    space = np.array([0, 0, 0, 0, 0, 1, 0], dtype=bool)
    source, lengths = token_pieces(text, [(offsets, special)], starts, ends, space)
    assert lengths.tolist() == [1, 1, 1, 1, 1, 0, 1]
    assert source.tolist() == [[0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0, 6]]
    # one model token "York-based" over two spaCy tokens: owned by "York", covers "-" and "based"
    offsets = np.array([[0, 0], [0, 3], [4, 14], [0, 0]])
    source, lengths = token_pieces(text[:14], [(offsets, special[:4])], starts[:4], ends[:4], space[:4])
    assert lengths.tolist() == [1, 1, 1, 1] and source[:, 1].tolist() == [1, 2, 2, 2]


def test_token_pieces_read_overlapping_windows_once_from_the_most_central():
    text = "a b c d e"
    starts = np.array([0, 2, 4, 6, 8])
    # two windows: a b c d | c d e (c and d in both; c is central in the first window... d in the second)
    w1 = (np.array([[0, 0], [0, 1], [2, 3], [4, 5], [6, 7], [0, 0]]), np.array([1, 0, 0, 0, 0, 1], dtype=bool))
    w2 = (np.array([[0, 0], [4, 5], [6, 7], [8, 9], [0, 0]]), np.array([1, 0, 0, 0, 1], dtype=bool))
    source, lengths = token_pieces(text, [w1, w2], starts, starts + 1, np.zeros(5, dtype=bool))
    assert lengths.tolist() == [1] * 5
    assert source.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3]]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.data())
def test_scatter_is_the_adjoint_of_gather(sizes, data):
    """<gather(S), D> == <S, scatter(D)> for any rows read any number of times:
    the gradient the encoder gets is exactly that of what the listener read."""
    rng = np.random.default_rng(0)
    states = [rng.normal(size=(n, 3)).astype(np.float32) for n in sizes]
    picks = data.draw(st.lists(st.tuples(st.integers(0, len(sizes) - 1), st.integers(0, 5)), max_size=12))
    source = np.array([(w, p % sizes[w]) for w, p in picks], dtype=np.int64).reshape(-1, 2)
    d_rows = rng.normal(size=(len(source), 3)).astype(np.float32)
    left = float((gather(states, source) * d_rows).sum())
    right = float(sum((s * d).sum() for s, d in zip(states, scatter(d_rows, source, sizes))))
    assert left == pytest.approx(right, rel=1e-5, abs=1e-5)


# -- discovery ------------------------------------------------------------------


def test_listeners_are_found_by_name_or_wildcard_only(bert_ner):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    nlp.add_pipe("tagger", config=tagger_config(upstream="hf_ner"))
    nlp.add_pipe("morphologizer", config=tagger_config(upstream="*"))
    nlp.add_pipe("senter", config=tagger_config(upstream="other"))
    ner = nlp.get_pipe("hf_ner")
    assert ner.listening_components == ["tagger", "morphologizer"]
    assert len(ner.listeners) == 2
    nlp.remove_pipe("tagger")
    assert nlp.get_pipe("hf_ner").listening_components == ["morphologizer"]


def test_a_textcat_upstream_by_name_is_refused(bert_textcat):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_textcat", config={"model": str(bert_textcat)})
    nlp.add_pipe("tagger", config=tagger_config(upstream="*"))  # "*" skips it
    assert nlp.get_pipe("hf_textcat").listening_components == []
    with pytest.raises(ValueError, match=r"\[E173\].*hf_textcat"):
        nlp.add_pipe("senter", config=tagger_config(upstream="hf_textcat"))


# -- one forward pass ---------------------------------------------------------------


def test_listeners_read_the_hidden_states_of_the_components_own_pass(bert_ner):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    nlp = shared_nlp(bert_ner)
    nlp.initialize(lambda: tag_examples(nlp))
    calls = []
    ner = nlp.get_pipe("hf_ner")
    ner._ensure_loaded()
    ner.runtime.model.register_forward_hook(lambda *a: calls.append(1))
    text = "Angela Merkel went to Paris ."
    doc = nlp(text)
    assert len(calls) == 1  # one forward for entities and tags
    data = doc._.trf_data
    assert data.last_layer_only and data.last_hidden_layer_state.lengths.tolist() == [1] * len(doc)
    model = AutoModelForTokenClassification.from_pretrained(bert_ner).eval()
    with torch.no_grad():
        out = model(**AutoTokenizer.from_pretrained(bert_ner)(text, return_tensors="pt"), output_hidden_states=True)
    np.testing.assert_allclose(data.last_hidden_layer_state.dataXd, out.hidden_states[-1][0, 1:-1].numpy(), atol=1e-5)
    assert ents([doc]) == ents([spacy_ner(bert_ner)(text)])


def spacy_ner(model):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(model)})
    return nlp


def test_long_texts_share_the_windows_of_the_entities(bert_ner_short):
    """With a 32-token window a long text needs several windows: every token
    gets rows, entities stay those of the standalone component."""
    nlp = shared_nlp(bert_ner_short)
    nlp.initialize(lambda: tag_examples(nlp))
    text = " ".join(TEXTS * 3)
    doc = nlp(text)
    assert len(nlp.get_pipe("hf_ner").runtime.encode([text], nlp.get_pipe("hf_ner")._stride)) > 3
    lengths = doc._.trf_data.last_hidden_layer_state.lengths
    assert len(lengths) == len(doc) and (lengths >= 1).all()
    assert all(t.tag_ for t in doc)
    assert ents([doc]) == ents([spacy_ner(bert_ner_short)(text)])


def test_all_layers_when_a_listener_asks(bert_ner):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    weighting = {
        "@architectures": "spacy-curated-transformers.ScalarWeightingListener.v1",
        "width": 32,
        "weighting": {"@architectures": "spacy-curated-transformers.ScalarWeight.v1", "num_layers": 2},
        "pooling": {"@layers": "reduce_mean.v1"},
        "upstream": "hf_ner",
    }
    nlp.add_pipe("tagger", config={"model": {"@architectures": "spacy.Tagger.v2", "nO": None, "tok2vec": weighting}})
    egs = tag_examples(nlp)
    opt = nlp.initialize(lambda: egs)
    nlp.update(egs, sgd=opt)
    doc = nlp("Angela Merkel went to Paris .")
    assert not doc._.trf_data.last_layer_only and len(doc._.trf_data.all_outputs) == 3  # embeddings + 2 layers


# -- training -------------------------------------------------------------------


def test_frozen_encoder_trains_the_head_and_keeps_the_entities(bert_ner):
    fix_random_seed(0)
    nlp = shared_nlp(bert_ner)
    egs = tag_examples(nlp)
    init_heads(nlp, egs)
    opt = Adam(0.01)
    ner = nlp.get_pipe("hf_ner")
    ner._ensure_loaded()
    before = [p.detach().clone() for p in ner.runtime.model.parameters()]
    losses = []
    for _ in range(25):
        random.shuffle(egs)
        losses.append(nlp.update(egs, sgd=False, exclude=["hf_ner"], annotates=["hf_ner"])["tagger"])
        assert all(g is None or not g.any() for g in encoder_grads(ner))  # no gradient reaches it
        nlp.get_pipe("tagger").finish_update(opt)
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch_equal(a, b) for a, b in zip(before, ner.runtime.model.parameters()))
    docs = list(nlp.pipe(TEXTS))
    assert ents(docs) == ents(spacy_ner(bert_ner).pipe(TEXTS))
    right = sum(t.tag_ == g for (_, tags), d in zip(TAGS, docs) for t, g in zip(d, tags.split()))
    assert right >= 0.8 * sum(len(tags.split()) for _, tags in TAGS)


def test_frozen_annotating_pass_in_several_batches(bert_ner):
    """spaCy runs the annotating component over a training batch in batches of
    `nlp.batch_size`: the listeners read what it wrote on every doc."""
    nlp = shared_nlp(bert_ner)
    nlp.batch_size = 2
    egs = tag_examples(nlp)
    init_heads(nlp, egs)
    losses = nlp.update(egs, sgd=Adam(0.01), exclude=["hf_ner"], annotates=["hf_ner"])
    assert losses["tagger"] > 0  # E953 (batch mismatch) before the listeners read the docs


def torch_equal(a, b):
    return bool((a == b).all())


def test_joint_training_sends_the_heads_gradient_into_the_encoder(bert_ner):
    """No entity gold: the encoder's gradient comes from the tagger alone,
    scaled by the listener's grad_factor."""
    grads = {}
    for factor in (1.0, 2.0):
        fix_random_seed(0)
        nlp = shared_nlp(bert_ner, grad_factor=factor)
        egs = tag_examples(nlp)
        init_heads(nlp, egs)
        opt = Adam(0.01)
        for _ in range(3):  # the tagger's output layer starts at zero: no gradient flows through it yet
            nlp.update(egs, sgd=opt, exclude=["hf_ner"], annotates=["hf_ner"])
        ner = nlp.get_pipe("hf_ner")
        ner.runtime.model.zero_grad(set_to_none=True)
        ner.runtime.model.eval()  # no dropout: the two runs see the same activations
        ner.runtime.model.train = lambda mode=True: ner.runtime.model  # keep it in eval mode
        nlp.update(egs, sgd=False)
        grads[factor] = [g for g in encoder_grads(ner) if g is not None]
    assert grads[1.0] and any(g.abs().sum() > 0 for g in grads[1.0])
    for one, two in zip(grads[1.0], grads[2.0]):
        np.testing.assert_allclose(two.numpy(), 2 * one.numpy(), rtol=1e-4, atol=1e-7)


def test_the_heads_gradient_is_a_mean_over_the_batchs_tokens(bert_ner):
    """spaCy's tagger sums its loss over the tokens; the encoder gets it as a
    mean, as hf_ner's own loss is: the same examples twice in one batch give
    the encoder the gradient that they give once."""
    grads = {}
    for copies in (1, 2):
        fix_random_seed(0)
        nlp = shared_nlp(bert_ner)
        egs = tag_examples(nlp)
        init_heads(nlp, egs)
        opt = Adam(0.01)
        for _ in range(3):  # the tagger's output layer starts at zero
            nlp.update(egs, sgd=opt, exclude=["hf_ner"], annotates=["hf_ner"])
        ner = nlp.get_pipe("hf_ner")
        ner.runtime.model.zero_grad(set_to_none=True)
        ner.runtime.model.eval()
        ner.runtime.model.train = lambda mode=True: ner.runtime.model  # no dropout
        nlp.update(egs * copies, sgd=False)
        grads[copies] = [g for g in encoder_grads(ner) if g is not None]
    assert grads[1] and any(g.abs().sum() > 0 for g in grads[1])
    for once, twice in zip(grads[1], grads[2]):
        np.testing.assert_allclose(twice.numpy(), once.numpy(), rtol=1e-4, atol=1e-7)


def test_joint_training_adds_the_entity_loss(bert_ner):
    """With entity gold too, the encoder's gradient is the sum of both."""
    fix_random_seed(0)
    nlp = shared_nlp(bert_ner)
    spans = {"Angela Merkel": "PER", "Paris": "LOC", "Google": "ORG", "New York": "LOC", "Seattle": "LOC"}
    egs = []
    for t, tags in TAGS:
        found = [(t.index(s), t.index(s) + len(s), label) for s, label in spans.items() if s in t]
        egs.append(Example.from_dict(nlp.make_doc(t), {"tags": tags.split(), "entities": found}))
    opt = nlp.initialize(lambda: egs)
    history = [nlp.update(egs, sgd=opt) for _ in range(8)]
    assert history[-1]["hf_ner"] < history[0]["hf_ner"] and history[-1]["tagger"] < history[0]["tagger"]


# -- serialization, processes, errors -----------------------------------------------


def trained(model: Path, steps=10):
    fix_random_seed(0)
    nlp = shared_nlp(model)
    egs = tag_examples(nlp)
    opt = init_heads(nlp, egs)
    for _ in range(steps):
        nlp.update(egs, sgd=opt, exclude=["hf_ner"], annotates=["hf_ner"])
    return nlp


def test_round_trip_and_n_process(bert_ner, tmp_path):
    nlp = trained(bert_ner)
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert loaded.get_pipe("hf_ner").listening_components == ["tagger"]
    texts = TEXTS * 3
    want = [[t.tag_ for t in d] for d in nlp.pipe(texts)]
    assert [[t.tag_ for t in d] for d in loaded.pipe(texts)] == want
    multi = list(loaded.pipe(texts, n_process=2, batch_size=4))
    assert [[t.tag_ for t in d] for d in multi] == want
    assert ents(multi) == ents(loaded.pipe(texts))


class LogitsOnly:
    """The torch backend without `forward_hidden` (as ONNX)."""

    trainable = False

    def __init__(self, inner):
        self.inner = inner

    def forward(self, batch):
        return self.inner.forward(batch)

    def save(self, path):
        self.inner.save(path)


class LogitsOnlyLoader:
    """The block `@hf_backends = "test-logits-only.v1"`."""

    name = "test-logits-only.v1"
    trainable = False

    def load(self, request):
        from spacy_hf_ner.backends.torch import TorchBackend

        return LogitsOnly(TorchBackend.load(request, "float32"))


@backend_registry.register("test-logits-only.v1")
def logits_only_backend():
    return LogitsOnlyLoader()


def test_a_backend_without_hidden_states_is_refused(bert_ner):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "backend": {"@hf_backends": "test-logits-only.v1"}})
    nlp.add_pipe("tagger", config=tagger_config())
    nlp.initialize(lambda: tag_examples(nlp))
    with pytest.raises(ValueError, match=r"\[E170\] hf_ner: .*its backend \(test-logits-only.v1\)"):
        nlp("Angela Merkel went to Paris .")


def test_a_listener_width_other_than_the_models_is_refused(bert_ner):
    nlp = shared_nlp(bert_ner, width=64)
    nlp.initialize(lambda: tag_examples(nlp))
    with pytest.raises(ValueError, match=r"\[E172\].*'tagger'.*width 64.*width 32.*`width` = 32"):
        nlp("Angela Merkel went to Paris .")


def test_spacy_transformers_listener_says_why_it_cannot_be_used(bert_ner):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    st_listener = {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0,
                   "pooling": {"@layers": "reduce_mean.v1"}, "upstream": "hf_ner"}  # fmt: skip
    why = r"\[E171\].*spacy-transformers.*(not installed|cannot be imported).*spacy-curated-transformers"
    with pytest.raises(ValueError, match=why):
        nlp.add_pipe("tagger", config={"model": {"@architectures": "spacy.Tagger.v2", "nO": None, "tok2vec": st_listener}})


def test_the_server_serves_the_heads_of_one_pass(bert_ner, tmp_path):
    """`/doc` of a saved shared pipeline: entities and the heads' tags."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from spacy_hf_ner.serve.app import create_app
    from spacy_hf_ner.serve.config import ServeConfig

    nlp = trained(bert_ner)
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    want = nlp("Angela Merkel went to Paris .")
    with TestClient(create_app(loaded, ServeConfig()), base_url="http://localhost") as client:
        got = client.post("/doc", json={"inputs": "Angela Merkel went to Paris ."})
    assert got.status_code == 200, got.text
    body = got.json()
    assert [t["tag"] for t in body["tokens"]] == [t.tag_ for t in want]
    spans = [(e.start_char, e.end_char, e.label_) for e in want.ents]
    assert [(e["start"], e["end"], e["label"]) for e in body["ents"]] == spans


def test_a_missing_curated_names_its_extra():
    """What a curated listener name resolves to where the library is missing."""
    from spacy_hf_ner.listeners import _refusal

    refuse = _refusal(LISTENER, "spacy-curated-transformers", "is not installed", "pip install 'spacy-hf-ner[curated]'")
    with pytest.raises(ValueError, match=r"\[E171\] .*LastTransformerLayerListener.*not installed.*\[curated\]"):
        refuse(width=384, pooling=None, upstream="hf_ner")
