"""The registry `hf_backends` (entry point group `spacy_hf_backends`) and the
built-in backend blocks `spacy-hf-ner.torch.v1` and `spacy-hf-ner.onnx.v1`."""
from typing import Optional

import catalogue
from spacy import registry as spacy_registry

from ..errors import Errors, SpacyHFNerError
from ..ty import DType
from . import ONNX, TORCH
from .onnx import OnnxLoader
from .torch import TorchLoader

# made as spaCy makes its own registries, so that its entry point group is
# `spacy_hf_backends` (`spacy.registry.create` would name it `thinc_hf_backends`)
if not hasattr(spacy_registry, "hf_backends"):
    spacy_registry.hf_backends = catalogue.create("spacy", "hf_backends", entry_points=True)  # type: ignore[attr-defined]  # registries are class attributes spaCy's stubs do not list
registry: catalogue.Registry = spacy_registry.hf_backends  # type: ignore[attr-defined]  # as above


@registry.register(TORCH)
def torch_backend(dtype: DType = "float32", learn_rate_scale: float = 1.0) -> TorchLoader:
    """The transformers torch model (`backends/torch.py`), trainable.

    dtype (str): the weights' precision when running: "float32", "float16" or
        "bfloat16" (saved in the checkpoint's own dtype).
    learn_rate_scale (float): in training, the model's learning rate as a share
        of `[training.optimizer]`'s (thinc's `lr_scale`): e.g. 0.02 fine-tunes
        an already fine-tuned model at 2e-5 while spaCy heads listening to it
        learn at 1e-3. Must be > 0 (freeze the component instead with
        `[training] frozen_components`).
    """
    if not learn_rate_scale > 0:
        raise SpacyHFNerError(Errors.E174.format(value=learn_rate_scale))
    return TorchLoader(dtype, float(learn_rate_scale))


@registry.register(ONNX)
def onnx_backend(file: Optional[str] = None) -> OnnxLoader:
    """An ONNX Runtime session over an exported graph (`backends/onnx.py`),
    inference only.

    file (Optional[str]): the .onnx file inside the model, e.g.
        "onnx/model_int8.onnx"; None: "onnx/model.onnx", then "model.onnx".
    """
    return OnnxLoader(file)
