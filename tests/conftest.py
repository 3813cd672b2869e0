from pathlib import Path

import pytest

from models import CONLL_LABELS, build_encoder, build_sequence_classifier, build_token_classifier


@pytest.fixture(scope="session")
def bert_ner(tmp_path_factory) -> Path:
    """Tiny random cased BERT token classifier, CoNLL BIO labels, WordPiece."""
    return build_token_classifier(tmp_path_factory.mktemp("bert_ner"))


@pytest.fixture(scope="session")
def bert_ner_short(tmp_path_factory) -> Path:
    """The same kind of model with a 32-token window, so ordinary texts need
    several windows."""
    return build_token_classifier(tmp_path_factory.mktemp("bert_ner_short"), model_max_length=32, seed=1)


@pytest.fixture(scope="session")
def bert_ner_sparse(tmp_path_factory) -> Path:
    """A model that predicts "O" most of the time (entities are islands)."""
    return build_token_classifier(tmp_path_factory.mktemp("bert_ner_sparse"), seed=2, o_bias=2.5)


@pytest.fixture(scope="session")
def bpe_ner(tmp_path_factory) -> Path:
    """Tiny random RoBERTa token classifier with a byte-level BPE tokenizer."""
    return build_token_classifier(tmp_path_factory.mktemp("bpe_ner"), tokenizer="bytelevel", seed=3)


@pytest.fixture(scope="session")
def bert_ner_uncased(tmp_path_factory) -> Path:
    return build_token_classifier(tmp_path_factory.mktemp("bert_ner_uncased"), lowercase=True, seed=4)


@pytest.fixture(scope="session")
def encoder(tmp_path_factory) -> Path:
    """A tiny random BERT encoder with no task head (what fine-tuning starts from)."""
    return build_encoder(tmp_path_factory.mktemp("encoder"))


@pytest.fixture(scope="session")
def bert_textcat(tmp_path_factory) -> Path:
    return build_sequence_classifier(tmp_path_factory.mktemp("bert_textcat"))


@pytest.fixture(scope="session")
def conll_labels():
    return list(CONLL_LABELS)
