"""What turns a padded batch into logits: a torch model or an ONNX Runtime session.

The engine pads a batch of windows into numpy arrays (`input_ids`,
`attention_mask`, `token_type_ids`) and hands them to its runner; the runner
feeds the ones its model takes and returns float32 logits. Everything else
(windows, length-sorted batching, aggregation) is shared, so both backends give
the same entities for the same logits.
"""
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import Errors

BACKENDS = ("torch", "onnx")
# the inputs a padded batch has; an ONNX graph may declare any subset of them
BATCH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# where `onnx_file` = null looks, in this order (Optimum's and transformers.js'
# layout first, then a bare export)
ONNX_CANDIDATES = ("onnx/model.onnx", "model.onnx")
_ORT_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
# sessions a forked process inherited (kept alive, never used)
_INHERITED_SESSIONS: List[Any] = []


class TorchRunner:
    """A transformers torch model in eval mode on `device`."""

    def __init__(self, model: Any, device: Any, input_names: Sequence[str]) -> None:
        self.model = model
        self.device = device
        self.input_names = list(input_names)

    def to_torch(self, arrays: Dict[str, np.ndarray]) -> Dict[str, Any]:
        """The model's inputs as torch tensors on its device."""
        import torch

        return {k: torch.from_numpy(arrays[k]).to(self.device) for k in self.input_names}

    def __call__(self, arrays: Dict[str, np.ndarray]) -> np.ndarray:
        import torch

        self.model.eval()
        with torch.inference_mode():
            return self.model(**self.to_torch(arrays)).logits.float().cpu().numpy()


class OnnxRunner:
    """An `onnxruntime.InferenceSession` over one .onnx file.

    The session is created lazily and again in a forked child (ONNX Runtime's
    thread pools do not survive `fork`, e.g. under `nlp.pipe(n_process=...)`).
    """

    def __init__(self, path: Path, providers: List[Any], name: str) -> None:
        self.path = path
        self.providers = providers
        self.name = name
        self._session: Any = None
        self._pid: Optional[int] = None
        session = self.session  # fail now on a bad file or a missing input
        unknown = [i.name for i in session.get_inputs() if i.name not in BATCH_INPUTS]
        if unknown:
            raise ValueError(
                Errors.E015.format(
                    name=name, path=path, unknown=", ".join(unknown), known=", ".join(BATCH_INPUTS)
                )
            )
        self.input_types = {
            i.name: _ORT_INT_TYPES.get(i.type, np.int64) for i in session.get_inputs()
        }

    @property
    def session(self) -> Any:
        if self._session is not None and self._pid != os.getpid():
            # a forked child: the parent's session must not be freed here, its
            # destructor would wait for thread-pool threads the child lacks
            _INHERITED_SESSIONS.append(self._session)
            self._session = None
        if self._session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3  # errors only
            self._session = onnxruntime.InferenceSession(
                str(self.path), options, providers=self.providers
            )
            self._pid = os.getpid()
        return self._session

    @property
    def input_names(self) -> List[str]:
        return list(self.input_types)

    @property
    def n_outputs(self) -> Optional[int]:
        """The size of the logits' last axis, when the graph fixes it."""
        last = self.session.get_outputs()[0].shape[-1]
        return last if isinstance(last, int) else None

    def __call__(self, arrays: Dict[str, np.ndarray]) -> np.ndarray:
        feeds = {k: arrays[k].astype(t, copy=False) for k, t in self.input_types.items()}
        return np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)


def import_onnxruntime(name: str) -> Any:
    """onnxruntime, or an error that says how to install it."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(Errors.E013.format(name=name)) from e
    return onnxruntime


def onnx_providers(device: str, name: str) -> List[Any]:
    """ONNX Runtime execution providers for the `device` config value: the CPU,
    or CUDA first ("cuda", "cuda:N", and "auto" when onnxruntime-gpu sees a GPU)."""
    ort = import_onnxruntime(name)
    available = ort.get_available_providers()
    if device == "mps":
        raise ValueError(
            Errors.E009.format(
                name=name, key="device", value=device,
                problem="has no ONNX Runtime execution provider here",
                fix="use device = 'cpu' (or 'auto'), or backend = 'torch' for MPS",
            )
        )
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise ValueError(
                Errors.E009.format(
                    name=name, key="device", value=device,
                    problem=f"needs onnxruntime's CUDAExecutionProvider, which this "
                    f"onnxruntime lacks (providers: {', '.join(available)})",
                    fix="install onnxruntime-gpu instead of onnxruntime, or use device = 'cpu'",
                )
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    if device == "auto" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def find_onnx_file(
    source: str, onnx_file: Optional[str], *, revision: Optional[str], local_only: bool, name: str
) -> Tuple[Path, str]:
    """The .onnx file of a model directory or hub repo, and its path relative to
    the model (kept when the pipeline is saved).

    onnx_file: a path inside the model, e.g. "onnx/model_q4.onnx"; None tries
        `ONNX_CANDIDATES` in order.
    """
    if onnx_file is not None and (os.path.isabs(onnx_file) or ".." in Path(onnx_file).parts):
        raise ValueError(
            Errors.E009.format(
                name=name, key="onnx_file", value=onnx_file,
                problem="must be a path inside the model directory",
                fix="put the .onnx file in the model folder (next to config.json) and "
                "give its relative path, e.g. 'onnx/model.onnx'",
            )
        )
    candidates = [onnx_file] if onnx_file is not None else list(ONNX_CANDIDATES)
    if os.path.isdir(source):
        root = Path(source)
        for rel in candidates:
            if (root / rel).is_file():
                return root / rel, rel
        found = sorted(str(p.relative_to(root)) for p in root.rglob("*.onnx"))
    else:
        found_path = _hub_onnx_file(source, candidates, revision=revision, local_only=local_only)
        if found_path is not None:
            return found_path
        found = _hub_onnx_listing(source, revision, local_only)
    fix = (
        f"set `onnx_file` to one of them, e.g. '{found[0]}'"
        if found
        else "export the model with `python -m spacy_hf_ner.export_onnx MODEL OUTPUT_DIR` "
        "and set `model` to OUTPUT_DIR, or use backend = 'torch'"
    )
    raise ValueError(
        Errors.E014.format(
            name=name,
            model=source,
            tried=", ".join(candidates),
            found=", ".join(found) if found else "none",
            fix=fix,
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
