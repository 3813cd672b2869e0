"""Backends behind one interface, each a config block on spaCy's registry
`hf_backends`: a third-party backend is one class and one registration line
(here a numpy one, registered from this test module, and one from a package
installed in the test, found by its entry point); the built-in torch backend
saves what it loaded faithfully; the old `backend = "torch"` keys still load."""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy

from spacy_hf_ner.backends.registry import registry
from spacy_hf_ner.errors import HFNerWarning, SpacyHFNerError
from spacy_hf_ner.ty import Backend, BackendLoader, LoadRequest, TrainableBackend

from models import build_token_classifier

TABLE = "numpy_head.npy"


class NumpyBackend:
    """Logits that depend on the token id only: a (vocab, labels) table."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def forward(self, batch):
        return self.table[batch["input_ids"]].astype(np.float32)

    def save(self, path: Path) -> None:
        np.save(path / TABLE, self.table)


class NumpyLoader:
    """The block `@hf_backends = "test-numpy.v1"`, `scale`: the table's logits times it."""

    name = "test-numpy.v1"
    trainable = False

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def load(self, request: LoadRequest) -> NumpyBackend:
        return NumpyBackend(np.load(Path(request.source) / TABLE) * self.scale)


@registry.register("test-numpy.v1")
def numpy_backend(scale: float = 1.0) -> NumpyLoader:
    return NumpyLoader(scale)


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
    block = {"@hf_backends": "test-numpy.v1", "scale": 2.0}
    ner = nlp.add_pipe("hf_ner", config={"model": str(numpy_model), "backend": block})
    assert isinstance(ner.runtime.loader, BackendLoader) and not ner.is_trainable  # known before loading
    doc = nlp("Yesterday Angela Merkel went to Paris .")
    assert [(e.text, e.label_) for e in doc.ents] == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    assert isinstance(ner.runtime.backend, Backend) and not isinstance(ner.runtime.backend, TrainableBackend)
    assert not ner.is_trainable and ner.runtime.trainable is None
    nlp.to_disk(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "hf_ner" / "model" / TABLE).is_file()
    assert spacy.util.load_config(tmp_path / "pipe" / "config.cfg")["components"]["hf_ner"]["backend"] == block
    loaded = spacy.load(tmp_path / "pipe")
    assert loaded.get_pipe("hf_ner").runtime.loader.scale == 2.0
    assert [(e.text, e.label_) for e in loaded("Angela Merkel in Paris").ents] == [
        ("Angela Merkel", "PER"),
        ("Paris", "LOC"),
    ]


def test_an_unknown_old_backend_name_names_the_registered_ones(bert_ner):
    nlp = spacy.blank("en")
    with pytest.raises(SpacyHFNerError, match=r"\[E020\].*`backend` = 'tensorflow'.*'torch', 'onnx'.*test-numpy\.v1"):
        nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "backend": "tensorflow"})


def test_the_default_backend_is_the_torch_block(bert_ner):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "device": "cpu"})
    assert nlp.config["components"]["hf_ner"]["backend"] == {"@hf_backends": "spacy-hf-ner.torch.v1", "dtype": "float32", "learn_rate_scale": 1.0}
    assert ner.is_trainable  # the block says so, before loading
    nlp.initialize()
    assert isinstance(ner.runtime.backend, TrainableBackend) and ner.runtime.trainable is ner.runtime.backend
    assert "dtype" not in ner.cfg and "onnx_file" not in ner.cfg and "backend" not in ner.cfg


@pytest.mark.parametrize(
    "old, block",
    [
        ({"backend": "torch", "onnx_file": None, "dtype": "float32"}, {"@hf_backends": "spacy-hf-ner.torch.v1", "dtype": "float32"}),
        ({"backend": "spacy-hf-ner.torch.v1", "dtype": "bfloat16"}, {"@hf_backends": "spacy-hf-ner.torch.v1", "dtype": "bfloat16"}),
        ({"backend": "test-numpy.v1"}, {"@hf_backends": "test-numpy.v1"}),
    ],
)
def test_old_backend_keys_load_with_a_warning_naming_the_block(numpy_model, bert_ner, tmp_path, old, block):
    """A pipeline saved with `backend = "torch"` (and `onnx_file`, `dtype`
    component keys) loads, and W007 shows the block to write instead."""
    model = numpy_model if old["backend"] == "test-numpy.v1" else bert_ner
    nlp = spacy.blank("en")
    with pytest.warns(HFNerWarning, match=r"\[W007\]") as record:
        ner = nlp.add_pipe("hf_ner", config={"model": str(model), "device": "cpu", **old})
    (message,) = [str(r.message) for r in record if "[W007]" in str(r.message)]
    shown = "\n".join(message.split("\n")[1:])
    want = spacy.util.load_config_from_str("[components]\n[components.hf_ner]\n" + shown)["components"]["hf_ner"]["backend"]
    assert want == block
    assert ner.runtime.loader.name == block["@hf_backends"]
    assert getattr(ner.runtime.loader, "dtype", "float32") == block.get("dtype", "float32")
    doc = nlp("Angela Merkel went to Paris")
    nlp.to_disk(tmp_path / "pipe")
    with pytest.warns(HFNerWarning, match=r"\[W007\]"):  # the saved config is the user's, as it was
        loaded = spacy.load(tmp_path / "pipe")
    assert [(e.text, e.label_) for e in loaded("Angela Merkel went to Paris").ents] == [(e.text, e.label_) for e in doc.ents]


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
    nlp.add_pipe("hf_ner", config={"model": str(path), "device": "cpu"})
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


# -- a backend from another installed package, found by its entry point ---------

PLUGIN = '''
"""A backend package: the torch model with its logits divided by a temperature."""
from spacy_hf_ner.backends.torch import TorchBackend


class Tempered:
    def __init__(self, inner, temperature):
        self.inner, self.temperature = inner, temperature

    def forward(self, batch):
        return self.inner.forward(batch) / self.temperature

    def save(self, path):
        self.inner.save(path)


class TemperedLoader:
    name = "toy.tempered.v1"
    trainable = False

    def __init__(self, temperature):
        self.temperature = temperature

    def load(self, request):
        return Tempered(TorchBackend.load(request, "float32"), self.temperature)


def make_tempered(temperature: float = 1.0) -> TemperedLoader:
    return TemperedLoader(temperature)
'''

RUN_PLUGIN = '''
import json, sys
import spacy
config = spacy.util.load_config(sys.argv[1])
nlp = spacy.util.load_model_from_config(config, auto_fill=True)
assert "toy_hf_backend" in sys.modules  # imported by spaCy through the entry point
ents = lambda nlp: [(e.text, e.label_, round(e._.hf_score, 5)) for e in nlp("Angela Merkel went to Paris").ents]
first = ents(nlp)
nlp.to_disk(sys.argv[2])
loaded = spacy.load(sys.argv[2])
backend = loaded.get_pipe("hf_ner").runtime.backend
print(json.dumps({"first": first, "loaded": ents(loaded), "backend": type(backend).__name__,
                  "temperature": backend.temperature}))
'''


def install_plugin(site: Path) -> None:
    """The package as pip installs it: its module and a .dist-info whose
    entry_points.txt registers the block in the `spacy_hf_backends` group."""
    (site / "toy_hf_backend").mkdir(parents=True)
    (site / "toy_hf_backend" / "__init__.py").write_text(PLUGIN, encoding="utf8")
    info = site / "toy_hf_backend-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-hf-backend\nVersion: 0.1.0\n", encoding="utf8")
    (info / "entry_points.txt").write_text(
        "[spacy_hf_backends]\ntoy.tempered.v1 = toy_hf_backend:make_tempered\n", encoding="utf8"
    )
    (info / "top_level.txt").write_text("toy_hf_backend\n", encoding="utf8")


def test_a_backend_of_another_package_works_from_a_config_file(bert_ner, tmp_path):
    """Nothing imports the package: spaCy finds `toy.tempered.v1` through the
    entry point when it reads the config; the pipeline saves and loads again
    with the block and its argument."""
    install_plugin(tmp_path / "site")
    config = tmp_path / "config.cfg"
    config.write_text(
        '[nlp]\nlang = "en"\npipeline = ["hf_ner"]\n\n[components]\n\n[components.hf_ner]\nfactory = "hf_ner"\n'
        f'model = "{bert_ner}"\ndevice = "cpu"\n\n[components.hf_ner.backend]\n'
        '@hf_backends = "toy.tempered.v1"\ntemperature = 4.0\n',
        encoding="utf8",
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path])}
    out = subprocess.run(
        [sys.executable, "-c", RUN_PLUGIN, str(config), str(tmp_path / "pipe")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["backend"] == "Tempered" and got["temperature"] == 4.0
    assert got["loaded"] == got["first"]
    saved = spacy.util.load_config(tmp_path / "pipe" / "config.cfg")["components"]["hf_ner"]["backend"]
    assert saved == {"@hf_backends": "toy.tempered.v1", "temperature": 4.0}
    # the temperature is applied: the same model through the torch backend scores higher
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "device": "cpu"})
    torch_scores = [e._.hf_score for e in nlp("Angela Merkel went to Paris").ents]
    assert got["first"] and torch_scores
    assert max(s for *_, s in got["first"]) < max(torch_scores)
