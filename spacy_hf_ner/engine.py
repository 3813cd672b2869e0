"""Loading and running a transformers classifier: the engine under every component.

The engine owns the tokenizer and the model, and runs them the fast way:
the fast tokenizer's offsets, long texts cut into overlapping windows (never
truncated), windows of all docs in a batch sorted by length, dynamic padding,
and `torch.inference_mode`. It returns logits per window; what they mean is up
to the component.

The model is run by a runner (`runners.py`): the transformers torch model
(backend "torch") or an ONNX Runtime session over an exported graph (backend
"onnx"); tokenization, windows, batching and everything after the logits are
the same for both.
"""
import os
import shutil
from contextlib import contextmanager
import re
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .batching import plan_batches
from .errors import Errors
from .runners import BACKENDS, OnnxRunner, TorchRunner, find_onnx_file, onnx_files_to_copy, onnx_providers

# models whose position ids start after the padding index (max_position_embeddings
# counts two extra positions)
_POSITION_OFFSET_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer", "mpnet"}
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DTYPES = ("float32", "float16", "bfloat16")
# models that ship inside this package: `model = "spacy-hf-ner:<name>"`
BUNDLED_PREFIX = "spacy-hf-ner:"
BUNDLED_DIR = Path(__file__).parent / "models"


def bundled_models() -> List[str]:
    """Names of the models shipped with the package."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / "config.json").is_file())


def resolve_model(model: str, name: str) -> str:
    """The hub id or local directory that `model` stands for: "spacy-hf-ner:NAME"
    is a model shipped in this package, a directory is expanded (~)."""
    if model.startswith(BUNDLED_PREFIX):
        bundled = model[len(BUNDLED_PREFIX):]
        path = BUNDLED_DIR / bundled
        if not (path / "config.json").is_file():
            raise ValueError(
                Errors.E012.format(name=name, model=model, available=", ".join(
                    BUNDLED_PREFIX + m for m in bundled_models()) or "none")
            )
        return str(path)
    expanded = os.path.expanduser(model)
    return expanded if os.path.isdir(expanded) else model


class Window(NamedTuple):
    """One window of one text: model tokens and their offsets."""

    doc: int  # index of the text in the batch
    ids: np.ndarray  # (n,) input ids, special tokens included
    offsets: np.ndarray  # (n, 2) character offsets in the whole text
    special: np.ndarray  # (n,) bool, special tokens
    types: Optional[np.ndarray] = None  # (n,) token type ids (text pairs); None: all 0


def looks_like_path(model: str) -> bool:
    """True for values that can only be a local path, never a hub id."""
    return (
        os.path.isabs(os.path.expanduser(model))
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or "\\" in model
    )


def _single_thread_after_fork() -> None:
    """In a forked child (spaCy's `nlp.pipe(n_process=...)`), torch's inherited
    OpenMP pool deadlocks on the first parallel op: run single-threaded there,
    as torch's own DataLoader workers do."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_thread_after_fork)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars or load reports while a component loads or saves its
    model (errors still show)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if enabled:
            hf_logging.enable_progress_bar()


def resolve_device(device: str, name: str) -> Any:
    import torch

    if not _DEVICE_RE.match(device):
        raise ValueError(Errors.E006.format(name=name, device=device))
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(Errors.E007.format(name=name, device=device, reason="no CUDA"))
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            reason = f"{torch.cuda.device_count()} CUDA device(s)"
            raise ValueError(Errors.E007.format(name=name, device=device, reason=reason))
    if device == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError(Errors.E007.format(name=name, device=device, reason="no MPS"))
    return torch.device(device)


class HFEngine:
    """A tokenizer and a model, loaded lazily, run in batched windows.

    model: hub id or local directory. revision: hub revision (branch, tag, commit).
    task: "token" for *ForTokenClassification, "sequence" for
        *ForSequenceClassification.
    max_length: window length in model tokens (special tokens included); None
        takes the model's own limit.
    backend: "torch" runs the transformers model, "onnx" an ONNX Runtime session
        over `onnx_file` (a path inside the model; None: the first of
        `runners.ONNX_CANDIDATES` that exists).
    """

    def __init__(
        self,
        model: str,
        *,
        revision: Optional[str],
        task: str,
        device: str,
        dtype: str,
        max_length: Optional[int],
        name: str,
        factory: str,
        backend: str = "torch",
        onnx_file: Optional[str] = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(
                Errors.E009.format(
                    name=name, key="backend", value=backend, problem="is not a backend",
                    fix=f"use one of {', '.join(BACKENDS)}",
                )
            )
        if backend == "onnx" and dtype != "float32":
            raise ValueError(
                Errors.E009.format(
                    name=name, key="dtype", value=dtype,
                    problem="applies to backend 'torch' only (an ONNX graph has its own precision)",
                    fix="keep `dtype` = 'float32' and pick a lower-precision export with "
                    "`onnx_file`, e.g. 'onnx/model_int8.onnx' or 'onnx/model_fp16.onnx'",
                )
            )
        if backend == "torch" and onnx_file is not None:
            raise ValueError(
                Errors.E009.format(
                    name=name, key="onnx_file", value=onnx_file,
                    problem="applies to backend 'onnx' only",
                    fix="set `backend` = 'onnx' to run that file, or `onnx_file` = null",
                )
            )
        if not _DEVICE_RE.match(device):
            raise ValueError(Errors.E006.format(name=name, device=device))
        if max_length is not None and max_length < 4:
            raise ValueError(
                Errors.E009.format(
                    name=name,
                    key="max_length",
                    value=max_length,
                    problem="is too short for a window",
                    fix="leave it unset (null) to use the model's limit, or give >= 16",
                )
            )
        self.model_name = model
        self.revision = revision
        self.task = task
        self.device_name = device
        self.dtype = dtype
        self.max_length_cfg = max_length
        self.name = name
        self.factory = factory
        self.backend = backend
        self.onnx_file = onnx_file
        self.tokenizer: Any = None
        self.config: Any = None  # the transformers config
        self.runner: Any = None  # TorchRunner or OnnxRunner
        self.model: Any = None  # the torch model (backend "torch")
        self.device: Any = None  # its torch device
        self.onnx_path: Optional[Path] = None  # the ONNX file (backend "onnx")
        self.onnx_rel: Optional[str] = None  # its path inside the model
        self._token_lengths: Optional[np.ndarray] = None

    # -- loading -------------------------------------------------------------

    @property
    def is_loaded(self) -> bool:
        return self.runner is not None

    def load(
        self,
        path: Optional[Path] = None,
        *,
        labels: Optional[Sequence[str]] = None,
        problem_type: Optional[str] = None,
    ) -> None:
        """Load from `path` (a saved pipeline, always offline) or from the config's
        `model` and `revision`.

        labels: give the model a new classification head with these labels (for
            fine-tuning); the encoder may then be any base model (e.g. a plain
            BertModel checkpoint). problem_type: the head's problem type
            ("single_label_classification" / "multi_label_classification").
        """
        from transformers import AutoConfig, AutoTokenizer

        if labels is not None and self.backend != "torch":
            raise ValueError(Errors.E016.format(name=self.name, what="a new classification head"))
        source = str(path) if path is not None else resolve_model(self.model_name, self.name)
        local = path is not None or os.path.isdir(source)
        if path is None and not local and looks_like_path(source):
            raise ValueError(Errors.E001.format(name=self.name, model=source))
        kwargs: Dict[str, Any] = {"local_files_only": True} if path is not None else {}
        if path is None and self.revision:
            kwargs["revision"] = self.revision
        try:
            config = AutoConfig.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as e:
            raise ValueError(
                Errors.E002.format(
                    name=self.name, model=source, revision=self.revision, error=e
                )
            ) from e
        new_head = labels is not None
        reset_head = False  # a head of the same size but other labels: re-initialize it
        if new_head:
            old = [str(config.id2label[i]) for i in range(len(config.id2label))]
            reset_head = len(old) == len(labels) and old != list(labels)
            config.id2label = {i: str(l) for i, l in enumerate(labels)}
            config.label2id = {str(l): i for i, l in enumerate(labels)}
            config.num_labels = len(labels)
            if problem_type is not None:
                config.problem_type = problem_type
        else:
            self._check_architecture(config)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as e:
            raise ValueError(
                Errors.E002.format(name=self.name, model=source, revision=self.revision, error=e)
            ) from e
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(Errors.E004.format(name=self.name, model=source))
        if self.backend == "onnx":
            self._load_onnx(source, config, tokenizer, local_only=path is not None)
        else:
            self._load_torch(source, config, tokenizer, kwargs, new_head=new_head, reset_head=reset_head)

    def _load_onnx(self, source: str, config: Any, tokenizer: Any, *, local_only: bool) -> None:
        onnx_path, onnx_rel = find_onnx_file(
            source, self.onnx_file, revision=self.revision, local_only=local_only, name=self.name
        )
        runner = OnnxRunner(onnx_path, onnx_providers(self.device_name, self.name), self.name)
        n_out = runner.n_outputs
        if n_out is not None and n_out != len(config.id2label):
            raise ValueError(Errors.E010.format(name=self.name, n_labels=len(config.id2label), n_out=n_out))
        self.onnx_path, self.onnx_rel = onnx_path, onnx_rel
        self._set_loaded(tokenizer, config, runner)

    def _load_torch(
        self,
        source: str,
        config: Any,
        tokenizer: Any,
        kwargs: Dict[str, Any],
        *,
        new_head: bool,
        reset_head: bool,
    ) -> None:
        import torch

        auto_cls = self._auto_class()
        with warnings.catch_warnings(), _quiet_transformers():
            warnings.filterwarnings("ignore", message=".*were not initialized.*")
            warnings.filterwarnings("ignore", message=".*newly initialized.*")
            if new_head:
                kwargs["ignore_mismatched_sizes"] = True
            try:
                model = auto_cls.from_pretrained(source, config=config, **kwargs)
            except RuntimeError as e:
                raise _size_mismatch(self.name, source, e) or e
        if reset_head:
            _reset_head(model)
        device = resolve_device(self.device_name, self.name)
        dtype = getattr(torch, self.dtype)
        model.to(device=device, dtype=dtype)
        model.eval()
        names = ["input_ids", "attention_mask"]
        if "token_type_ids" in getattr(tokenizer, "model_input_names", []):
            names.append("token_type_ids")
        self.model, self.device = model, device
        self._set_loaded(tokenizer, model.config, TorchRunner(model, device, names))

    def _set_loaded(self, tokenizer: Any, config: Any, runner: Any) -> None:
        n_labels = len(config.id2label)
        n_out = config.num_labels
        if n_labels != n_out:
            raise ValueError(Errors.E010.format(name=self.name, n_labels=n_labels, n_out=n_out))
        self.tokenizer, self.config, self.runner = tokenizer, config, runner
        self._token_lengths = None
        self.window  # validate now

    def head_labels(self) -> Optional[List[str]]:
        """The labels of the model's classification head for this task, or None
        when `model` is not such a classifier (e.g. a plain encoder to fine-tune).
        Reads only the config when the model is not loaded."""
        if self.is_loaded:
            return self.id2label
        from transformers import AutoConfig

        source = resolve_model(self.model_name, self.name)
        kwargs: Dict[str, Any] = {"revision": self.revision} if self.revision else {}
        try:
            config = AutoConfig.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as e:
            raise ValueError(
                Errors.E002.format(name=self.name, model=source, revision=self.revision, error=e)
            ) from e
        suffix = "ForTokenClassification" if self.task == "token" else "ForSequenceClassification"
        if not any(a.endswith(suffix) for a in getattr(config, "architectures", None) or []):
            return None
        return [str(config.id2label[i]) for i in range(len(config.id2label))]

    def torch_inputs(self, windows: Sequence[Window]) -> Dict[str, Any]:
        """The padded torch inputs of a batch of windows, on the model's device
        (backend "torch")."""
        return self.runner.to_torch(self.padded(windows))

    def padded(self, windows: Sequence[Window]) -> Dict[str, np.ndarray]:
        """A batch of windows padded to its longest: input_ids, attention_mask and
        token_type_ids, int64 arrays (batch, longest)."""
        lengths = [len(w.ids) for w in windows]
        width = max(lengths)
        pad_id = self.tokenizer.pad_token_id
        ids = np.full((len(windows), width), 0 if pad_id is None else pad_id, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        types = np.zeros((len(windows), width), dtype=np.int64)
        for r, (window, n) in enumerate(zip(windows, lengths)):
            ids[r, :n] = window.ids
            mask[r, :n] = 1
            if window.types is not None:
                types[r, :n] = window.types
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def _auto_class(self) -> Any:
        from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

        if self.task == "token":
            return AutoModelForTokenClassification
        return AutoModelForSequenceClassification

    def _check_architecture(self, config: Any) -> None:
        suffix = "ForTokenClassification" if self.task == "token" else "ForSequenceClassification"
        architectures = getattr(config, "architectures", None) or []
        if architectures and not any(a.endswith(suffix) for a in architectures):
            other = "hf_textcat" if self.task == "token" else "hf_ner"
            hint = (
                f"; a *ForSequenceClassification model belongs in `{other}`"
                if any(a.endswith("ForSequenceClassification") for a in architectures)
                else ""
            )
            if self.task == "sequence" and any(
                a.endswith("ForTokenClassification") for a in architectures
            ):
                hint = f"; a *ForTokenClassification model belongs in `{other}`"
            msg = Errors.E003.format(
                name=self.name,
                model=self.model_name,
                architectures="/".join(architectures),
                factory=self.factory,
                hint=hint,
            )
            if self.task == "sequence":
                msg = msg.replace("token classifier", "sequence classifier").replace(
                    "*ForTokenClassification", "*ForSequenceClassification"
                )
            raise ValueError(msg)

    def save(self, path: Path) -> None:
        """Write model and tokenizer to `path` (loadable by plain transformers).
        Backend "onnx": the config, the tokenizer and the ONNX file (with its
        external data) at the same relative path (`onnx_file`)."""
        path.mkdir(parents=True, exist_ok=True)
        with _quiet_transformers():
            if self.backend == "onnx":
                self.config.save_pretrained(path)
                target = (path / self.onnx_rel).parent
                target.mkdir(parents=True, exist_ok=True)
                for file in onnx_files_to_copy(self.onnx_path):
                    shutil.copyfile(file, target / file.name)
            else:
                self.model.save_pretrained(path)
            self.tokenizer.save_pretrained(path)

    # -- properties of the loaded model --------------------------------------

    @property
    def id2label(self) -> List[str]:
        id2label = self.config.id2label
        return [str(id2label[i]) for i in range(len(id2label))]

    @property
    def n_special(self) -> int:
        return int(self.tokenizer.num_special_tokens_to_add(pair=False))

    @property
    def window(self) -> int:
        """Window length in model tokens, special tokens included."""
        if self.max_length_cfg is not None:
            return int(self.max_length_cfg)
        limits = []
        model_max = getattr(self.tokenizer, "model_max_length", None)
        if model_max and 0 < model_max < 1_000_000:
            limits.append(int(model_max))
        positions = getattr(self.config, "max_position_embeddings", None)
        if positions:
            if getattr(self.config, "model_type", "") in _POSITION_OFFSET_MODELS:
                positions -= 2
            limits.append(int(positions))
        return min(limits) if limits else 512

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

    def resolve_stride(self, stride: Optional[int]) -> int:
        """The configured stride, checked against the window; None: an eighth of
        the window."""
        if stride is None:
            stride = max(0, min(self.window // 8, self.window - self.n_special - 1))
        self.check_stride(stride)
        return stride

    def check_stride(self, stride: int) -> None:
        limit = self.window - self.n_special - 1
        if stride < 0 or stride > limit:
            raise ValueError(
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

    # -- running -------------------------------------------------------------

    def encode(self, texts: Sequence[str], stride: int) -> List[Window]:
        """Tokenize texts into windows of at most `window` tokens overlapping by
        `stride` tokens, as transformers' pipeline does with `stride`."""
        enc = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.window,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            padding=False,
        )
        mapping = enc["overflow_to_sample_mapping"]
        windows = []
        for i, doc in enumerate(mapping):
            offsets = np.asarray(enc["offset_mapping"][i], dtype=np.int64).reshape(-1, 2)
            windows.append(
                Window(
                    doc=int(doc),
                    ids=np.asarray(enc["input_ids"][i], dtype=np.int64),
                    offsets=offsets,
                    special=np.asarray(enc["special_tokens_mask"][i], dtype=bool),
                )
            )
        return windows

    def encode_pairs(
        self, texts: Sequence[str], pairs: Sequence[str]
    ) -> Tuple[List[Window], List[bool]]:
        """Tokenize each text with its pair as one window (`tokenizer(text,
        text_pair)`), truncating only the first text to `window` tokens. Returns
        the windows (offsets of pair tokens are in the pair's text) and whether
        each text was truncated."""
        windows: List[Window] = []
        truncated: List[bool] = []
        for d, (text, pair) in enumerate(zip(texts, pairs)):
            kwargs: Dict[str, Any] = dict(
                max_length=self.window,
                return_offsets_mapping=True,
                return_special_tokens_mask=True,
                return_attention_mask=False,
                return_token_type_ids=True,
                padding=False,
            )
            full = self.tokenizer(text, pair, truncation=False, return_attention_mask=False, verbose=False)
            too_long = len(full["input_ids"]) > self.window
            if too_long:
                n_pair = len(self.tokenizer(pair, add_special_tokens=False)["input_ids"])
                n_fixed = self.tokenizer.num_special_tokens_to_add(pair=True) + n_pair
                strategy = "only_first" if n_fixed < self.window else "longest_first"
                enc = self.tokenizer(text, pair, truncation=strategy, **kwargs)
            else:
                enc = self.tokenizer(text, pair, truncation=False, **kwargs)
            ids = np.asarray(enc["input_ids"], dtype=np.int64)
            types = enc.get("token_type_ids")
            windows.append(
                Window(
                    doc=d,
                    ids=ids,
                    offsets=np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2),
                    special=np.asarray(enc["special_tokens_mask"], dtype=bool),
                    types=None if types is None else np.asarray(types, dtype=np.int64),
                )
            )
            truncated.append(too_long)
        return windows, truncated

    def logits(self, windows: Sequence[Window], batch_size: int) -> List[np.ndarray]:
        """Raw float32 logits for each window (token task: (n, labels); sequence
        task: (labels,)), computed in length-sorted batches of at most
        `batch_size` windows, closed early where padding would dominate (see
        `batching.plan_batches`)."""
        out: List[Optional[np.ndarray]] = [None] * len(windows)
        if not windows:
            return []
        lengths = np.array([len(w.ids) for w in windows])
        for batch in plan_batches(lengths, batch_size):
            rows = batch.tolist()
            logits = self.runner(self.padded([windows[i] for i in rows]))
            for r, i in enumerate(rows):
                out[i] = logits[r, : lengths[i]] if self.task == "token" else logits[r]
        return out  # type: ignore[return-value]


def _size_mismatch(name: str, source: str, error: Exception) -> Optional[ValueError]:
    """transformers refuses a checkpoint whose classifier has another number of
    outputs than `config.id2label` has labels, before the engine's own check can
    run: say so in the engine's words (E010)."""
    text = str(error).lower()
    if "mismatched_sizes" not in text and "size mismatch" not in text:
        return None
    n_labels: Any = "a different number of"
    n_out: Any = "another number of"
    try:
        from transformers import AutoConfig

        n_labels = len(AutoConfig.from_pretrained(source).id2label)
        weights = Path(source) / "model.safetensors"
        if weights.is_file():
            from safetensors import safe_open

            with safe_open(str(weights), framework="numpy") as f:
                heads = [k for k in f.keys() if k.endswith("classifier.weight")]
                if heads:
                    n_out = f.get_slice(heads[0]).get_shape()[0]
    except Exception:  # the message is a hint; never hide the original error
        pass
    return ValueError(Errors.E010.format(name=name, n_labels=n_labels, n_out=n_out))


def _reset_head(model: Any) -> None:
    """Re-initialize everything of a transformers model outside its encoder (the
    classification head), as `from_pretrained` does for a head it cannot load."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    for child in model.children():
        if child is base:
            continue
        for module in child.modules():
            model._init_weights(module)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis, as transformers computes it."""
    maxes = np.max(logits, axis=-1, keepdims=True)
    shifted = np.exp(logits - maxes)
    return shifted / shifted.sum(axis=-1, keepdims=True)
