"""Fine-tuning inside spaCy: `nlp.update` / `spacy train` on hf_ner, hf_tagger and
hf_textcat, from a plain encoder or from a classifier, with tiny random models."""
import random
import warnings
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from thinc.api import fix_random_seed

from spacy_hf_ner.alignment import IGNORE_INDEX
from spacy_hf_ner.errors import HFNerWarning

from models import build_encoder, build_sequence_classifier, build_token_classifier

REPO = Path(__file__).resolve().parent.parent

NER_DATA = [
    ("My name is Sarah Jessica Parker and I work at Google in New York .",
     [(11, 31, "PER"), (46, 52, "ORG"), (56, 64, "LOC")]),
    ("Angela Merkel went to Paris .", [(0, 13, "PER"), (22, 27, "LOC")]),
    ("John Smith works at Microsoft in Seattle .", [(0, 10, "PER"), (20, 29, "ORG"), (33, 40, "LOC")]),
    ("Barack Obama lived in Washington .", [(0, 12, "PER"), (22, 32, "LOC")]),
]  # fmt: skip


def ner_examples(nlp, data=NER_DATA):
    return [Example.from_dict(nlp.make_doc(t), {"entities": ents}) for t, ents in data]


def ner_on(model):
    """A blank pipeline with hf_ner over `model` on CPU, and NER_DATA as its examples."""
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(model), "device": "cpu"})
    return nlp, ner, ner_examples(nlp)


def train(nlp, examples, steps):
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    history = []
    for _ in range(steps):
        random.shuffle(examples)
        losses = nlp.update(examples, sgd=optimizer)
        history.append(sum(losses.values()))
    return history


# -- hf_ner ---------------------------------------------------------------------


def test_hf_ner_learns_from_a_plain_encoder(encoder, tmp_path):
    nlp, ner, examples = ner_on(encoder)
    history = train(nlp, examples, 60)
    assert ner.runtime.id2label == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert ner.labels == ["LOC", "ORG", "PER"]
    assert history[-1] < history[0] / 2
    scores = nlp.evaluate(ner_examples(nlp))
    assert scores["ents_f"] > 0.9
    # saved, reloaded offline, same entities; the model folder is plain transformers
    nlp.to_disk(tmp_path / "pipeline")
    again = spacy.load(tmp_path / "pipeline")
    for text, _ in NER_DATA:
        a, b = nlp(text), again(text)
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(tmp_path / "pipeline" / "hf_ner" / "model")
    assert model.config.id2label[5] == "B-PER"


def test_hf_ner_update_uses_the_spacy_optimizer(encoder):
    nlp, ner, examples = ner_on(encoder)
    optimizer = nlp.initialize(lambda: examples)
    assert ner.is_trainable and ner.model is not None
    before = {k: v.detach().clone() for k, v in ner.runtime.model.named_parameters()}
    losses = ner.update(examples)  # no optimizer: gradients only
    assert losses["hf_ner"] > 0
    assert all(torch_equal(before[k], v) for k, v in ner.runtime.model.named_parameters())
    ner.finish_update(optimizer)
    changed = [k for k, v in ner.runtime.model.named_parameters() if not torch_equal(before[k], v)]
    assert "classifier.weight" in changed and any(k.startswith("bert.encoder") for k in changed)
    assert all(v.grad is None or not v.grad.any() for v in ner.runtime.model.parameters())


def test_an_update_with_nothing_to_learn_takes_no_optimizer_step(encoder):
    nlp, ner, examples = ner_on(encoder)
    optimizer = nlp.initialize(lambda: examples)
    before = {k: v.detach().clone() for k, v in ner.runtime.model.named_parameters()}
    unannotated = [Example.from_dict(nlp.make_doc(text), {}) for text, _ in NER_DATA]  # no gold entities
    assert ner.update(unannotated, sgd=optimizer) == {"hf_ner": 0.0}
    assert all(torch_equal(before[k], v) for k, v in ner.runtime.model.named_parameters())
    assert ner.runtime.backend.save_dtype is not None  # not marked trained (saved in the checkpoint's dtype)


def torch_equal(a, b):
    return bool((a == b).all())


def test_hf_ner_trains_over_windows_of_long_docs(tmp_path):
    enc = build_encoder(tmp_path / "enc", seed=1)
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(enc), "device": "cpu", "max_length": 16, "stride": 4})
    text = " ".join(t for t, _ in NER_DATA)
    ents, offset = [], 0
    for t, es in NER_DATA:
        ents += [(s + offset, e + offset, l) for s, e, l in es]
        offset += len(t) + 1
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents})]
    nlp.initialize(lambda: examples)
    windows, targets = ner._training_windows(examples)
    assert len(windows) > 3
    # every word of the doc is trained in some window
    labelled = sum(int((t != IGNORE_INDEX).sum()) for t in targets)
    assert labelled >= len(examples[0].predicted)
    history = train(nlp, examples, 40)
    assert history[-1] < history[0] / 2


def test_hf_ner_keeps_a_head_that_knows_the_labels(bert_ner):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "device": "cpu", "label_map": {"PER": "PERSON"}})
    data = [("Angela Merkel went to Paris .", [(0, 13, "PERSON"), (22, 27, "LOC")])]
    examples = ner_examples(nlp, data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", HFNerWarning)
        nlp.initialize(lambda: examples)
    assert len(ner.runtime.id2label) == 9 and ner.runtime.id2label[1] == "B-PER"
    # gold PERSON is trained as the model's PER
    gold = ner._gold_token_targets(examples[0]).tolist()
    assert gold == [1, 2, 0, 0, 5, 0]


def test_hf_ner_replaces_a_head_that_lacks_labels_with_a_warning(bert_ner):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "device": "cpu"})
    data = [("Apple shares were 3 percent up .", [(0, 5, "ORG"), (18, 27, "PERCENT")])]
    with pytest.warns(HFNerWarning, match="PERCENT") as record:
        nlp.initialize(lambda: ner_examples(nlp, data))
    assert ner.runtime.id2label == ["O", "B-ORG", "I-ORG", "B-PERCENT", "I-PERCENT"]
    # the advice reads in label_map's direction (model label -> data label) and
    # names the head's labels to map from
    (message,) = [str(w.message) for w in record if "[W003]" in str(w.message)]
    assert "(PERCENT; the head has LOC, MISC, ORG, PER)" in message
    assert '`label_map` = {model label: data label}, e.g. {"PER": "PERSON"}' in message
    assert "says PER where the data says PERSON" in message


def test_hf_ner_bioes_head_is_trained_in_bioes(tmp_path):
    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    path = build_token_classifier(tmp_path / "bioes", labels=labels)
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(path), "device": "cpu"})
    examples = ner_examples(nlp, [("John Smith met Sarah Jessica Parker and Obama .",
                                   [(0, 10, "PER"), (15, 35, "PER"), (40, 45, "PER")])])
    nlp.initialize(lambda: examples)
    gold = [labels[i] for i in ner._gold_token_targets(examples[0])]
    assert gold == ["B-PER", "E-PER", "O", "B-PER", "I-PER", "E-PER", "O", "S-PER", "O"]


def test_hf_ner_gold_on_other_tokenization(encoder):
    """The predicted doc may be tokenized unlike the gold: entities are aligned."""
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(encoder), "device": "cpu"})
    predicted = nlp.make_doc("Angela Merkel went to Paris.")
    reference = spacy.tokens.Doc(nlp.vocab, words=["Angela", "Merkel", "went", "to", "Paris."],
                                 ents=["B-PER", "I-PER", "O", "O", "B-LOC"])
    example = Example(predicted, reference)
    nlp.initialize(lambda: [example])
    got = [ner.runtime.id2label[i] if i != IGNORE_INDEX else None for i in ner._gold_token_targets(example)]
    # the gold entity "Paris." covers two predicted tokens: projected onto both
    assert got == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"]


def test_hf_ner_initialize_without_gold_only_loads(bert_ner):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "device": "cpu"})
    nlp.initialize()
    assert len(ner.runtime.id2label) == 9


def test_hf_ner_no_entities_anywhere_is_a_clear_error(encoder):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(encoder), "device": "cpu"})
    examples = ner_examples(nlp, [("nothing to see here .", [])])
    with pytest.raises(ValueError, match=r"labels.*initialize.components.hf_ner"):
        nlp.initialize(lambda: examples)


def test_hf_ner_labels_from_initialize_config(encoder):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(encoder), "device": "cpu"})
    nlp.config["initialize"]["components"]["hf_ner"] = {"labels": ["PER", "GPE"]}
    nlp.initialize(lambda: ner_examples(nlp))
    assert ner.runtime.id2label == ["O", "B-GPE", "I-GPE", "B-PER", "I-PER"]


# -- spacy train -----------------------------------------------------------------


def test_spacy_train_cli_fine_tunes_and_the_result_loads(encoder, tmp_path):
    from spacy.cli.train import train as spacy_train

    nlp = spacy.blank("en")
    docs = [ex.reference for ex in ner_examples(nlp)]
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "train.spacy"),
        "paths.base_model": str(encoder),
        "components.hf_ner.device": "cpu",
        "training.max_steps": 30,
        "training.optimizer.learn_rate.total_steps": 30,
        "training.eval_frequency": 15,
        "training.optimizer.learn_rate.warmup_steps": 2,
        "training.optimizer.learn_rate.initial_rate": 0.005,
        "training.batcher.size.start": 1000,
        "training.batcher.size.stop": 1000,
        "training.logger.progress_bar": False,
    }
    spacy_train(REPO / "configs" / "hf_ner_conll.cfg", tmp_path / "out", overrides=overrides)
    trained = spacy.load(tmp_path / "out" / "model-best")
    assert trained.pipe_names == ["hf_ner"]
    doc = trained("Angela Merkel went to Paris .")
    assert [(e.text, e.label_) for e in doc.ents] == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    meta = spacy.util.load_meta(tmp_path / "out" / "model-best" / "meta.json")
    assert meta["performance"]["ents_f"] > 0.5


# -- hf_tagger ------------------------------------------------------------------


def test_hf_tagger_learns_upos_from_a_plain_encoder(encoder, tmp_path):
    nlp = spacy.blank("en")
    tagger = nlp.add_pipe("hf_tagger", config={"model": str(encoder), "device": "cpu"})
    data = [
        (["Angela", "Merkel", "went", "to", "Paris", "."], ["PROPN", "PROPN", "VERB", "ADP", "PROPN", "PUNCT"]),
        (["the", "company", "has", "shares", "."], ["DET", "NOUN", "VERB", "NOUN", "PUNCT"]),
        (["she", "lives", "in", "a", "city", "."], ["PRON", "VERB", "ADP", "DET", "NOUN", "PUNCT"]),
    ]
    examples = [Example.from_dict(spacy.tokens.Doc(nlp.vocab, words=w), {"words": w, "pos": p}) for w, p in data]
    history = train(nlp, examples, 50)
    assert tagger.attr == "pos"
    assert set(tagger.labels) == {"ADP", "DET", "NOUN", "PRON", "PROPN", "PUNCT", "VERB"}
    assert history[-1] < history[0] / 2
    assert nlp.evaluate(examples)["pos_acc"] > 0.9
    nlp.to_disk(tmp_path / "p")
    doc = spacy.load(tmp_path / "p")("Angela Merkel went to Paris .")
    assert [t.pos_ for t in doc] == data[0][1]


# -- hf_textcat ------------------------------------------------------------------

SENTIMENT = [
    ("the company reports shares up", {"POSITIVE": 1.0, "NEGATIVE": 0.0}),
    ("the government said the market was not", {"POSITIVE": 0.0, "NEGATIVE": 1.0}),
    ("Apple shares were up on Monday", {"POSITIVE": 1.0, "NEGATIVE": 0.0}),
    ("not a day to go to the bank", {"POSITIVE": 0.0, "NEGATIVE": 1.0}),
]


def test_hf_textcat_learns_single_label(encoder, tmp_path):
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("hf_textcat", config={"model": str(encoder), "device": "cpu"})
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": c}) for t, c in SENTIMENT]
    history = train(nlp, examples, 40)
    assert textcat.labels == ["NEGATIVE", "POSITIVE"]
    assert textcat.function == "softmax" and not textcat.multi_label
    assert history[-1] < history[0] / 2
    for text, cats in SENTIMENT:
        doc = nlp(text)
        assert max(doc.cats, key=doc.cats.get) == max(cats, key=cats.get)
        assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)
    nlp.to_disk(tmp_path / "p")
    assert spacy.load(tmp_path / "p")(SENTIMENT[0][0]).cats == pytest.approx(nlp(SENTIMENT[0][0]).cats, abs=1e-5)


def test_hf_textcat_learns_multi_label_and_long_texts(encoder):
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("hf_textcat", config={"model": str(encoder), "device": "cpu", "max_length": 8, "stride": 2})
    data = [
        ("the bank said the market was up and the company has shares", {"finance": 1.0, "people": 0.0}),
        ("John Smith and Mary Johnson live in the city with people", {"finance": 0.0, "people": 1.0}),
        ("the bank of John Smith has shares and people", {"finance": 1.0, "people": 1.0}),
        ("it was a day in the year", {"finance": 0.0, "people": 0.0}),
    ]
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": c}) for t, c in data]
    history = train(nlp, examples, 100)
    assert len(textcat._windows([e.predicted for e in examples], warn=False)) > len(data)
    assert textcat.function == "sigmoid" and textcat.multi_label
    assert history[-1] < history[0] / 2
    for text, cats in data:
        got = nlp(text).cats
        assert {k for k, v in got.items() if v > 0.5} == {k for k, v in cats.items() if v > 0.5}


def test_hf_textcat_keeps_a_head_that_knows_the_labels(tmp_path):
    path = build_sequence_classifier(tmp_path / "clf")
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("hf_textcat", config={"model": str(path), "device": "cpu"})
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": c}) for t, c in SENTIMENT]
    weight = None
    with warnings.catch_warnings():
        warnings.simplefilter("error", HFNerWarning)
        nlp.initialize(lambda: examples)
        weight = textcat.runtime.model.classifier.weight.detach().clone()
    from transformers import AutoModelForSequenceClassification

    original = AutoModelForSequenceClassification.from_pretrained(path)
    assert bool((original.classifier.weight == weight).all())


def test_numpy_optimizer_path_matches_thinc_shim(encoder):
    """The path used on a GPU without cupy updates exactly like thinc's own."""
    from thinc.api import Adam

    from spacy_hf_ner.training import finish_update_numpy

    params = []
    for use_numpy_path in (False, True):
        fix_random_seed(0)
        nlp, ner, examples = ner_on(encoder)
        nlp.initialize(lambda: examples)
        optimizer = Adam(0.01, L2=0.01, grad_clip=1.0)
        for _ in range(2):
            ner.update(examples)
            if use_numpy_path:
                finish_update_numpy(ner.model, optimizer)
            else:
                ner.model.finish_update(optimizer)
        params.append({k: v.detach().clone() for k, v in ner.runtime.model.named_parameters()})
    assert params[0].keys() == params[1].keys()
    for name in params[0]:
        assert bool(torch_allclose(params[0][name], params[1][name])), name


def test_grad_clip_bounds_the_global_norm_of_the_update(encoder):
    """`grad_clip` clips the whole gradient (as transformers' Trainer does), not
    each parameter tensor: with plain SGD at learn rate 1 the update's global
    norm is the clip value (thinc's per-tensor clipping would give up to
    sqrt(number of tensors) times more), and its direction is the gradient's."""
    from thinc.api import SGD

    nlp, ner, examples = ner_on(encoder)
    nlp.initialize(lambda: examples)
    ner.update(examples)
    module = ner.runtime.model
    grads = {k: v.grad.detach().clone() * 1000 for k, v in module.named_parameters() if v.grad is not None}
    for k, v in module.named_parameters():
        if k in grads:
            v.grad.copy_(grads[k])
    before = {k: v.detach().clone() for k, v in module.named_parameters()}
    optimizer = SGD(1.0, L2=0.0, grad_clip=0.5)
    ner.finish_update(optimizer)
    deltas = {k: before[k] - v.detach() for k, v in module.named_parameters() if k in grads}
    norm = sum(float((d.double() ** 2).sum()) for d in deltas.values()) ** 0.5
    assert norm == pytest.approx(0.5, rel=1e-3)
    total = sum(float((g.double() ** 2).sum()) for g in grads.values()) ** 0.5
    for k, d in deltas.items():
        assert torch_allclose(d, grads[k] * (0.5 / total)), k
    assert optimizer.grad_clip == 0.5


@pytest.mark.filterwarnings("ignore:.*W140")  # a constant rate, on purpose: the step is checked exactly
@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_learn_rate_scale_scales_the_models_step(encoder, scale):
    """The torch block's `learn_rate_scale` multiplies the optimizer's rate for
    this model only: with plain SGD each parameter moves by scale * rate * grad."""
    from thinc.api import SGD

    nlp = spacy.blank("en")
    backend = {"@hf_backends": "spacy-hf-ner.torch.v1", "learn_rate_scale": scale}
    ner = nlp.add_pipe("hf_ner", config={"model": str(encoder), "device": "cpu", "backend": backend})
    examples = ner_examples(nlp)
    nlp.initialize(lambda: examples)
    ner.update(examples)
    module = ner.runtime.model
    grads = {k: v.grad.detach().clone() for k, v in module.named_parameters() if v.grad is not None}
    before = {k: v.detach().clone() for k, v in module.named_parameters()}
    ner.finish_update(SGD(0.1, L2=0.0, grad_clip=0.0))
    for k, v in module.named_parameters():
        if k in grads:
            assert torch_allclose(before[k] - v.detach(), grads[k] * 0.1 * scale), k


@pytest.mark.parametrize("value", [0.0, -0.5])
def test_a_learn_rate_scale_that_is_not_positive_is_refused(encoder, value):
    from spacy_hf_ner.errors import SpacyHFNerError

    nlp = spacy.blank("en")
    backend = {"@hf_backends": "spacy-hf-ner.torch.v1", "learn_rate_scale": value}
    with pytest.raises(SpacyHFNerError, match="E174.*learn_rate_scale.*frozen_components"):
        nlp.add_pipe("hf_ner", config={"model": str(encoder), "backend": backend})


def torch_allclose(a, b):
    import torch

    return torch.allclose(a, b, atol=1e-6)


# -- training on what inference sees -------------------------------------------------


def test_conll_docs_carry_spaces_so_training_sees_spacys_tokens(bert_ner, tmp_path):
    """The project's CoNLL DocBins keep their spaces: spaCy's Corpus tokenizes
    the raw text for the predicted docs (as nlp(text) does) and aligns the gold
    to it, and hf_ner's training targets fall on the same words (units) that
    inference decodes: the first model token of "Jean-Luc", none on "-Luc"."""
    from spacy.training import Corpus

    from scripts.conll_to_spacy import to_docs

    nlp = spacy.blank("en")
    story = [(["Jean-Luc", "Brassard", "won", "in", "Pau-Orthez", "."], ["B-PER", "I-PER", "O", "O", "B-LOC", "O"])]
    DocBin(docs=list(to_docs(nlp.vocab, [story], 8))).to_disk(tmp_path / "c.spacy")
    (example,) = list(Corpus(tmp_path / "c.spacy")(nlp))
    assert not example.reference.has_unknown_spaces
    assert [t.text for t in example.predicted] == ["Jean", "-", "Luc", "Brassard", "won", "in", "Pau", "-", "Orthez", "."]
    ner = nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "device": "cpu"})
    nlp.initialize()
    (w_starts, w_ends, w_space), targets = ner._word_targets(example)
    text = example.predicted.text
    assert [text[a:b] for a, b in zip(w_starts, w_ends)] == ["Jean-Luc", "Brassard", "won", "in", "Pau-Orthez", "."]
    assert [ner.runtime.id2label[t] for t in targets] == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]
    (window,), (window_targets,) = ner._training_windows([example])
    tokens = ner.runtime.tokenizer.convert_ids_to_tokens(window.ids.tolist())
    labelled = [(tok, ner.runtime.id2label[t]) for tok, t in zip(tokens, window_targets.tolist()) if t != IGNORE_INDEX]
    assert [label for _, label in labelled] == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]
    assert labelled[0][0] == tokens[1] and "-" not in [tok for tok, _ in labelled]
