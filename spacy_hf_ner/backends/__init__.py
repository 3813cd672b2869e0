"""Model runtimes behind one interface (`ty.Backend`), registered by name.

The engine tokenizes, windows and batches; a backend only turns a padded batch
into logits, and saves what it loaded. Built in:

* `spacy-hf-ner.torch.v1` (config `backend = "torch"`): the transformers torch
  model; trainable.
* `spacy-hf-ner.onnx.v1` (`backend = "onnx"`): an ONNX Runtime session over an
  exported graph (`spacy-hf-ner export-onnx`); inference only.

A new backend is one module with a loader `(LoadRequest) -> Backend`, and one
registration line: `@registry.register("my-backend.v1")` on the loader, or an entry point
in the `spacy_hf_ner_backends` group. Components then take
`backend = "my-backend.v1"`.
"""
from typing import Dict

import catalogue

from ..errors import Errors
from ..ty import Backend, BackendLoader, LoadRequest

registry = catalogue.create("spacy_hf_ner", "backends", entry_points=True)

# the short names the `backend` key has always taken
ALIASES: Dict[str, str] = {"torch": "spacy-hf-ner.torch.v1", "onnx": "spacy-hf-ner.onnx.v1"}


@registry.register("spacy-hf-ner.torch.v1")
def torch_backend(request: LoadRequest) -> Backend:
    from .torch import TorchBackend

    return TorchBackend.load(request)


@registry.register("spacy-hf-ner.onnx.v1")
def onnx_backend(request: LoadRequest) -> Backend:
    from .onnx import OnnxBackend

    return OnnxBackend.load(request)


def get_loader(backend: str, name: str) -> BackendLoader:
    """The loader registered as `backend` (or the name it is short for)."""
    key = ALIASES.get(backend, backend)
    if key not in registry:
        available = ", ".join(repr(n) for n in [*ALIASES, *sorted(registry.get_all())])
        raise ValueError(Errors.E020.format(name=name, backend=backend, available=available))
    return registry.get(key)
