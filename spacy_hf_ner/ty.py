"""Types shared across the package: every config choice as a `Literal`
(defined here once), and the protocols of the backends: `BackendLoader` (a
config block), `Backend` (a loaded runtime) and `TrainableBackend`.

No spaCy, no torch.
"""
from pathlib import Path
from typing import Any, Dict, Literal, NamedTuple, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

Task = Literal["token", "sequence"]
# transformers' TokenClassificationPipeline strategies; the last three pool
# subwords into words
Strategy = Literal["none", "simple", "first", "average", "max"]
WordStrategy = Literal["first", "average", "max"]
Words = Literal["spacy", "model"]
Decoding = Literal["auto", "greedy", "viterbi"]
DType = Literal["float32", "float16", "bfloat16"]
Annotate = Literal["ents", "spans", "both"]
ExistingEnts = Literal["replace", "overwrite", "keep"]
TagAttr = Literal["auto", "pos", "tag"]
Function = Literal["auto", "sigmoid", "softmax", "none"]
LongText = Literal["windows", "truncate_warn"]
Scheme = Literal["bio", "bioes", "biluo"]
# where `spacy-hf-ner annotate` runs the pipeline
Engine = Literal["local", "ray", "spark"]
# `export-onnx --int8-mode`: which weights get int8, with which scales
Int8Mode = Literal["per-channel", "per-tensor", "reduce-range", "blockwise", "blockwise-embeddings"]


class LoadRequest(NamedTuple):
    """What the runtime asks of a backend loader.

    source: a local directory or hub id holding config.json (and the weights).
    config: its transformers config (`id2label` decides the output size).
    task: "token" or "sequence".
    input_names: the batch inputs the tokenizer produces ("input_ids",
        "attention_mask", and "token_type_ids" where it has them).
    device: the component's `device`.
    revision: the hub revision (None for a local directory).
    local_only: True when loading a saved pipeline (never the hub).
    labels, problem_type: a new classification head for fine-tuning (None:
        the model's own head).
    name: the component's name, for error messages.

    A backend's own options (the torch dtype, the ONNX file) are not here: they
    are the arguments of its config block, held by its `BackendLoader`.
    """

    source: str
    config: Any
    task: Task
    input_names: Sequence[str]
    device: str
    revision: Optional[str]
    local_only: bool
    labels: Optional[Sequence[str]]
    problem_type: Optional[str]
    name: str


@runtime_checkable
class Backend(Protocol):
    """A loaded model runtime: turns a padded batch into logits.

    `forward` takes int64 arrays (batch, longest) named as in
    `LoadRequest.input_names` and returns float32 logits: (batch, longest,
    labels) for task "token", (batch, labels) for "sequence". `save` writes the
    weights into a model folder that the runtime completes with config.json and
    the tokenizer, so the same loader reads it back.
    """

    def forward(self, batch: Dict[str, np.ndarray]) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...


@runtime_checkable
class TrainableBackend(Backend, Protocol):
    """A backend that spaCy's training loop can update (`training.py`): a torch
    module on a device, its inputs as torch tensors, and a mark that its
    weights changed (so `save` writes them as trained)."""

    module: Any  # a torch.nn.Module returning an object with `.logits`
    device: Any  # its torch.device
    learn_rate_scale: float  # its learning rate as a share of the optimizer's (read as 1.0 where absent)

    def to_torch(self, batch: Dict[str, np.ndarray]) -> Dict[str, Any]: ...

    def mark_trained(self) -> None: ...


@runtime_checkable
class BackendLoader(Protocol):
    """What a backend's config block makes: `[components.NAME.backend]`
    `@hf_backends = "spacy-hf-ner.onnx.v1"` with the backend's own arguments.
    Register one with `@spacy.registry.hf_backends("my-backend.v1")` on a
    function returning it (or through the `spacy_hf_backends` entry point
    group).

    name: the registered name, for messages. trainable: whether `load` returns
    a `TrainableBackend` (known before loading anything).
    """

    name: str
    trainable: bool

    def load(self, request: LoadRequest) -> Backend: ...
