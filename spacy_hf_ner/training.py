"""Fine-tuning a component's transformers model in spaCy's training loop.

The torch model is wrapped in thinc's `PyTorchWrapper_v2`, so that spaCy's own
optimizer (`[training.optimizer]`, e.g. Adam with a warm-up schedule, L2 and
gradient clipping) updates it in `finish_update`, as spacy-transformers does;
the model itself stays a plain transformers model that `save_pretrained` writes.

Token components (hf_ner, hf_tagger) label the first model token of each word
(a spaCy token, or a unit of them for hf_ner) with its gold label and ignore
the others (-100), as the transformers token-classification guide does, and
train with token-level cross entropy. Which model token that is comes from
`alignment.align`, the same alignment inference reads, so the two cannot drift
apart. Windows are batched by `batching.plan_batches`, as in inference.
"""
import warnings
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
from spacy.training import Example, validate_examples
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, Optimizer, PyTorchWrapper_v2

from .alignment import IGNORE_INDEX, first_subword_targets, strip_offsets
from .batching import plan_batches
from .errors import Errors, HFNerWarning, SpacyHFNerError, Warnings
from .listeners import shared_update
from .ty import TrainableBackend


def wrap_torch(module: Any, device: Any) -> Model:
    """A thinc Model around a transformers model: inputs are the model's keyword
    tensors, the output is the logits tensor, and backprop takes its gradient."""

    def convert_inputs(model: Model, inputs: Dict[str, Any], is_train: bool):
        return ArgsKwargs(args=(), kwargs=inputs), lambda d_inputs: []

    def convert_outputs(model: Model, inputs_outputs: Tuple[Any, Any], is_train: bool):
        _, output = inputs_outputs
        logits = output.logits

        def backprop(d_logits: Any) -> ArgsKwargs:
            return ArgsKwargs(args=(logits,), kwargs={"grad_tensors": d_logits})

        return logits, backprop

    return PyTorchWrapper_v2(
        module, convert_inputs=convert_inputs, convert_outputs=convert_outputs, device=device
    )


WordTargets = Tuple[Tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class TrainableMixin:
    """`model`, `update`, `get_loss` and `finish_update` for a component with an
    `runtime`. Token components provide `_word_targets(example)`: the words of
    `example.predicted` as (starts, ends, is_space) and one label id per word
    (`IGNORE_INDEX` where there is no gold); others override `update`."""

    runtime: Any
    name: str
    factory: ClassVar[str]
    settings: Any
    _stride: int
    _thinc: Optional[Model]
    _training_config: Optional[Dict[str, Any]]

    if TYPE_CHECKING:  # ListenedMixin's (listeners.py), beside this mixin in HFComponent

        @property
        def listening_components(self) -> List[str]: ...

    @property
    def model(self) -> Optional[Model]:
        """The thinc wrapper of the loaded torch model (None before loading, and
        with an inference-only backend)."""
        backend = self.runtime.trainable if self.runtime.is_loaded else None
        if backend is None:
            return None
        if self._thinc is None or self._thinc.shims[0]._model is not backend.module:
            self._thinc = wrap_torch(backend.module, backend.device)
        return self._thinc

    @property
    def is_trainable(self) -> bool:
        """Whether the backend can be trained: a loaded one is a
        `TrainableBackend`; before loading, its block says (`trainable`)."""
        if self.runtime.is_loaded:
            return self.runtime.trainable is not None
        return bool(self.runtime.loader.trainable)

    def _check_trainable(self, what: str) -> None:
        """Refuse training a component whose backend is inference-only (E016)."""
        if not self.is_trainable:
            raise SpacyHFNerError(Errors.E016.format(name=self.name, backend=self.runtime.loader.name, what=what))

    def _trainable(self) -> TrainableBackend:
        """The loaded backend, which training updates (E016 if it cannot)."""
        self._check_trainable("training")
        backend = self.runtime.trainable
        assert backend is not None, "load the runtime first"
        return backend

    def finish_update(self, sgd: Optimizer) -> None:
        """Apply the optimizer to the accumulated gradients and zero them.

        The optimizer's `grad_clip` clips the norm of the whole gradient (all
        parameters together, torch's `clip_grad_norm_`, as the transformers
        Trainer's `max_grad_norm` does), not each parameter's gradient on its
        own as thinc does for its layers: per-tensor clipping of a transformer's
        ~100 tensors lets the update grow far past the limit.

        The backend's `learn_rate_scale` scales the optimizer's rate (thinc's
        `lr_scale`), which thinc's own `PyTorchShim.finish_update` cannot
        pass: parameters go through the optimizer as numpy arrays and back (on
        the CPU, views; the same numbers as thinc's shim), also on a GPU
        without cupy (a model on CUDA under `device = "auto"` while thinc runs
        on numpy), where thinc's cupy conversion would fail. On a GPU with
        cupy at scale 1, thinc's shim keeps the parameters on the device."""
        model = self.model
        if model is None:
            return
        self._check_schedule(sgd)
        backend = self._trainable()
        backend.mark_trained()
        scale = float(getattr(backend, "learn_rate_scale", 1.0))
        with clip_global_norm(backend.module, sgd):
            if backend.device.type != "cpu" and _has_cupy() and scale == 1.0:
                model.finish_update(sgd)
            else:
                finish_update_numpy(model, sgd, scale)

    def _check_schedule(self, sgd: Optimizer) -> None:
        """On the first update of a training run (`initialize` kept the
        pipeline's `[training]`): warn when the learning rate does not suit
        fine-tuning (W140: the optimizer's rate is constant; W141: the
        schedule does not end at `max_steps`)."""
        training, self._training_config = self._training_config, None
        if training is None:
            return
        if "learn_rate" not in getattr(sgd, "schedules", {}):  # the rate this run uses is constant
            training = {**training, "optimizer": {"learn_rate": sgd.learn_rate}}
        problem = schedule_warning(training, self.name, self.factory)
        if problem:
            warnings.warn(problem, HFNerWarning)

    def _inverse_label_map(self) -> Dict[str, str]:
        """spaCy label -> model label (`label_map` read backwards)."""
        return {v: k for k, v in self.settings.label_map.items()}

    def _prepare_head(
        self,
        wanted: Sequence[str],
        new_labels: Sequence[str],
        *,
        known: Optional[Callable[[List[str]], Set[str]]] = None,
        keep: bool = True,
        problem_type: Optional[str] = None,
    ) -> None:
        """Load the model for training on `wanted` labels (model names): keep its
        head when `known(head labels)` covers them (and `keep`), else give it a
        new head with `new_labels`, warning when a head is replaced."""
        self._check_trainable("initialize with gold annotations (training)")
        head = self.runtime.head_labels()
        have = set() if head is None else (known(head) if known else set(head))
        if keep and head is not None and set(wanted) <= have:
            self._ensure_loaded()
            return
        if head is not None:
            warnings.warn(
                Warnings.W003.format(
                    name=self.name,
                    model=self.runtime.model_name,
                    missing=", ".join(sorted(set(wanted) - have)) or "(labels given)",
                    have=", ".join(sorted(have)) or "no labels",
                ),
                HFNerWarning,
            )
        self.runtime.load(labels=list(new_labels), problem_type=problem_type)
        self._loaded()

    def _word_targets(self, example: Example) -> WordTargets:  # pragma: no cover
        raise NotImplementedError

    def _ensure_loaded(self) -> None:  # pragma: no cover - HFComponent's
        raise NotImplementedError

    def _loaded(self) -> None:  # pragma: no cover - HFComponent's
        raise NotImplementedError

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples: `_learn` computes the loss and the
        gradients (for token components, one cross-entropy step over their
        windows), then `sgd` (if given) applies them. The model's own dropout
        applies; `drop` is unused.

        RETURNS (Dict[str, float]): the losses, with this component's added.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.update")
        self._check_trainable("update")
        self._ensure_loaded()
        loss = self._learn(examples)
        if loss is None:  # nothing to learn from: no step
            return losses
        if sgd not in (None, False):
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def _learn(self, examples: List[Example]) -> Optional[float]:
        """The loss of `examples`, its gradients accumulated in the model (None:
        no example has a target): token-level cross entropy over their windows,
        batched as in inference (`batching.plan_batches`), the gradients summed;
        with listeners, the shared pass (`listeners.shared_update`)."""
        if self.listening_components:  # listeners train on the same pass
            return shared_update(self, examples)
        model = self.model
        assert model is not None, "a loaded trainable backend"
        windows, targets = self._training_windows(examples)
        total = int(sum((t != IGNORE_INDEX).sum() for t in targets))
        if total == 0:
            return None
        lengths = np.array([len(w.ids) for w in windows])
        loss = 0.0
        for batch in plan_batches(lengths, self.settings.batch_size):
            rows = batch.tolist()
            gold = _padded([targets[i] for i in rows])
            if (gold == IGNORE_INDEX).all():
                continue
            logits, backprop = model.begin_update(self.torch_inputs([windows[i] for i in rows]))
            part, d_logits = self.get_loss(examples, (logits, gold), normalizer=total)
            backprop(d_logits)
            loss += part
        return loss

    def get_loss(
        self, examples: Iterable[Example], scores: Tuple[Any, np.ndarray], normalizer: int = 0
    ) -> Tuple[float, Any]:
        """Cross entropy of (logits, targets) over the targets that are not -100,
        summed and divided by `normalizer` (default: their count). Returns the
        loss and its gradient with respect to the logits."""
        import torch

        logits, gold = scores
        target = torch.from_numpy(gold).to(logits.device)
        n = normalizer or int((gold != IGNORE_INDEX).sum())
        leaf = logits.detach().float().requires_grad_()
        loss = torch.nn.functional.cross_entropy(
            leaf.reshape(-1, leaf.shape[-1]),
            target.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        ) / max(n, 1)
        loss.backward()
        return float(loss.item()), leaf.grad.to(logits.dtype)

    def torch_inputs(self, windows: Sequence[Any]) -> Dict[str, Any]:
        """The padded torch inputs of a batch of windows, on the model's device."""
        return self._trainable().to_torch(self.runtime.padded(windows))

    def _training_windows(self, examples: Sequence[Example]) -> Tuple[List[Any], List[np.ndarray]]:
        """The windows of the examples' texts and their first-subword targets."""
        texts = [eg.predicted.text for eg in examples]
        windows = self.runtime.encode(texts, self._stride)
        gold = [self._word_targets(eg) for eg in examples]
        targets = []
        for window in windows:
            (w_starts, w_ends, w_space), word_gold = gold[window.doc]
            starts, ends = window.offsets[:, 0], window.offsets[:, 1]
            starts, ends, _ = strip_offsets(texts[window.doc], starts, ends)
            ends = np.where(window.special, starts, ends)
            targets.append(first_subword_targets(starts, ends, w_starts, w_ends, w_space, word_gold))
        return windows, targets


def _has_cupy() -> bool:
    from thinc.util import has_cupy_gpu

    return bool(has_cupy_gpu)


@contextmanager
def clip_global_norm(module: Any, sgd: Optimizer) -> Iterator[None]:
    """Clip the gradients of `module` to the optimizer's `grad_clip` by their
    global norm, and hide `grad_clip` from the optimizer while the block runs
    (so thinc does not clip again per parameter)."""
    clip = float(getattr(sgd, "grad_clip", 0.0) or 0.0)
    if clip <= 0:
        yield
        return
    import torch

    grads = [p for p in module.parameters() if p.grad is not None]
    if grads:
        torch.nn.utils.clip_grad_norm_(grads, clip)
    sgd.grad_clip = 0.0
    try:
        yield
    finally:
        sgd.grad_clip = clip


def finish_update_numpy(model: Model, sgd: Optimizer, lr_scale: float = 1.0) -> None:
    """thinc's `PyTorchShim.finish_update` with the optimizer on numpy arrays of
    the parameters, whatever device they are on, at `lr_scale` times its rate."""
    import torch

    shim = model.shims[0]
    for name, param in shim._model.named_parameters():
        if param.grad is None:
            continue
        weights, grad = param.data.detach().float().cpu().numpy(), param.grad.detach().float().cpu().numpy()
        data, _ = sgd((shim.id, name), weights, grad, lr_scale=lr_scale)
        with torch.no_grad():
            param.data.copy_(torch.from_numpy(data).to(param.device, param.dtype))
        param.grad.zero_()


def _padded(rows: Sequence[np.ndarray]) -> np.ndarray:
    out = np.full((len(rows), max(len(r) for r in rows)), IGNORE_INDEX, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def schedule_warning(training: Dict[str, Any], name: str, factory: str) -> Optional[str]:
    """The warning for a `[training]` section whose learning rate does not suit
    fine-tuning: a constant rate (W140), or a schedule with `total_steps` that
    does not end at `max_steps` (W141, saying what the schedule itself gives
    at the last step); None when it is fine."""
    rate = (training.get("optimizer") or {}).get("learn_rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        return Warnings.W140.format(name=name, rate=rate, factory=factory)
    if not isinstance(rate, dict):
        return None
    total = rate.get("total_steps")
    max_steps = training.get("max_steps") or 0
    if not isinstance(total, int) or not isinstance(max_steps, int) or max_steps <= 0 or total == max_steps:
        return None
    schedule = registry.resolve({"rate": rate})["rate"]
    consequence = schedule_end(list(islice(schedule, max(total, max_steps) + 1)), max_steps)
    if consequence is None:
        return None
    return Warnings.W141.format(name=name, total=total, max_steps=max_steps, consequence=consequence)


def schedule_end(rates: Sequence[float], max_steps: int) -> Optional[str]:
    """What a learning rate schedule (`rates[step]`, at least `max_steps` + 1
    of them) does to a run of `max_steps` steps: the steps at rate 0 at its
    end, or the rate it stops at, as a share of its peak; None when it decays
    to 0 exactly at the last step."""
    peak = max(rates, default=0.0)
    if peak <= 0:
        return None
    used = rates[:max_steps]
    idle = next((i for i, r in enumerate(used) if r <= 0 and i > 0 and all(x <= 0 for x in used[i:])), None)
    if idle is not None:
        return f"the rate is 0 from step {idle} on: the last {max_steps - idle} steps learn nothing"
    last = rates[max_steps]
    if last <= 0:
        return None
    return f"the rate at the last step is {last / peak:.1%} of its peak ({peak:g}) instead of decaying to 0"
