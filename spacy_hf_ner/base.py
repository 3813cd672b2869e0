"""What every component shares: its typed settings, the lazily loaded runtime,
serialization with the pipeline, and the predict plumbing (texts -> windows ->
batched logits -> per-doc arrays).

Components (`ner.py`, `tagger.py`, `textcat.py`) keep what is theirs: their
factory and settings, decoding, `set_annotations` and scorer. The shape follows
spaCy's `TrainablePipe`: `predict` / `set_annotations`, `initialize`,
`to_disk` / `from_disk` through `spacy.util.to_disk` with serializer dicts and
`exclude` honoured.
"""
import hashlib
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Generic, Iterable, Iterator, List, Optional, Sequence, Tuple, Type, TypeVar, Union, cast, get_args, get_origin

import numpy as np
import srsly
from spacy import util
from spacy.attrs import IDX, IS_SPACE, LENGTH
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab

from .alignment import merge_windows
from .backends import TORCH
from .backends.legacy import LEGACY_KEYS, upgrade_backend
from .classify import softmax
from .errors import Errors, HFNerWarning, SpacyHFNerError, Warnings
from .kinds import ComponentKind, register_kind
from .listeners import ListenedMixin, run_shared, share
from .runtime import ModelRuntime
from .settings import ModelSettings, factory_signature, validate
from .training import TrainableMixin
from .ty import BackendLoader, Task

MODEL_DIR = "model"
# the keys every component shares, with their defaults (each factory's
# `default_config` includes these)
MODEL_DEFAULTS: Dict[str, Any] = {
    "revision": None,
    "stride": None,
    "max_length": None,
    "batch_size": 64,
    "device": "auto",
    "backend": {"@hf_backends": TORCH},
}


# a component's settings model (`ModelSettings` and its own keys)
S = TypeVar("S", bound=ModelSettings)


class HFComponent(ListenedMixin, TrainableMixin, Pipe, Generic[S]):
    """A transformers classifier as a spaCy component (the base of `hf_ner`,
    `hf_tagger` and `hf_textcat`).

    The model is loaded on `nlp.initialize()` or on the first doc, so that
    `spacy.load` of a saved pipeline reads the weights saved with it and never
    the hub.

    Subclasses name their settings model once, as the type argument
    (`class HFNer(HFComponent[NerSettings])`, which gives `Settings` and the
    type of `settings`), set `kind` (their `ComponentKind`, which gives
    `factory` and `task`), and implement `predict`, `set_annotations` and
    `_after_load` (what to derive from the loaded model).
    """

    kind: ClassVar[ComponentKind]
    factory: ClassVar[str]
    task: ClassVar[Task]
    Settings: ClassVar[Type[ModelSettings]]
    settings: S
    # the extension attribute the component writes (or reads), registered on
    # first construction: (Span, "hf_score")
    extension: ClassVar[Tuple[Any, str]]
    # what the training data must annotate, for error messages ("entities")
    gold_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            cls.factory, cls.task = cls.kind.factory, cls.kind.task
        for base in cls.__dict__.get("__orig_bases__", ()):
            if get_origin(base) is HFComponent:
                cls.Settings = get_args(base)[0]

    def __init__(self, vocab: Vocab, name: Optional[str] = None, **settings: Any) -> None:
        """Initialize the component.

        vocab (Vocab): the pipeline's vocab.
        name (str): the component's name; default: the factory's.
        **settings: the component's config keys (see its class docstring);
            those not given take the factory's `default_config`.
        """
        self.vocab = vocab
        self.name = name or self.factory
        if set(self.Settings.model_fields) - set(settings):  # direct construction
            settings = {**_defaults(self.factory), **settings}
        self.settings = self._validate(upgrade_backend(self.name, settings))
        s = self.settings
        self.runtime = ModelRuntime(
            s.model,
            revision=s.revision,
            task=self.task,
            device=s.device,
            max_length=s.max_length,
            backend=s.backend,
            name=self.name,
        )
        self.scorer = s.scorer
        self.stats: Counter = Counter()
        self._stride = 0
        self._thinc: Optional[Any] = None
        self._shared: Optional[Any] = None  # the last pass's hidden states, for listeners
        # the pipeline's `[training]` section, kept by `initialize` for training
        # (checked against the optimizer on the first update)
        self._training_config: Optional[Dict[str, Any]] = None
        owner, attr = self.extension
        if not owner.has_extension(attr):
            owner.set_extension(attr, default=None)

    def _validate(self, values: Dict[str, Any]) -> S:
        """`values` checked as this component's settings (`Settings`)."""
        return cast(S, validate(self.Settings, self.name, values))

    @property
    def cfg(self) -> Dict[str, Any]:
        """The component's settings as plain values (callables and the backend
        left out)."""
        return self.settings.model_dump(exclude={k for k, v in self.settings if callable(v) or k == "backend"})

    @cfg.setter
    def cfg(self, values: Dict[str, Any]) -> None:
        """Change settings in place, as `spacy find-threshold` does with
        `threshold` (it sets `pipe.cfg` after each reload).

        values (Dict[str, Any]): config keys and values (those left out keep
            theirs), checked as the config is. The keys of the loaded model
            (`ModelSettings`'s, but `batch_size` and `scorer`) cannot change
            here (E030): load the pipeline with the new config instead.
        """
        new = self._validate({**dict(self.settings), **values})
        fixed = [k for k in ModelSettings.model_fields if k not in ("batch_size", "scorer")]
        changed = [k for k in fixed if getattr(new, k) != getattr(self.settings, k)]
        if changed:
            raise SpacyHFNerError(Errors.E030.format(name=self.name, keys=", ".join(f"`{k}`" for k in changed)))
        self.settings = new
        self.scorer = new.scorer
        if self.runtime.is_loaded:
            self._after_load()  # state derived from the settings (labels, scheme, activation)

    # -- initialization ------------------------------------------------------------

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        """Load the model, and prepare it for training when the examples carry
        the component's gold annotation (as under `spacy train`).

        A model whose classification head already has every label of the data
        (after `label_map`) keeps its head and is fine-tuned as it is. Any other
        model, such as a plain encoder, gets a new head over the data's labels,
        initialized by transformers.

        get_examples (Callable[[], Iterable[Example]]): training examples.
        nlp (Language): the pipeline.
        labels (Optional[List[str]]): the labels of a new head (overriding the
            data's), e.g. from `[initialize.components.NAME] labels`.
        """
        examples = list(get_examples()) if get_examples is not None else []
        found = self._gold_labels(examples)
        if labels is None and found is None:
            self._ensure_loaded()  # a pretrained model for inference
            return
        chosen = labels if labels is not None else found
        if not chosen:
            raise SpacyHFNerError(Errors.E011.format(name=self.name, what=self.gold_name))
        self._training_config = dict(nlp.config.get("training") or {}) if nlp is not None else None
        self._prepare_training(examples, list(chosen), given=labels is not None)

    def _gold_labels(self, examples: Sequence[Example]) -> Optional[List[str]]:  # pragma: no cover
        """The labels the examples' gold annotation uses (None: no gold)."""
        raise NotImplementedError

    def _prepare_training(self, examples: Sequence[Example], labels: List[str], given: bool) -> None:  # pragma: no cover
        """Load the model with a head for `labels` (`given`: by the user)."""
        raise NotImplementedError

    # -- loading ---------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        """Load the model from the config's `model` on first use."""
        if not self.runtime.is_loaded:
            self.runtime.load()
            self._loaded()

    def _loaded(self) -> None:
        """What follows every load: the stride checked against the window, and
        the component's own derived state."""
        runtime = self.runtime
        self._stride = runtime.resolve_stride(self.settings.stride)
        if self.settings.stride is not None and self._stride > (runtime.window - runtime.n_special) // 2:
            default = runtime.default_stride()
            warnings.warn(
                Warnings.W005.format(
                    name=self.name,
                    stride=self._stride,
                    window=runtime.window,
                    factor=runtime.reads_per_token(self._stride),
                    default=default,
                    default_factor=runtime.reads_per_token(default),
                ),
                HFNerWarning,
            )
        self._after_load()

    def _after_load(self) -> None:  # pragma: no cover - components implement it
        raise NotImplementedError

    def predict(self, docs: Sequence[Doc]) -> Any:  # pragma: no cover - components implement it
        """What the model says about `docs` (the component's own form)."""
        raise NotImplementedError

    def set_annotations(self, docs: Sequence[Doc], predictions: Any) -> None:  # pragma: no cover
        """Write `predict`'s output to `docs`."""
        raise NotImplementedError

    # -- running ---------------------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        """Annotate one doc; runtime failures go to spaCy's error handler."""
        error_handler = self.get_error_handler()
        try:
            self.set_annotations([doc], self.predict([doc]))
            share(self, [doc])
        except Exception as e:
            error_handler(self.name, self, [doc], e)
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate docs in batches. `batch_size` docs (nlp.pipe's) are tokenized
        together and their windows sorted by length, then run in forward passes of
        the component's own `batch_size` windows."""
        error_handler = self.get_error_handler()
        for docs in util.minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
                share(self, docs)
            except Exception as e:
                error_handler(self.name, self, docs, e)
            yield from docs

    def _logits(self, texts: Sequence[str], stride: Optional[int] = None) -> List[List[Tuple[Any, np.ndarray]]]:
        """Each text's windows with their logits (`ModelRuntime.run`), at the
        component's stride unless another is given."""
        self._ensure_loaded()
        stride = self._stride if stride is None else stride
        if self.listening_components:  # one pass for the listeners too
            return run_shared(self, texts, stride)
        return self.runtime.run(texts, stride, self.settings.batch_size)

    def _token_probs(self, texts: Sequence[str]) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per text, its model tokens in text order (deduplicated over windows,
        offsets stripped of whitespace) with their softmax scores:
        (starts, ends, probs)."""
        return [
            merge_windows(text, [(w.offsets, w.special, softmax(logits)) for w, logits in found])
            for text, found in zip(texts, self._logits(texts))
        ]

    # -- serialization ------------------------------------------------------------

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Write the model folder (`model/`: config, tokenizer and weights, plain
        `save_pretrained` output) and `cfg` (the source model and a sha256 of
        every model file, checked on load)."""
        self._ensure_loaded()
        path = Path(path)
        serializers: Dict[str, Callable[[Path], None]] = {
            MODEL_DIR: lambda p: self.runtime.save(p),
            "cfg": lambda p: srsly.write_json(p, self._saved_cfg(path / MODEL_DIR)),
        }
        util.to_disk(path, serializers, exclude)

    def _saved_cfg(self, model_dir: Path) -> Dict[str, Any]:
        files = {}
        if model_dir.is_dir():
            files = {str(f.relative_to(model_dir)): _sha256(f) for f in sorted(model_dir.rglob("*")) if f.is_file()}
        return {"source": self.runtime.model_name, "revision": self.runtime.revision, "files": files}

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "HFComponent":
        """Load what `to_disk` wrote; the model files are checked against the
        checksums in `cfg` (unless `cfg` is excluded)."""
        saved: Dict[str, Any] = {}

        def load_cfg(p: Path) -> None:
            if p.is_file():
                saved.update(srsly.read_json(p))

        def load_model(p: Path) -> None:
            _verify(self.name, p, saved.get("files") or {})
            self.runtime.load(p)
            self._loaded()

        util.from_disk(Path(path), {"cfg": load_cfg, MODEL_DIR: load_model}, exclude)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp, exclude=exclude)
            root = Path(tmp)
            files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "HFComponent":
        files = srsly.msgpack_loads(bytes_data)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for name, data in files.items():
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.from_disk(root, exclude=exclude)
        return self


def register_factory(cls: Type[HFComponent], *, default_config: Dict[str, Any]) -> Callable[..., HFComponent]:
    """Register `cls.kind` (see `kinds.register_kind`) and `cls` as its spaCy
    factory, and return the factory: the one line that adds a component kind.

    The factory's signature is built from `cls.Settings` (so spaCy validates
    every key against the one typed definition), `default_config` gets the
    shared model keys (`MODEL_DEFAULTS`) before the component's own, and the
    kind gives what it assigns and its default score weights.
    """
    kind = register_kind(cls.kind)

    def factory(nlp: Language, name: str, **settings: Any) -> HFComponent:
        return cls(nlp.vocab, name, **settings)

    # `backend` also takes the old names, and the old keys (null unless given)
    signature = factory_signature(
        cls.Settings, Language, accept={"backend": Union[BackendLoader, str]}, legacy=LEGACY_KEYS
    )
    factory.__signature__ = signature  # type: ignore[attr-defined]  # typeshed declares no __signature__ on functions; inspect reads it
    factory.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    factory.__name__ = factory.__qualname__ = f"make_{cls.factory}"
    factory.__module__ = cls.__module__
    factory.__doc__ = f"Create an `{cls.factory}` component. See `{cls.__name__}` for the settings."
    config = {"model": default_config["model"], **MODEL_DEFAULTS, **default_config}
    Language.factory(
        kind.factory, assigns=list(kind.assigns), default_config=config, default_score_weights=dict(kind.score_weights)
    )(factory)
    return factory


def _defaults(factory: str) -> Dict[str, Any]:
    """A factory's `default_config`, resolved (scorers and other registered
    functions made), for direct construction."""
    meta = Language.get_factory_meta(factory)
    return dict(util.registry.resolve({"cfg": meta.default_config or {}}, validate=False)["cfg"])


def token_arrays(doc: Doc) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token start/end offsets (end without trailing whitespace) and is_space."""
    arr = doc.to_array([IDX, LENGTH, IS_SPACE]).astype(np.int64)
    starts = arr[:, 0]
    return starts, starts + arr[:, 1], arr[:, 2].astype(bool)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(name: str, model_dir: Path, files: Dict[str, str]) -> None:
    """Each file listed in the saved `cfg` exists with its checksum (E025 for a
    missing one, E026 for a changed one)."""
    for rel, want in files.items():
        file = model_dir / rel
        if not file.is_file():
            raise SpacyHFNerError(Errors.E025.format(name=name, what="model file", path=file, error="missing"))
        got = _sha256(file)
        if got != want:
            raise SpacyHFNerError(Errors.E026.format(name=name, path=file, got=got[:12], want=want[:12]))
