"""The core of bulk annotation, shared by every engine: what a job runs
(`Spec`), the pipeline each worker loads once and keeps (`load_cached`), and
the batch function `annotate_batch`, which maps (ids, texts) to Arrow rows and
knows nothing of engines.

One output row per input document: `id`, `entities` (text, label, start, end,
score), `cats` and `tags` when the pipeline assigns them, and `error`, which
is null unless the document could not be annotated. Offsets are Python
character offsets (`text[start:end]`), as spaCy's `Span.start_char`.
"""
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import pyarrow as pa

# output fields beyond `id`, `entities` and `error`, in schema order
OPTIONAL_FIELDS = ("cats", "tags")
# what a pipeline component must assign for each optional field
ASSIGNS = {"cats": ("doc.cats",), "tags": ("token.tag", "token.pos")}
OFFSETS = "python character offsets: text[start:end] is the entity (str indices, code points)"

ENTITY = pa.struct(
    [
        ("text", pa.string()),
        ("label", pa.string()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("score", pa.float64()),
    ]
)
TAG = pa.struct([("text", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("tag", pa.string())])
NO_TEXT = "no text: the text is null or not a string"


@dataclass(frozen=True)
class Spec:
    """What every worker of a job needs (small and picklable: the pipeline
    travels by name, never through an object store).

    pipeline (str): a spaCy pipeline folder or installed package, or a
        transformers classifier (hub id, folder or `spacy-hf-ner:NAME`).
    fields (Tuple[str, ...]): optional output fields ("cats", "tags").
    code (Optional[str]): a Python file to import first (custom components),
        as `spacy apply --code`.
    """

    pipeline: str
    fields: Tuple[str, ...] = ()
    code: Optional[str] = None


def schema(fields: Sequence[str] = ()) -> pa.Schema:
    """The output schema for the optional `fields`."""
    columns = [pa.field("id", pa.string(), nullable=False), pa.field("entities", pa.list_(ENTITY))]
    if "cats" in fields:
        columns.append(pa.field("cats", pa.map_(pa.string(), pa.float64())))
    if "tags" in fields:
        columns.append(pa.field("tags", pa.list_(TAG)))
    columns.append(pa.field("error", pa.string()))
    return pa.schema(columns)


# -- describing and loading a pipeline ---------------------------------------------


def import_code(code: Optional[str]) -> None:
    """Import a Python file that registers custom components (spaCy's `--code`)."""
    if code:
        from spacy.cli._util import import_code as spacy_import_code

        spacy_import_code(code)


def pipeline_config(pipeline: str) -> Any:
    """The config of a pipeline without loading its weights: config.cfg of a
    folder or package, else the blank pipeline a bare model is put in (whose
    component loads its model only on first use)."""
    from spacy import util

    from ..sources import load_pipeline

    path = Path(pipeline).expanduser()
    if not (path / "config.cfg").is_file() and util.is_package(pipeline):
        path = util.get_package_path(pipeline)
    if (path / "config.cfg").is_file():
        return util.load_config(path / "config.cfg", interpolate=False)
    return load_pipeline(pipeline).config


def describe(pipeline: str, code: Optional[str] = None) -> Dict[str, Any]:
    """What a job's output records about its pipeline, read without loading
    weights: the optional fields it fills and a hash of its config.

    RETURNS (Dict[str, Any]): {"fields": [...], "config_hash": "sha256:..."}.
    """
    from spacy.language import Language

    import_code(code)
    config = pipeline_config(pipeline)
    assigned: Set[str] = set()
    for component in (config.get("components") or {}).values():
        factory = component.get("factory")
        if factory and Language.has_factory(factory):
            assigned.update(Language.get_factory_meta(factory).assigns)
    fields = [f for f in OPTIONAL_FIELDS if assigned.intersection(ASSIGNS[f])]
    digest = hashlib.sha256(config.to_str().encode("utf8")).hexdigest()
    return {"fields": fields, "config_hash": f"sha256:{digest[:16]}"}


_CACHE: Dict[Tuple[str, Optional[str]], Any] = {}


def load_cached(spec: Spec) -> Any:
    """The pipeline of `spec`, loaded once per process and kept: an engine's
    workers call this in their set-up, and every batch reuses it. The model is
    loaded at once (a short warm-up doc), so that load errors show before the
    first batch and timings exclude them."""
    key = (spec.pipeline, spec.code)
    if key not in _CACHE:
        from ..sources import load_pipeline

        import_code(spec.code)
        nlp = load_pipeline(spec.pipeline)
        nlp("Warm up.")
        _CACHE[key] = nlp
    return _CACHE[key]


def worker_name() -> str:
    """This worker's name in reports: host:pid."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


# -- the batch function -------------------------------------------------------------


def annotate_batch(nlp: Any, ids: Sequence[str], texts: Sequence[Any], fields: Sequence[str] = ()) -> pa.Table:
    """Annotate one batch: one row per (id, text), in order.

    The batch runs through `nlp.pipe` at once. If that fails, each document
    runs alone, so that one bad document cannot sink the batch: it gets an
    `error` and empty annotations, the others their results. A text that is
    not a string (null) is such a failed document too.

    nlp (Language): the pipeline.
    ids (Sequence[str]): the documents' ids.
    texts (Sequence[Any]): their texts.
    fields (Sequence[str]): optional fields to fill ("cats", "tags").
    RETURNS (pa.Table): rows in `schema(fields)`.
    """
    if len(ids) != len(texts):
        raise ValueError(f"annotate_batch: {len(ids)} ids for {len(texts)} texts")
    rows: List[Optional[Dict[str, Any]]] = [None] * len(texts)
    good = [i for i, text in enumerate(texts) if isinstance(text, str)]
    for i in set(range(len(texts))) - set(good):
        rows[i] = _failed(ids[i], fields, NO_TEXT)
    try:
        docs = list(nlp.pipe([texts[i] for i in good], batch_size=max(1, len(good))))
        for i, doc in zip(good, docs):
            rows[i] = doc_row(ids[i], doc, fields)
    except Exception:
        for i in good:
            try:
                rows[i] = doc_row(ids[i], nlp(texts[i]), fields)
            except Exception as e:  # this document's own failure, kept in its row
                rows[i] = _failed(ids[i], fields, f"{type(e).__name__}: {e}")
    return pa.Table.from_pylist(rows, schema=schema(fields))


def doc_row(doc_id: str, doc: Any, fields: Sequence[str] = ()) -> Dict[str, Any]:
    """One document's output row."""
    from ..spans import entity_records

    row: Dict[str, Any] = {"id": doc_id, "entities": entity_records(doc), "error": None}
    if "cats" in fields:
        row["cats"] = [(label, float(score)) for label, score in doc.cats.items()]
    if "tags" in fields:
        row["tags"] = [
            {"text": t.text, "start": t.idx, "end": t.idx + len(t.text), "tag": t.tag_ or t.pos_}
            for t in doc
            if not t.is_space
        ]
    return row


def _failed(doc_id: str, fields: Sequence[str], error: str) -> Dict[str, Any]:
    row: Dict[str, Any] = {"id": doc_id, "entities": [], "error": error}
    if "cats" in fields:
        row["cats"] = []
    if "tags" in fields:
        row["tags"] = []
    return row
