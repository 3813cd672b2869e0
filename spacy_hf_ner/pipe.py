"""What the components share: saving and loading their transformers model with
the spaCy pipeline, batched `__call__`/`pipe`, and token offsets."""
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Union

import numpy as np
import srsly
from spacy.attrs import IDX, IS_SPACE, LENGTH
from spacy.pipeline import Pipe
from spacy.tokens import Doc
from spacy.util import minibatch

MODEL_DIR = "model"


class EngineSerializer:
    """to_disk/from_disk/to_bytes/from_bytes for a component with an `engine`.

    `nlp.to_disk(path)` writes the model and tokenizer into `path/<name>/model`
    (plain `save_pretrained` output, so transformers loads it too), and
    `spacy.load(path)` reads them from there, never from the hub.
    """

    engine: Any
    cfg: Dict[str, Any]

    def _ensure_loaded(self) -> None:
        """Load the model from the config's `model` on first use."""
        if not self.engine.is_loaded:
            self.engine.load()
            self._after_load()

    def _after_load(self) -> None:  # pragma: no cover - provided by components
        raise NotImplementedError

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._ensure_loaded()
        srsly.write_json(
            path / "cfg",
            {"source": self.engine.model_name, "revision": self.engine.revision},
        )
        self.engine.save(path / MODEL_DIR)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> Any:
        self.engine.load(Path(path) / MODEL_DIR)
        self._after_load()
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp, exclude=exclude)
            root = Path(tmp)
            files = {
                str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()
            }
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> Any:
        files = srsly.msgpack_loads(bytes_data)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for name, data in files.items():
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.from_disk(root, exclude=exclude)
        return self


class HFPipe(Pipe, EngineSerializer):
    """What every component shares: running `predict` + `set_annotations` on one
    doc or on batches, with runtime failures routed through spaCy's error handler."""

    def __call__(self, doc: Doc) -> Doc:
        error_handler = self.get_error_handler()
        try:
            self.set_annotations([doc], self.predict([doc]))
        except Exception as e:
            error_handler(self.name, self, [doc], e)
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate docs in batches. `batch_size` docs (nlp.pipe's) are tokenized
        together and their windows sorted by length, then run in forward passes of
        the component's own `batch_size` windows."""
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
            except Exception as e:
                error_handler(self.name, self, docs, e)
            yield from docs


def token_arrays(doc: Doc):
    """Token start/end offsets (end without trailing whitespace) and is_space."""
    arr = doc.to_array([IDX, LENGTH, IS_SPACE]).astype(np.int64)
    starts = arr[:, 0]
    return starts, starts + arr[:, 1], arr[:, 2].astype(bool)
