"""The shipped training configs (configs/*.cfg) pass `spacy debug config` and
`spacy debug data` on a tiny corpus, with a tiny random encoder as the base
model (the override users give as `--paths.base_model`)."""
import argparse
import itertools
import os
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import spacy
from spacy.cli.debug_config import debug_config
from spacy.cli.debug_data import debug_data
from spacy.tokens import Doc, DocBin

REPO = Path(__file__).resolve().parent.parent

# config -> the component it trains
TRAINING_CONFIGS = {
    "hf_ner_conll.cfg": "hf_ner",
    "hf_tagger_upos.cfg": "hf_tagger",
    "hf_textcat_sentiment.cfg": "hf_textcat",
}
# the shared-encoder workflow's configs (init-config --with; tests/test_heads_workflow.py
# trains their kind), and the twin of heads_ewt.cfg on curated's transformer
SHARED_ENCODER_CONFIGS = {
    "heads_ewt.cfg": "hf_ner",
    "tagger_conll_frozen.cfg": "hf_ner",
    "tagger_conll_joint.cfg": "hf_ner",
}
TWIN_CONFIGS = {"heads_ewt_curated.cfg", "heads_ewt_curated_raw.cfg"}

NER = [
    ("Angela Merkel went to Paris .", [(0, 13, "PER"), (22, 27, "LOC")]),
    ("John Smith works at Microsoft in Seattle .", [(0, 10, "PER"), (20, 29, "ORG"), (33, 40, "LOC")]),
    ("Barack Obama lived in Washington with the European Union .", [(0, 12, "PER"), (22, 32, "LOC"), (42, 56, "MISC")]),
]  # fmt: skip
POS = [
    (["Angela", "Merkel", "went", "to", "Paris", "."], ["PROPN", "PROPN", "VERB", "ADP", "PROPN", "PUNCT"]),
    (["the", "company", "has", "shares", "."], ["DET", "NOUN", "VERB", "NOUN", "PUNCT"]),
    (["she", "lives", "in", "a", "city", "."], ["PRON", "VERB", "ADP", "DET", "NOUN", "PUNCT"]),
]
CATS = [
    ("the company reports shares up", "POSITIVE"),
    ("the government said the market was not", "NEGATIVE"),
    ("Apple shares were up on Monday", "POSITIVE"),
    ("not a day to go to the bank", "NEGATIVE"),
]


def tiny_docs(component: str):
    """Annotated docs for `component`, with their spaces (as the project's corpora)."""
    nlp = spacy.blank("en")
    docs = []
    if component == "hf_ner":
        for text, ents in NER:
            doc = nlp.make_doc(text)
            doc.ents = [doc.char_span(s, e, label) for s, e, label in ents]
            docs.append(doc)
    elif component == "hf_tagger":
        for words, tags in POS:
            docs.append(Doc(nlp.vocab, words=words, pos=tags))
    else:
        for text, label in CATS:
            doc = nlp.make_doc(text)
            doc.cats = {"POSITIVE": float(label == "POSITIVE"), "NEGATIVE": float(label == "NEGATIVE")}
            docs.append(doc)
    return docs


# `spacy debug data` fails below 100 training examples (BLANK_MODEL_MIN_THRESHOLD)
N_TRAIN = 100


def write_corpus(component: str, folder: Path) -> Path:
    """train.spacy (the tiny docs repeated up to N_TRAIN) and dev.spacy in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    docs = tiny_docs(component)
    DocBin(docs=[docs[i % len(docs)] for i in range(N_TRAIN)]).to_disk(folder / "train.spacy")
    DocBin(docs=docs).to_disk(folder / "dev.spacy")
    return folder


def overrides(component: str, corpus: Path, encoder: Path):
    return {
        "paths.train": str(corpus / "train.spacy"),
        "paths.dev": str(corpus / "dev.spacy"),
        "paths.base_model": str(encoder),
        f"components.{component}.device": "cpu",
    }


def test_every_training_config_is_covered():
    shipped = {p.name for p in (REPO / "configs").glob("*.cfg")} - {"en_pipeline.cfg"}
    assert shipped == set(TRAINING_CONFIGS) | set(SHARED_ENCODER_CONFIGS) | TWIN_CONFIGS


@pytest.mark.parametrize("name", sorted(TRAINING_CONFIGS))
def test_shipped_config_passes_spacy_debug_config_and_data(name, encoder, tmp_path):
    """`spacy debug config` and `spacy debug data` (which resolves [training],
    where `total_steps` must be a literal int) exit cleanly."""
    component = TRAINING_CONFIGS[name]
    corpus = write_corpus(component, tmp_path / "corpus")
    config = REPO / "configs" / name
    over = overrides(component, corpus, encoder)
    debug_config(config, overrides=over)
    try:
        debug_data(config, config_overrides=over, silent=True)
    except SystemExit as e:  # msg.fail(..., exits=1) on any failed check
        pytest.fail(f"spacy debug data {name} exited with {e.code}")


@pytest.mark.parametrize("name", sorted(TRAINING_CONFIGS))
def test_debug_config_as_shipped_names_the_base_model_variable(name):
    """`spacy debug config` without `--paths.base_model`: the plugin's coded
    message names the key and the variable to give, not spaCy's type error
    with a dump of the settings."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-m", "spacy", "debug", "config", str(REPO / "configs" / name)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "[E009]" in text and "`model` = None is null (not set)" in text, text[-2000:]
    assert "--paths.base_model NAME_OR_PATH" in text
    assert "is not <class 'str'>" not in text


@pytest.mark.parametrize("name", sorted(TRAINING_CONFIGS))
def test_shipped_config_schedule_ends_at_max_steps(name):
    """The learning rate decays to zero at the last step (the literal
    `total_steps` is the same number as `max_steps`)."""
    config = spacy.util.load_config(REPO / "configs" / name, interpolate=False)
    schedule = config["training"]["optimizer"]["learn_rate"]
    assert schedule["@schedules"] == "warmup_linear.v1"
    assert schedule["total_steps"] == config["training"]["max_steps"]
    assert 0 < schedule["warmup_steps"] < schedule["total_steps"]


# -- spacy-hf-ner init-config ------------------------------------------------------


def init_config_args(argv):
    from spacy_hf_ner.init_config import add_arguments

    ap = argparse.ArgumentParser()
    add_arguments(ap)
    return ap.parse_args(argv)


def written_by(path: Path):
    """The init-config arguments named in a config's header."""
    (line,) = [l for l in path.read_text(encoding="utf8").splitlines() if l.startswith("# Written by: ")]
    argv = shlex.split(line[len("# Written by: "):])
    assert argv[:2] == ["spacy-hf-ner", "init-config"]
    return argv[2:]


@pytest.mark.parametrize("name", sorted([*TRAINING_CONFIGS, *SHARED_ENCODER_CONFIGS]))
def test_shipped_config_is_what_init_config_writes(name):
    """configs/*.cfg are the generator's output, byte for byte, for the command
    in their header: editing one by hand (or the template alone) fails here."""
    from spacy_hf_ner.init_config import render

    path = REPO / "configs" / name
    args = init_config_args(written_by(path))
    assert args.component == {**TRAINING_CONFIGS, **SHARED_ENCODER_CONFIGS}[name]
    assert str(args.output) == f"configs/{name}"
    assert render(args) == path.read_text(encoding="utf8")


@pytest.mark.parametrize("name", sorted([*TRAINING_CONFIGS, "en_pipeline.cfg"]))
def test_pipelines_the_project_writes_batch_for_a_transformer(name):
    """nlp.batch_size (the docs nlp.pipe, spacy evaluate and spacy benchmark
    speed hand over at once) suits a transformer component: spaCy's 1,000 made
    `spacy benchmark speed` run 50,000 documents. The training configs are
    init-config's template (the test above), en_pipeline.cfg is what the
    project's assemble and package steps write."""
    config = spacy.util.load_config(REPO / "configs" / name, interpolate=False)
    assert 64 <= config["nlp"]["batch_size"] <= 128


def test_shipped_ner_config_keeps_its_word_units_and_decoding():
    config = spacy.util.load_config(REPO / "configs" / "hf_ner_conll.cfg", interpolate=False)
    ner = config["components"]["hf_ner"]
    assert ner["units"]["@misc"] == "spacy-hf-ner.infix_units.v1"
    assert ner["units"]["infixes"] == ["-", "‐", "‑", "–", "/"]
    assert ner["decoding"] == "auto" and ner["words"] == "spacy"
    assert config["corpora"]["train"]["@readers"] == "spacy.Corpus.v1"
    assert config["paths"]["train"] == "corpus/train.spacy"


@pytest.mark.parametrize("component", sorted(set(TRAINING_CONFIGS.values())))
def test_init_config_output_passes_debug_config_and_trains(component, encoder, tmp_path):
    """The written config (base model and corpus given to the command) passes
    `spacy debug config` and trains 2 steps with `spacy train`; the learning
    rate warms up and decays to 0 at the last step."""
    from spacy.cli.train import train as spacy_train
    from thinc.api import registry

    from spacy_hf_ner.__main__ import main

    corpus = write_corpus(component, tmp_path / "corpus")
    out = tmp_path / f"{component}.cfg"
    argv = ["init-config", str(out), "--component", component, "--model", str(encoder),
            "--train", str(corpus / "train.spacy"), "--dev", str(corpus / "dev.spacy"), "--max-steps", "2"]
    assert main(argv) == 0
    config = spacy.util.load_config(out, interpolate=False)
    assert config["paths"]["base_model"] == str(encoder)
    assert config["training"]["max_steps"] == 2
    schedule = config["training"]["optimizer"]["learn_rate"]
    assert (schedule["warmup_steps"], schedule["total_steps"]) == (1, 2)
    rates = registry.resolve({"s": schedule})["s"]
    first = [rates(step=i) for i in range(3)] if callable(rates) else list(itertools.islice(rates, 3))
    assert first == pytest.approx([0.0, 1e-4, 0.0])
    over = {f"components.{component}.device": "cpu", "training.logger.progress_bar": False}
    debug_config(out, overrides=over)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        spacy_train(out, tmp_path / "out", overrides=over)
    assert not [str(r.message) for r in record if "[W14" in str(r.message)]
    trained = spacy.load(tmp_path / "out" / "model-last")
    assert trained.pipe_names == [component]
    assert trained.get_pipe(component).labels


def test_init_config_epochs_counts_the_corpus_words(tmp_path):
    from spacy_hf_ner.init_config import render

    corpus = write_corpus("hf_ner", tmp_path)
    n_words = sum(len(tiny_docs("hf_ner")[i % 3]) for i in range(N_TRAIN))
    text = render(init_config_args(["x.cfg", "-c", "hf_ner", "--train", str(corpus / "train.spacy"),
                                    "--epochs", "3", "--batch-words", "100"]))
    config = spacy.util.load_config_from_str(text, interpolate=False)
    assert config["training"]["max_steps"] == -(-3 * n_words // 100)


@pytest.mark.parametrize(
    "argv, code",
    [
        (["x.cfg", "-c", "hf_ner", "--epochs", "2"], "E140"),
        (["x.cfg", "-c", "hf_ner", "--max-steps", "50", "--warmup-steps", "50"], "E141"),
        (["x.cfg", "-c", "hf_ner", "--train", "/no/such/corpus", "--epochs", "2"], "E142"),
        (["x.cfg", "-c", "hf_ner", "--encoder-learn-rate", "1e-5"], "E146"),
        (["x.cfg", "-c", "hf_ner", "--with", "tagger", "--encoder", "frozen", "--encoder-learn-rate", "1e-5"], "E146"),
        (["x.cfg", "-c", "hf_ner", "--with", "tagger", "--encoder", "joint", "--encoder-learn-rate", "1e-3"], "E146"),
    ],
)
def test_init_config_rejects_flags_that_do_not_fit(argv, code, capsys):
    from spacy_hf_ner.__main__ import main

    assert main(["init-config", *argv]) == 1
    err = capsys.readouterr().err
    assert f"[{code}]" in err and "Fix:" in err


@pytest.mark.parametrize(
    "flags, scale",
    [([], 0.2), (["--learn-rate", "0.001"], 0.02), (["--learn-rate", "1e-5"], 1.0), (["--encoder-learn-rate", "5e-5"], 0.5)],
)
def test_init_config_joint_writes_the_encoders_share_of_the_rate(flags, scale, capsys):
    """`--encoder joint`: the backend's learn_rate_scale is the encoder's rate
    (default 2e-5, never above the heads') over the heads' `--learn-rate`."""
    from spacy_hf_ner.__main__ import main

    assert main(["init-config", "-", "-c", "hf_ner", "--with", "tagger", "--encoder", "joint", *flags]) == 0
    config = spacy.util.load_config_from_str(capsys.readouterr().out, interpolate=False)
    assert config["components"]["hf_ner"]["backend"]["learn_rate_scale"] == scale


# -- the schedule checks on the first update of a training run (W140, W141) -------------


def test_schedule_warning_cases():
    from spacy_hf_ner.training import schedule_warning

    def training(rate, max_steps=100):
        return {"max_steps": max_steps, "optimizer": {"learn_rate": rate}}

    warmup = lambda total: {"@schedules": "warmup_linear.v1", "warmup_steps": 10, "total_steps": total, "initial_rate": 1e-4}  # noqa: E731
    assert "[W140]" in schedule_warning(training(0.001), "hf_ner", "hf_ner")
    assert "--component hf_tagger" in schedule_warning(training(0.001), "tagger", "hf_tagger")
    assert schedule_warning(training(warmup(100)), "hf_ner", "hf_ner") is None
    assert schedule_warning(training(warmup(100), max_steps=0), "hf_ner", "hf_ner") is None
    short = schedule_warning(training(warmup(60)), "hf_ner", "hf_ner")
    assert "[W141]" in short and "the last 40 steps learn nothing" in short
    long = schedule_warning(training(warmup(400)), "hf_ner", "hf_ner")
    # read from the schedule: at step 100 of 400 (10 warm-up steps) the rate is 300/390 of its peak
    assert "[W141]" in long and "the rate at the last step is 76.9% of its peak (0.0001)" in long


def test_schedule_warning_reads_the_rate_from_the_schedule():
    """The shipped hf_ner schedule (300 warm-up steps to 3300) run for 20
    steps: the rate is still warming up, at 20/300 of its peak (not the 99%
    that `1 - max_steps / total_steps` gave)."""
    from spacy_hf_ner.training import schedule_end, schedule_warning

    rate = {"@schedules": "warmup_linear.v1", "warmup_steps": 300, "total_steps": 3300, "initial_rate": 1e-4}
    message = schedule_warning({"max_steps": 20, "optimizer": {"learn_rate": rate}}, "hf_ner", "hf_ner")
    assert "[W141]" in message and "is 6.7% of its peak" in message
    assert schedule_end([0.0, 0.5, 1.0, 0.5, 0.0, 0.0], 5) == "the rate is 0 from step 4 on: the last 1 steps learn nothing"
    assert schedule_end([0.0, 0.5, 1.0, 0.5, 0.0], 4) is None
    assert schedule_end([1.0, 1.0, 0.9, 0.8], 2) == "the rate at the last step is 90.0% of its peak (1) instead of decaying to 0"


def initialize_from(config, component, update=True):
    """The warnings of initializing a pipeline for training (and of its first
    update with the optimizer `initialize` returns, unless not `update`)."""
    import warnings as w

    from spacy.training import Example

    from spacy_hf_ner.errors import HFNerWarning

    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    docs = tiny_docs(component)
    for string in docs[0].vocab.strings:  # the gold labels, known to the pipeline's vocab
        nlp.vocab.strings.add(string)
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    with w.catch_warnings(record=True) as record:
        w.simplefilter("always", HFNerWarning)
        optimizer = nlp.initialize(lambda: examples)
        if update:
            nlp.update(examples[:1], sgd=optimizer)
            nlp.update(examples[1:2], sgd=optimizer)  # warned once per run
    return [str(r.message) for r in record if issubclass(r.category, HFNerWarning)]


def test_spacy_init_config_recipe_points_to_init_config(encoder):
    """`spacy init config -p hf_ner` writes a constant learn_rate: training from
    it warns (W140) and names the command that writes a fine-tuning config."""
    from spacy.cli.init_config import init_config

    config = init_config(lang="en", pipeline=["hf_ner"], optimize="efficiency", gpu=False)
    assert config["training"]["optimizer"]["learn_rate"] == 0.001
    config["components"]["hf_ner"]["model"] = str(encoder)
    config["components"]["hf_ner"]["device"] = "cpu"
    messages = initialize_from(config, "hf_ner")
    (w140,) = [m for m in messages if "[W140]" in m]
    assert "spacy-hf-ner init-config CONFIG --component hf_ner" in w140
    # training mode is the update with an optimizer, not a guess from [paths]:
    # initializing alone (or for inference) warns nothing
    assert not [m for m in initialize_from(config, "hf_ner", update=False) if "[W14" in m]


@pytest.mark.parametrize("max_steps, warns", [(3300, False), (300, True)])
def test_overriding_max_steps_alone_warns(encoder, max_steps, warns):
    """The shipped config's literal total_steps: overriding max_steps without
    it warns (W141)."""
    config = spacy.util.load_config(
        REPO / "configs" / "hf_ner_conll.cfg",
        overrides={"paths.base_model": str(encoder), "components.hf_ner.device": "cpu", "training.max_steps": max_steps},
    )
    messages = initialize_from(config, "hf_ner")
    assert any("[W141]" in m for m in messages) == warns
    assert not any("[W140]" in m for m in messages)


def test_en_pipeline_config_builds_as_shipped_and_names_a_missing_model():
    """configs/en_pipeline.cfg builds its pipeline as shipped (en_core_web_sm's
    components + the bundled hf_ner; it used to source a `training/` folder
    that only the project makes, failing with spaCy's E050), and a missing
    trained model is hf_ner's coded error naming `model`."""
    path = REPO / "configs" / "en_pipeline.cfg"
    nlp = spacy.util.load_model_from_config(spacy.util.load_config(path), auto_fill=True)
    assert nlp.pipe_names[-1] == "hf_ner" and "parser" in nlp.pipe_names
    doc = nlp("Angela Merkel met Barack Obama in Paris.")
    assert [e.label_ for e in doc.ents] == ["PER", "PER", "LOC"] and doc[0].tag_
    missing = "training/hf_ner/model-best/hf_ner/model"
    config = spacy.util.load_config(path, overrides={"paths.hf_ner": missing})
    with pytest.raises(ValueError, match=r"\[E001\] hf_ner: config key `model` = '" + missing):
        spacy.util.load_model_from_config(config, auto_fill=True)("The model loads at first use.")
