"""Model runtimes behind one interface, each a config block on spaCy's
registry `hf_backends`.

The runtime tokenizes, windows and batches; a backend only turns a padded batch
into logits, and saves what it loaded. A component's `backend` is a block with
the backend's own arguments:

    [components.hf_ner.backend]
    @hf_backends = "spacy-hf-ner.onnx.v1"
    file = "onnx/model_int8.onnx"

Built in:

* `spacy-hf-ner.torch.v1` (`dtype`): the transformers torch model; trainable.
* `spacy-hf-ner.onnx.v1` (`file`): an ONNX Runtime session over an exported
  graph (`spacy-hf-ner export-onnx`); inference only.

A new backend is a function returning a `ty.BackendLoader`, registered with
`@spacy.registry.hf_backends("my-backend.v1")` or through the
`spacy_hf_backends` entry point group (so a config file finds it without
importing anything first). The registry and the built-in blocks are in
`registry.py`; the old keys (`backend = "onnx"`, `onnx_file`, `dtype`) are read
by `legacy.py`. This module holds only the names and imports nothing, so that
the command line (`export-onnx`) starts without spaCy.
"""

TORCH = "spacy-hf-ner.torch.v1"
ONNX = "spacy-hf-ner.onnx.v1"
# the short names the old `backend` key took
ALIASES = {"torch": TORCH, "onnx": ONNX}
