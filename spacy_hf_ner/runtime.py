"""A tokenizer, a config and a backend: what runs under every component.

The runtime loads the fast tokenizer and the transformers config itself (its
offsets and labels are the same whatever runs the model), asks the registered
backend (`backends/`) for the model, and runs texts the fast way: windows of
the model's length that overlap and never truncate (`windows.py`), windows of
all docs sorted by length into padded batches (`batching.py`), logits per
window. What the logits mean is up to the component.
"""
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import windows as W
from .batching import plan_batches
from .errors import Errors, SpacyHFNerError
from .kinds import bare_kind
from .sources import TASK_SUFFIX, looks_like_path, quiet_transformers, refuse_pipeline_folder, resolve_model, task_of
from .ty import Backend, BackendLoader, LoadRequest, Task, TrainableBackend

# models whose position ids start after the padding index (max_position_embeddings
# counts two extra positions)
_POSITION_OFFSET_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer", "mpnet"}
Window = W.Window


class ModelRuntime:
    """A tokenizer and a model, loaded lazily, run in batched windows.

    model: hub id, local directory or "spacy-hf-ner:NAME". revision: hub
        revision (branch, tag, commit).
    task: "token" for *ForTokenClassification, "sequence" for
        *ForSequenceClassification.
    max_length: window length in model tokens (special tokens included); None
        takes the model's own limit.
    backend: what the component's backend block made (`ty.BackendLoader`); it
        loads the model runtime.
    """

    def __init__(
        self,
        model: str,
        *,
        revision: Optional[str],
        task: Task,
        device: str,
        max_length: Optional[int],
        backend: BackendLoader,
        name: str,
    ) -> None:
        self.model_name = model
        self.revision = revision
        self.task = task
        self.device_name = device
        self.max_length_cfg = max_length
        self.name = name
        self.loader = backend
        self.tokenizer: Any = None
        self.config: Any = None  # the transformers config
        self.backend: Optional[Backend] = None
        self._token_lengths: Optional[np.ndarray] = None

    # -- loading -------------------------------------------------------------

    @property
    def is_loaded(self) -> bool:
        return self.backend is not None

    def load(
        self,
        path: Optional[Path] = None,
        *,
        labels: Optional[Sequence[str]] = None,
        problem_type: Optional[str] = None,
    ) -> None:
        """Load from `path` (a saved pipeline's model folder, always offline) or
        from the config's `model` and `revision`.

        labels: give the model a new classification head with these labels (for
            fine-tuning); the encoder may then be any base model (e.g. a plain
            BertModel checkpoint). problem_type: the head's problem type
            ("single_label_classification" / "multi_label_classification").
        """
        from transformers import AutoTokenizer

        source = str(path) if path is not None else resolve_model(self.model_name, self.name)
        local = path is not None or os.path.isdir(source)
        if path is None and not local and looks_like_path(source):
            raise SpacyHFNerError(Errors.E001.format(name=self.name, model=source))
        if path is None and local:
            refuse_pipeline_folder(source, self.name)
        kwargs: Dict[str, Any] = {"local_files_only": True} if path is not None else {}
        if path is None and self.revision:
            kwargs["revision"] = self.revision
        config = self._read(path, "config.json", lambda: self._auto_config(source, kwargs, wrap=path is None))
        if labels is None:
            self._check_architecture(config)
        tokenizer = self._read(path, "tokenizer", lambda: AutoTokenizer.from_pretrained(source, **kwargs))
        if not getattr(tokenizer, "is_fast", False):
            raise SpacyHFNerError(Errors.E004.format(name=self.name, model=source))
        request = LoadRequest(
            source=source,
            config=config,
            task=self.task,
            input_names=list(getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"])),
            device=self.device_name,
            revision=None if path is not None else self.revision,
            local_only=path is not None,
            labels=labels,
            problem_type=problem_type,
            name=self.name,
        )
        backend = self._read(path, "model weights", lambda: self.loader.load(request))
        n_labels, n_out = len(config.id2label), config.num_labels
        if n_labels != n_out:
            raise SpacyHFNerError(Errors.E010.format(name=self.name, n_labels=n_labels, n_out=n_out))
        self.tokenizer, self.config, self.backend = tokenizer, config, backend
        self._token_lengths = None
        self._check_window()

    def _auto_config(self, source: str, kwargs: Dict[str, Any], wrap: bool = True) -> Any:
        from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as e:
            if not wrap:
                raise
            raise SpacyHFNerError(Errors.E002.format(name=self.name, model=source, revision=self.revision, error=e)) from e

    def _read(self, path: Optional[Path], what: str, read: Any) -> Any:
        """Run `read()`; for a saved pipeline (`path`), any failure of an
        unreadable file becomes E025 naming the component and the file."""
        if path is None:
            return read()
        try:
            return read()
        except SpacyHFNerError:  # already ours: says what to do
            raise
        except Exception as e:  # safetensors, tokenizers and json errors have no common base
            raise SpacyHFNerError(Errors.E025.format(name=self.name, what=what, path=path, error=_short(e))) from e

    def head_labels(self) -> Optional[List[str]]:
        """The labels of the model's classification head for this task, or None
        when `model` is not such a classifier (e.g. a plain encoder to fine-tune).
        Reads only the config when the model is not loaded."""
        if self.is_loaded:
            return self.id2label
        source = resolve_model(self.model_name, self.name)
        config = self._auto_config(source, {"revision": self.revision} if self.revision else {})
        if task_of(getattr(config, "architectures", None)) != self.task:
            return None
        return [str(config.id2label[i]) for i in range(len(config.id2label))]

    def _check_architecture(self, config: Any) -> None:
        architectures = getattr(config, "architectures", None) or []
        found = task_of(architectures)
        if architectures and found != self.task:
            hint = f"; a *{TASK_SUFFIX[found]} model belongs in `{bare_kind(found).factory}`" if found else ""
            raise SpacyHFNerError(
                Errors.E003.format(
                    name=self.name,
                    model=self.model_name,
                    architectures="/".join(architectures),
                    kind=self.task,
                    suffix=TASK_SUFFIX[self.task],
                    factory=self.name,
                    hint=hint,
                )
            )

    def save(self, path: Path) -> None:
        """Write config, tokenizer and the backend's weights to `path`: a model
        folder that plain transformers (or the same backend) loads, readable by
        the group and others as spaCy's own files are."""
        assert self.backend is not None, "save a loaded runtime"
        path.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            self.config.save_pretrained(path)
            self.tokenizer.save_pretrained(path)
        self.backend.save(path)
        umask = os.umask(0)
        os.umask(umask)
        for file in path.rglob("*"):
            os.chmod(file, (0o777 if file.is_dir() else 0o666) & ~umask)

    # -- properties of the loaded model --------------------------------------

    @property
    def trainable(self) -> Optional[TrainableBackend]:
        """The loaded backend when training can update it (None otherwise)."""
        return self.backend if isinstance(self.backend, TrainableBackend) else None

    @property
    def model(self) -> Any:
        """The torch module of a trainable backend (None otherwise)."""
        trainable = self.trainable
        return None if trainable is None else trainable.module

    @property
    def id2label(self) -> List[str]:
        id2label = self.config.id2label
        return [str(id2label[i]) for i in range(len(id2label))]

    @property
    def n_special(self) -> int:
        return int(self.tokenizer.num_special_tokens_to_add(pair=False))

    @property
    def positions(self) -> Optional[int]:
        """How many tokens the model can read (its position embeddings)."""
        positions = getattr(self.config, "max_position_embeddings", None)
        if not positions:
            return None
        if getattr(self.config, "model_type", "") in _POSITION_OFFSET_MODELS:
            positions -= 2
        return int(positions)

    @property
    def window(self) -> int:
        """Window length in model tokens, special tokens included."""
        if self.max_length_cfg is not None:
            return int(self.max_length_cfg)
        limits = []
        model_max = getattr(self.tokenizer, "model_max_length", None)
        if model_max and 0 < model_max < 1_000_000:
            limits.append(int(model_max))
        if self.positions:
            limits.append(self.positions)
        return min(limits) if limits else 512

    def _check_window(self) -> None:
        """`max_length` must leave room for a text token and fit the model."""
        if self.max_length_cfg is None:
            return
        limit = self.positions
        if limit is not None and self.max_length_cfg > limit:
            raise SpacyHFNerError(
                Errors.E024.format(name=self.name, max_length=self.max_length_cfg, model=self.model_name, limit=limit)
            )
        least = self.n_special + 1
        if self.max_length_cfg < least:
            raise SpacyHFNerError(
                Errors.E029.format(name=self.name, max_length=self.max_length_cfg, special=self.n_special, least=least)
            )

    @property
    def word_aware(self) -> bool:
        """Whether the tokenizer marks continuing subwords (transformers' test)."""
        backend = getattr(self.tokenizer, "_tokenizer", None)
        return bool(backend and getattr(backend.model, "continuing_subword_prefix", None))

    @property
    def token_lengths(self) -> np.ndarray:
        """Length of each vocabulary entry's string, by id."""
        if self._token_lengths is None:
            tokens = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
            self._token_lengths = np.array([len(t or "") for t in tokens], dtype=np.int64)
        return self._token_lengths

    @property
    def unk_id(self) -> int:
        unk = self.tokenizer.unk_token_id
        return -1 if unk is None else int(unk)

    def default_stride(self) -> int:
        """An eighth of the window (what `stride` = null means)."""
        return max(0, min(self.window // 8, self.window - self.n_special - 1))

    def resolve_stride(self, stride: Optional[int]) -> int:
        """The configured stride, checked against the window; None: an eighth of
        the window."""
        if stride is None:
            return self.default_stride()
        limit = self.window - self.n_special - 1
        if stride > limit:
            raise SpacyHFNerError(
                Errors.E005.format(
                    name=self.name,
                    stride=stride,
                    window=self.window - self.n_special,
                    max_length=self.window,
                    special=self.n_special,
                    limit=limit,
                    suggest=max(0, min(limit, self.window // 8)),
                )
            )
        return stride

    def reads_per_token(self, stride: int) -> float:
        """How many times a long text's tokens are read at this stride: the
        window's text tokens over the tokens each window advances."""
        room = self.window - self.n_special
        return room / max(1, room - stride)

    # -- running -------------------------------------------------------------

    def encode(self, texts: Sequence[str], stride: int) -> List[Window]:
        """Tokenize texts into windows of at most `window` tokens overlapping by
        `stride` tokens, as transformers' pipeline does with `stride`."""
        return W.encode(self.tokenizer, texts, self.window, stride)

    def encode_pairs(self, texts: Sequence[str], pairs: Sequence[str]) -> Tuple[List[Window], List[bool]]:
        """See `windows.encode_pairs`."""
        return W.encode_pairs(self.tokenizer, texts, pairs, self.window)

    def padded(self, windows: Sequence[Window]) -> Dict[str, np.ndarray]:
        """A batch of windows padded to its longest (see `windows.pad`)."""
        return W.pad(windows, self.tokenizer.pad_token_id)

    def logits(self, windows: Sequence[Window], batch_size: int) -> List[np.ndarray]:
        """Raw float32 logits for each window (token task: (n, labels); sequence
        task: (labels,)), computed in length-sorted batches of at most
        `batch_size` windows, closed early where padding would dominate (see
        `batching.plan_batches`)."""
        assert self.backend is not None, "load the runtime first"
        out: List[Any] = [None] * len(windows)
        for rows, logits in self._batches(windows, batch_size, self.backend.forward):
            for r, i in enumerate(rows):
                out[i] = logits[r, : len(windows[i].ids)] if self.task == "token" else logits[r]
        return out

    def _batches(self, windows: Sequence[Window], batch_size: int, forward: Callable[[Dict[str, np.ndarray]], Any]) -> Iterator[Tuple[List[int], Any]]:
        """`forward` over the padded batches `batching.plan_batches` makes of
        `windows`: each batch's window indices with its result."""
        if not windows:
            return
        for batch in plan_batches(np.array([len(w.ids) for w in windows]), batch_size):
            rows = batch.tolist()
            yield rows, forward(self.padded([windows[i] for i in rows]))

    def run(self, texts: Sequence[str], stride: int, batch_size: int) -> List[List[Tuple[Window, np.ndarray]]]:
        """Each text's windows with their logits, in text order: encode, run the
        windows of all texts in batches, group them back by text."""
        windows = self.encode(texts, stride)
        logits = self.logits(windows, batch_size)
        return [[(windows[i], logits[i]) for i in mine] for mine in W.by_doc(windows, len(texts))]

    def run_hidden(
        self, texts: Sequence[str], stride: int, batch_size: int, all_layers: bool
    ) -> Tuple[List[List[Tuple[Window, np.ndarray]]], List[List[np.ndarray]]]:
        """`run`, and from the same forward passes each text's windows' hidden
        states, (layers, n, width) per window (see `listeners.py`). A backend
        without `forward_hidden` (e.g. "onnx") is refused (E170)."""
        assert self.backend is not None, "load the runtime first"
        forward_hidden = getattr(self.backend, "forward_hidden", None)
        if forward_hidden is None:
            raise SpacyHFNerError(Errors.E170.format(name=self.name, backend=self.loader.name))
        windows = self.encode(texts, stride)
        logits: List[Any] = [None] * len(windows)
        hidden: List[Any] = [None] * len(windows)
        for rows, (out, states) in self._batches(windows, batch_size, lambda batch: forward_hidden(batch, all_layers)):
            for r, i in enumerate(rows):
                n = len(windows[i].ids)
                logits[i], hidden[i] = out[r, :n], states[:, r, :n]
        grouped = W.by_doc(windows, len(texts))
        return (
            [[(windows[i], logits[i]) for i in mine] for mine in grouped],
            [[hidden[i] for i in mine] for mine in grouped],
        )


def _short(error: Exception) -> str:
    """The first line of an error, with its type."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
