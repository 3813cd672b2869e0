"""Types shared across the package: every config choice as a `Literal`
(defined here once), and the `Backend` protocol a model runtime implements.

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
    """What the engine asks of a backend loader.

    source: a local directory or hub id holding config.json (and the weights).
    config: its transformers config (`id2label` decides the output size).
    task: "token" or "sequence".
    input_names: the batch inputs the tokenizer produces ("input_ids",
        "attention_mask", and "token_type_ids" where it has them).
    device, dtype: the component's `device` and `dtype`.
    revision: the hub revision (None for a local directory).
    local_only: True when loading a saved pipeline (never the hub).
    onnx_file: the component's `onnx_file` (a path inside the model).
    labels, problem_type: a new classification head for fine-tuning (None:
        the model's own head).
    name: the component's name, for error messages.
    """

    source: str
    config: Any
    task: Task
    input_names: Sequence[str]
    device: str
    dtype: str
    revision: Optional[str]
    local_only: bool
    onnx_file: Optional[str]
    labels: Optional[Sequence[str]]
    problem_type: Optional[str]
    name: str


@runtime_checkable
class Backend(Protocol):
    """A loaded model runtime: turns a padded batch into logits.

    `forward` takes int64 arrays (batch, longest) named as in
    `LoadRequest.input_names` and returns float32 logits: (batch, longest,
    labels) for task "token", (batch, labels) for "sequence". `save` writes the
    weights into a model folder that the engine completes with config.json and
    the tokenizer, so the same loader reads it back. `trainable` backends also
    expose `module` (a torch module) and `device`.
    """

    trainable: bool

    def forward(self, batch: Dict[str, np.ndarray]) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...


class BackendLoader(Protocol):
    """A registered backend: `(request) -> Backend`. Register one with
    `@spacy_hf_ner.backends.registry.register("my-backend.v1")`, or through the
    `spacy_hf_ner_backends` entry point group."""

    def __call__(self, request: LoadRequest) -> Backend: ...
