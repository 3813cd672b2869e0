"""Backend `spacy-hf-ner.torch.v1`: the transformers model itself.

Loads `AutoModelFor{Token,Sequence}Classification` on the component's device
and dtype, runs it under `torch.inference_mode`, and saves it with
`save_pretrained` in the dtype its checkpoint had (a float16 model stays
float16 on disk, whatever `dtype` it ran in) unless it was trained, when it is
saved as it was trained. It is the trainable backend: a new classification
head for fine-tuning is made here (`LoadRequest.labels`).
"""
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import Errors, SpacyHFNerError
from ..sources import quiet_transformers
from ..ty import DType, LoadRequest
from . import TORCH

_AUTO_CLASS = {"token": "AutoModelForTokenClassification", "sequence": "AutoModelForSequenceClassification"}
_fork_hook_registered = False


def resolve_device(device: str, name: str) -> Any:
    """The torch device of a `device` config value ("auto": CUDA, then MPS,
    then the CPU)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SpacyHFNerError(Errors.E007.format(name=name, device=device, reason="no CUDA"))
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            reason = f"{torch.cuda.device_count()} CUDA device(s)"
            raise SpacyHFNerError(Errors.E007.format(name=name, device=device, reason=reason))
    if device == "mps" and not has_mps:
        raise SpacyHFNerError(Errors.E007.format(name=name, device=device, reason="no MPS"))
    return torch.device(device)


def _single_thread_after_fork() -> None:
    """In a forked child (spaCy's `nlp.pipe(n_process=...)`), torch's inherited
    OpenMP pool deadlocks on the first parallel op: run single-threaded there,
    as torch's own DataLoader workers do."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _register_fork_hook() -> None:
    """Install `_single_thread_after_fork` once a process has loaded a torch
    model on the CPU (the only case whose forks can inherit a busy OpenMP pool);
    importing the package alone changes nothing for other forks."""
    global _fork_hook_registered
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_single_thread_after_fork)
        _fork_hook_registered = True


@dataclass(frozen=True)
class TorchLoader:
    """The block `@hf_backends = "spacy-hf-ner.torch.v1"`: loads a
    `TorchBackend` in `dtype` ("float32", "float16" or "bfloat16" weights),
    trained at `learn_rate_scale` times the optimizer's learning rate."""

    dtype: DType
    learn_rate_scale: float = 1.0
    name: ClassVar[str] = TORCH
    trainable: ClassVar[bool] = True

    def load(self, request: LoadRequest) -> "TorchBackend":
        return TorchBackend.load(request, self.dtype, learn_rate_scale=self.learn_rate_scale)


class TorchBackend:
    """A transformers torch model in eval mode on `device` (a `TrainableBackend`)."""

    def __init__(
        self, module: Any, device: Any, input_names: Sequence[str], save_dtype: Any, learn_rate_scale: float = 1.0
    ) -> None:
        self.module = module
        self.device = device
        self.input_names = list(input_names)
        # the dtype `save` writes (the checkpoint's); None after training
        self.save_dtype = save_dtype
        # in training, its learning rate as a share of the optimizer's
        self.learn_rate_scale = learn_rate_scale

    @classmethod
    def load(
        cls, request: LoadRequest, dtype: str, attn_implementation: Optional[str] = None, learn_rate_scale: float = 1.0
    ) -> "TorchBackend":
        """The model of `request` in `dtype`; `attn_implementation` as transformers
        takes it (None: its default; the ONNX export traces "eager")."""
        import torch
        import transformers

        auto_cls = getattr(transformers, _AUTO_CLASS[request.task])
        config = request.config
        kwargs: Dict[str, Any] = {"local_files_only": True} if request.local_only else {}
        if request.revision:
            kwargs["revision"] = request.revision
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        reset_head = False
        if request.labels is not None:
            old = [str(config.id2label[i]) for i in range(len(config.id2label))]
            reset_head = len(old) == len(request.labels) and old != list(request.labels)
            config.id2label = {i: str(l) for i, l in enumerate(request.labels)}
            config.label2id = {str(l): i for i, l in enumerate(request.labels)}
            config.num_labels = len(request.labels)
            if request.problem_type is not None:
                config.problem_type = request.problem_type
            kwargs["ignore_mismatched_sizes"] = True
        with warnings.catch_warnings(), quiet_transformers():
            warnings.filterwarnings("ignore", message=".*were not initialized.*")
            warnings.filterwarnings("ignore", message=".*newly initialized.*")
            try:
                module = auto_cls.from_pretrained(request.source, config=config, **kwargs)
            except RuntimeError as e:
                mismatch = _size_mismatch(request, e)
                if mismatch is None:
                    raise
                raise mismatch from e
        if reset_head:
            _reset_head(module)
        save_dtype = _parameter_dtype(module)
        device = resolve_device(request.device, request.name)
        module.to(device=device, dtype=getattr(torch, dtype))
        module.eval()
        if device.type == "cpu":
            _register_fork_hook()
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in request.input_names]
        return cls(module, device, names, save_dtype, learn_rate_scale)

    def to_torch(self, batch: Dict[str, np.ndarray]) -> Dict[str, Any]:
        """The model's inputs as torch tensors on its device."""
        import torch

        return {k: torch.from_numpy(batch[k]).to(self.device) for k in self.input_names}

    def forward(self, batch: Dict[str, np.ndarray]) -> np.ndarray:
        import torch

        self.module.eval()
        with torch.inference_mode():
            return self.module(**self.to_torch(batch)).logits.float().cpu().numpy()

    def forward_hidden(self, batch: Dict[str, np.ndarray], all_layers: bool) -> Tuple[np.ndarray, np.ndarray]:
        """The logits and the hidden states of the same forward pass: (layers,
        batch, longest, width), the embedding output and every layer's with
        `all_layers`, else the last layer's only (for transformer listeners)."""
        import torch

        self.module.eval()
        with torch.inference_mode():
            out = self.module(**self.to_torch(batch), output_hidden_states=True)
        states = out.hidden_states if all_layers else out.hidden_states[-1:]
        return out.logits.float().cpu().numpy(), torch.stack(states).float().cpu().numpy()

    def mark_trained(self) -> None:
        """The weights changed: save them as they are, not in the checkpoint's dtype."""
        self.save_dtype = None

    def save(self, path: Path) -> None:
        module = self.module
        if self.save_dtype is not None and _parameter_dtype(module) != self.save_dtype:
            import copy

            module = copy.deepcopy(module).to(dtype=self.save_dtype)
        with quiet_transformers():
            module.save_pretrained(path)


def _parameter_dtype(module: Any) -> Any:
    return next(module.parameters()).dtype


def _size_mismatch(request: LoadRequest, error: Exception) -> Optional[SpacyHFNerError]:
    """transformers refuses a checkpoint whose classifier has another number of
    outputs than `config.id2label` has labels, before the runtime's own check can
    run: say so in the runtime's words (E010)."""
    text = str(error).lower()
    if "mismatched_sizes" not in text and "size mismatch" not in text:
        return None
    n_out: Any = "another number of"
    weights = Path(request.source) / "model.safetensors"
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="numpy") as f:
            heads = [k for k in f.keys() if k.endswith("classifier.weight")]
            if heads:
                n_out = f.get_slice(heads[0]).get_shape()[0]
    except Exception:  # the count is a hint; never hide the original error
        pass
    return SpacyHFNerError(Errors.E010.format(name=request.name, n_labels=len(request.config.id2label), n_out=n_out))


def _reset_head(module: Any) -> None:
    """Re-initialize everything of a transformers model outside its encoder (the
    classification head), as `from_pretrained` does for a head it cannot load."""
    base = getattr(module, getattr(module, "base_model_prefix", ""), None)
    for child in module.children():
        if child is base:
            continue
        for sub in child.modules():
            module._init_weights(sub)
