"""The shipped training configs (configs/*.cfg) pass `spacy debug config` and
`spacy debug data` on a tiny corpus, with a tiny random encoder as the base
model (the override users give as `--paths.base_model`)."""
from pathlib import Path

import pytest
import spacy
from spacy.cli.debug_config import debug_config
from spacy.cli.debug_data import debug_data
from spacy.tokens import Doc, DocBin

from models import build_encoder

REPO = Path(__file__).resolve().parent.parent

# config -> the component it trains
TRAINING_CONFIGS = {
    "hf_ner_conll.cfg": "hf_ner",
    "hf_tagger_upos.cfg": "hf_tagger",
    "hf_textcat_sentiment.cfg": "hf_textcat",
}

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


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    return build_encoder(tmp_path_factory.mktemp("encoder"))


def overrides(component: str, corpus: Path, encoder: Path):
    return {
        "paths.train": str(corpus / "train.spacy"),
        "paths.dev": str(corpus / "dev.spacy"),
        "paths.base_model": str(encoder),
        f"components.{component}.device": "cpu",
    }


def test_every_training_config_is_covered():
    shipped = {p.name for p in (REPO / "configs").glob("*.cfg")} - {"en_pipeline.cfg"}
    assert shipped == set(TRAINING_CONFIGS)


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
def test_shipped_config_schedule_ends_at_max_steps(name):
    """The learning rate decays to zero at the last step (the literal
    `total_steps` is the same number as `max_steps`)."""
    config = spacy.util.load_config(REPO / "configs" / name, interpolate=False)
    schedule = config["training"]["optimizer"]["learn_rate"]
    assert schedule["@schedules"] == "warmup_linear.v1"
    assert schedule["total_steps"] == config["training"]["max_steps"]
    assert 0 < schedule["warmup_steps"] < schedule["total_steps"]
