"""Backend `spacy-hf-ner.onnx.v1`: an ONNX Runtime session over an
exported graph, inference only.

The graph takes the padded batch's `input_ids`, `attention_mask` and (where
it declares it) `token_type_ids` and returns float32 logits, like the torch
model; everything else (windows, batching, aggregation) is the runtime's, so
both backends give the same entities for the same logits. `spacy-hf-ner
export-onnx` writes such graphs (`backends/export_onnx.py`).
"""
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import Errors, SpacyHFNerError, SpacyHFNerImportError
from ..ty import LoadRequest
from . import ONNX

# the inputs a padded batch has; an ONNX graph may declare any subset of them
BATCH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# where `file` = null looks, in this order (Optimum's and transformers.js'
# layout first, then a bare export)
ONNX_CANDIDATES = ("onnx/model.onnx", "model.onnx")
_ORT_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
# sessions a forked process inherited (kept alive, never used)
_INHERITED_SESSIONS: List[Any] = []


def import_onnxruntime(name: str) -> Any:
    """onnxruntime, or an error that says how to install it."""
    try:
        import onnxruntime
    except ImportError as e:
        raise SpacyHFNerImportError(Errors.E013.format(name=name)) from e
    return onnxruntime


@dataclass(frozen=True)
class OnnxLoader:
    """The block `@hf_backends = "spacy-hf-ner.onnx.v1"`: loads an `OnnxBackend`
    over `file`, a path inside the model (None: "onnx/model.onnx", then
    "model.onnx"); pick a lower-precision export with it, e.g.
    "onnx/model_int8.onnx" (an ONNX graph has its own precision)."""

    file: Optional[str]
    name: ClassVar[str] = ONNX
    trainable: ClassVar[bool] = False

    def load(self, request: LoadRequest) -> "OnnxBackend":
        return OnnxBackend.load(request, self.file)


class OnnxBackend:
    """An `onnxruntime.InferenceSession` over one .onnx file (`path`, found at
    `rel` inside the model).

    The session is created lazily and again in a forked child (ONNX Runtime's
    thread pools do not survive `fork`, e.g. under `nlp.pipe(n_process=...)`).
    """

    def __init__(self, path: Path, rel: str, providers: List[Any], name: str) -> None:
        self.path = path
        self.rel = rel
        self.providers = providers
        self.name = name
        self._session: Any = None
        self._pid: Optional[int] = None
        session = self.session  # fail now on a bad file or a missing input
        unknown = [i.name for i in session.get_inputs() if i.name not in BATCH_INPUTS]
        if unknown:
            raise SpacyHFNerError(
                Errors.E015.format(name=name, path=path, unknown=", ".join(unknown), known=", ".join(BATCH_INPUTS))
            )
        self.input_types = {i.name: _ORT_INT_TYPES.get(i.type, np.int64) for i in session.get_inputs()}

    @classmethod
    def load(cls, request: LoadRequest, file: Optional[str]) -> "OnnxBackend":
        """The session over `file` inside the model of `request` (None: the
        first of `ONNX_CANDIDATES` there is)."""
        if request.labels is not None:
            raise SpacyHFNerError(Errors.E016.format(name=request.name, backend="onnx", what="a new classification head"))
        path, rel = find_onnx_file(request, file)
        backend = cls(path, rel, onnx_providers(request.device, request.name), request.name)
        n_out = backend.n_outputs
        if n_out is not None and n_out != len(request.config.id2label):
            raise SpacyHFNerError(Errors.E010.format(name=request.name, n_labels=len(request.config.id2label), n_out=n_out))
        return backend

    @property
    def session(self) -> Any:
        if self._session is not None and self._pid != os.getpid():
            # a forked child: the parent's session must not be freed here, its
            # destructor would wait for thread-pool threads the child lacks
            _INHERITED_SESSIONS.append(self._session)
            self._session = None
        if self._session is None:
            ort = import_onnxruntime(self.name)
            options = ort.SessionOptions()
            options.log_severity_level = 3  # errors only
            self._session = ort.InferenceSession(str(self.path), options, providers=self.providers)
            self._pid = os.getpid()
        return self._session

    @property
    def n_outputs(self) -> Optional[int]:
        """The size of the logits' last axis, when the graph fixes it."""
        last = self.session.get_outputs()[0].shape[-1]
        return last if isinstance(last, int) else None

    def forward(self, batch: Dict[str, np.ndarray]) -> np.ndarray:
        feeds = {k: batch[k].astype(t, copy=False) for k, t in self.input_types.items()}
        return np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)

    def save(self, path: Path) -> None:
        """The ONNX file (with its external data) at the same path inside the
        model (the block's `file`)."""
        target = (path / self.rel).parent
        target.mkdir(parents=True, exist_ok=True)
        for file in onnx_files_to_copy(self.path):
            shutil.copyfile(file, target / file.name)


def onnx_providers(device: str, name: str) -> List[Any]:
    """ONNX Runtime execution providers for the `device` config value: the CPU,
    or CUDA first ("cuda", "cuda:N", and "auto" when onnxruntime-gpu sees a GPU)."""
    available = import_onnxruntime(name).get_available_providers()
    if device == "mps":
        raise SpacyHFNerError(
            Errors.E023.format(
                name=name, device=device, problem="has no ONNX Runtime execution provider here",
                fix="use device = 'cpu' (or 'auto'), or the torch backend (spacy-hf-ner.torch.v1) for MPS",
            )
        )
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise SpacyHFNerError(
                Errors.E023.format(
                    name=name, device=device,
                    problem=f"needs onnxruntime's CUDAExecutionProvider, which this onnxruntime lacks "
                    f"(providers: {', '.join(available)})",
                    fix="install onnxruntime-gpu instead of onnxruntime, or use device = 'cpu'",
                )
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    if device == "auto" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def find_onnx_file(request: LoadRequest, onnx_file: Optional[str]) -> Tuple[Path, str]:
    """The .onnx file of a model directory or hub repo, and its path relative to
    the model (kept when the pipeline is saved): `onnx_file`, or the first of
    `ONNX_CANDIDATES` there is."""
    if onnx_file is not None and (os.path.isabs(onnx_file) or ".." in Path(onnx_file).parts):
        raise SpacyHFNerError(Errors.E022.format(name=request.name, value=onnx_file))
    candidates = [onnx_file] if onnx_file is not None else list(ONNX_CANDIDATES)
    source = request.source
    if os.path.isdir(source):
        root = Path(source)
        for rel in candidates:
            if (root / rel).is_file():
                return root / rel, rel
        found = sorted(str(p.relative_to(root)) for p in root.rglob("*.onnx"))
    else:
        hit = _hub_onnx_file(source, candidates, revision=request.revision, local_only=request.local_only)
        if hit is not None:
            return hit
        found = _hub_onnx_listing(source, request.revision, request.local_only)
    fix = (
        f"set `file` in `[components.{request.name}.backend]` to one of them, e.g. '{found[0]}'"
        if found
        else "export the model with `spacy-hf-ner export-onnx MODEL OUTPUT_DIR` (python -m "
        "spacy_hf_ner.backends.export_onnx) and set `model` to OUTPUT_DIR, or use the torch backend"
    )
    raise SpacyHFNerError(
        Errors.E014.format(
            name=request.name, model=source, tried=", ".join(candidates), found=", ".join(found) or "none", fix=fix
        )
    )


def _hub_onnx_file(
    repo: str, candidates: Sequence[str], *, revision: Optional[str], local_only: bool
) -> Optional[Tuple[Path, str]]:
    """Download the first candidate a hub repo has, with its external data file
    (`<file>_data`) when there is one."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    for rel in candidates:
        try:
            path = hf_hub_download(repo, rel, revision=revision, local_files_only=local_only)
        except (EntryNotFoundError, LocalEntryNotFoundError):
            continue
        try:
            hf_hub_download(repo, rel + "_data", revision=revision, local_files_only=local_only)
        except (EntryNotFoundError, LocalEntryNotFoundError):
            pass
        return Path(path), rel
    return None


def _hub_onnx_listing(repo: str, revision: Optional[str], local_only: bool) -> List[str]:
    if local_only:
        return []
    try:
        from huggingface_hub import list_repo_files

        return sorted(f for f in list_repo_files(repo, revision=revision) if f.endswith(".onnx"))
    except Exception:  # only a hint in an error message
        return []


def onnx_files_to_copy(path: Path) -> List[Path]:
    """An .onnx file and its external data files (`model.onnx_data`,
    `model.onnx.data`: names that extend the file's own)."""
    return sorted(p for p in path.parent.glob(path.name + "*") if p.is_file())
