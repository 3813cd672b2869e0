"""Backends behind one interface: a third-party backend is one class and one
registration line (here a numpy one, registered from this test module), and
the built-in torch backend saves what it loaded faithfully."""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy

from models import build_token_classifier
from spacy_hf_ner.backends import registry
from spacy_hf_ner.ty import Backend, LoadRequest

TABLE = "numpy_head.npy"


class NumpyBackend:
    """Logits that depend on the token id only: a (vocab, labels) table."""

    trainable = False

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def forward(self, batch):
        return self.table[batch["input_ids"]].astype(np.float32)

    def save(self, path: Path) -> None:
        np.save(path / TABLE, self.table)


@registry.register("test-numpy.v1")
def load_numpy(request: LoadRequest) -> NumpyBackend:
    return NumpyBackend(np.load(Path(request.source) / TABLE))


@pytest.fixture
def numpy_model(bert_ner, tmp_path):
    """The tiny model's config and tokenizer with a table that tags Angela
    Merkel as a person and Paris as a location."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(bert_ner)
    tokenizer = AutoTokenizer.from_pretrained(bert_ner)
    config.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    table = np.zeros((len(tokenizer), len(config.id2label)), dtype=np.float32)
    table[:, config.label2id["O"]] = 5.0
    for word, label in (("Angela", "B-PER"), ("Merkel", "I-PER"), ("Paris", "B-LOC")):
        table[tokenizer.convert_tokens_to_ids(word)] = 0.0
        table[tokenizer.convert_tokens_to_ids(word), config.label2id[label]] = 5.0
    np.save(tmp_path / "m" / TABLE, table)
    return tmp_path / "m"


def test_a_registered_backend_runs_the_component_and_saves(numpy_model, tmp_path):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(numpy_model), "backend": "test-numpy.v1"})
    doc = nlp("Yesterday Angela Merkel went to Paris .")
    assert [(e.text, e.label_) for e in doc.ents] == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    assert isinstance(ner.engine.backend, Backend) and not ner.is_trainable
    nlp.to_disk(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "hf_ner" / "model" / TABLE).is_file()
    loaded = spacy.load(tmp_path / "pipe")
    assert [(e.text, e.label_) for e in loaded("Angela Merkel in Paris").ents] == [
        ("Angela Merkel", "PER"),
        ("Paris", "LOC"),
    ]


def test_an_unknown_backend_names_the_registered_ones(bert_ner):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=r"\[E020\].*`backend` = 'tensorflow'.*'torch', 'onnx'.*test-numpy\.v1"):
        nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "backend": "tensorflow"})


def test_versioned_names_of_the_builtin_backends(bert_ner):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "backend": "spacy-hf-ner.torch.v1", "device": "cpu"})
    nlp.initialize()
    assert ner.is_trainable and type(ner.engine.backend).__name__ == "TorchBackend"


def _safetensors_dtypes(path: Path):
    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return {v["dtype"] for k, v in header.items() if k != "__metadata__"}


def test_torch_saves_in_the_checkpoint_dtype_with_readable_files(tmp_path):
    """A float16 checkpoint run in float32 is saved as float16 (not doubled in
    size), in files the group and others can read, as spaCy writes its own."""
    import torch
    from transformers import AutoModelForTokenClassification

    path = build_token_classifier(tmp_path / "fp16")
    AutoModelForTokenClassification.from_pretrained(path).to(torch.float16).save_pretrained(path)
    assert _safetensors_dtypes(path / "model.safetensors") == {"F16"}
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(path), "device": "cpu", "dtype": "float32"})
    nlp.initialize()
    old = os.umask(0o022)
    try:
        nlp.to_disk(tmp_path / "pipe")
    finally:
        os.umask(old)
    saved = tmp_path / "pipe" / "hf_ner" / "model" / "model.safetensors"
    assert _safetensors_dtypes(saved) == {"F16"}
    for file in (tmp_path / "pipe" / "hf_ner" / "model").iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o644, (file, oct(file.stat().st_mode))  # as spaCy writes its own
    assert [e.text for e in spacy.load(tmp_path / "pipe")("Angela Merkel").ents] == [
        e.text for e in nlp("Angela Merkel").ents
    ]


def test_the_fork_hook_waits_for_a_cpu_torch_model(bert_ner):
    """Importing the package leaves forks alone; loading a CPU torch model
    makes forked children single-threaded (torch's pool would deadlock)."""
    code = (
        "import spacy, spacy_hf_ner\n"
        "from spacy_hf_ner.backends import torch as tb\n"
        "print(tb._fork_hook_registered)\n"
        "nlp = spacy.blank('en'); nlp.add_pipe('hf_ner', config={'model': %r, 'device': 'cpu'}); nlp.initialize()\n"
        "print(tb._fork_hook_registered)\n" % str(bert_ner)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
