"""Reading corpora and writing annotations for `spacy-hf-ner annotate`.

Inputs: JSONL (one object per line), Parquet, CSV, or a folder of .txt files
(the id is the file's path inside the folder). The text and id columns are
configurable; without an id column each record's number (0-based) is its id.
Ids are written as strings.

Outputs: Parquet or JSONL, one row per document. While a job runs, results go
to complete Parquet parts in `OUTPUT.parts/` (each written to a temporary name
and renamed, so a killed run leaves only whole parts); at the end they are
merged into OUTPUT. `--resume` reads the ids of the parts (and of an earlier
OUTPUT) and skips them. The metadata (model, config hash, versions, and that
offsets are Python character offsets) is in the Parquet schema's metadata
under `spacy_hf_ner`, or next to a JSONL file in `OUTPUT.meta.json`.
"""
import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import Errors, SpacyHFNerError

META_KEY = b"spacy_hf_ner"
INPUT_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
OUTPUT_KINDS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
PART_GLOB = "part-*.parquet"


# -- input ------------------------------------------------------------------------------


@dataclass
class Corpus:
    """An input corpus, read in batches of (ids, texts).

    path (Path): a file or a folder of .txt files.
    text_key (str): the column holding the text.
    id_key (Optional[str]): the column holding the id; None: "id" when the
        input has it, else the record number; "": always the record number.
    """

    path: Path
    text_key: str = "text"
    id_key: Optional[str] = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.is_dir():
            self.kind = "txt"
        elif not self.path.is_file():
            raise SpacyHFNerError(Errors.E100.format(path=self.path, problem="does not exist"))
        else:
            kind = INPUT_KINDS.get(self.path.suffix.lower())
            if kind is None:
                raise SpacyHFNerError(Errors.E100.format(path=self.path, problem=f"has an unknown suffix '{self.path.suffix}'"))
            self.kind = kind

    @property
    def total(self) -> Optional[int]:
        """The number of records when it is cheap to know (None otherwise)."""
        if self.kind == "parquet":
            return pq.ParquetFile(self.path).metadata.num_rows
        if self.kind == "txt":
            return len(self._txt_files())
        if self.kind == "jsonl":
            with open(self.path, "rb") as f:
                return sum(1 for line in f if line.strip())
        return None

    def batches(
        self, size: int, skip: AbstractSet[str] = frozenset(), seen: Optional[Set[str]] = None
    ) -> Iterator[Tuple[List[str], List[Any]]]:
        """(ids, texts) in batches of `size` records, in input order, leaving
        out the ids in `skip`; raises E103 on a repeated id.

        seen (Optional[Set[str]]): collects every input id, skipped or not.
        """
        from spacy.util import minibatch

        def todo() -> Iterator[Tuple[str, Any]]:
            for doc_id, text in self.unique_records():
                if seen is not None:
                    seen.add(doc_id)
                if doc_id not in skip:
                    yield doc_id, text

        for batch in minibatch(todo(), size):
            ids, texts = zip(*batch)
            yield list(ids), list(texts)

    def unique_records(self) -> Iterator[Tuple[str, Any]]:
        """`records`, checked for repeated ids (E103)."""
        seen: Set[str] = set()
        for row, (doc_id, text) in enumerate(self.records()):
            if doc_id in seen:
                raise SpacyHFNerError(Errors.E103.format(path=self.path, id=doc_id, row=row, key=self.id_key or "id"))
            seen.add(doc_id)
            yield doc_id, text

    def records(self) -> Iterator[Tuple[str, Any]]:
        """(id, text) per record; a missing or null text is None (annotated as a
        failed document, never dropped)."""
        reader = {"jsonl": self._jsonl, "parquet": self._parquet, "csv": self._csv, "txt": self._txt}[self.kind]
        yield from reader()

    def _id_column(self, columns: Sequence[str]) -> Optional[str]:
        return id_column(self.path, columns, self.text_key, self.id_key)

    def _make_id(self, value: Any, row: int, id_key: Optional[str]) -> str:
        if id_key is None:
            return str(row)
        if value is None:
            raise SpacyHFNerError(
                Errors.E104.format(
                    path=self.path, row=row, problem=f"the id column `{id_key}` is empty",
                    fix="give every record an id, or pass --id-key '' to number the records",
                )
            )
        return str(value)

    def _jsonl(self) -> Iterator[Tuple[str, Any]]:
        id_key: Optional[str] = None
        row = 0
        with open(self.path, encoding="utf8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as e:
                    record = e
                if not isinstance(record, dict):
                    raise SpacyHFNerError(
                        Errors.E104.format(
                            path=self.path, row=row, problem=f"line {line_no} is not a JSON object ({record})",
                            fix="write one JSON object per line, e.g. {\"id\": 1, \"text\": \"...\"}",
                        )
                    )
                if row == 0:
                    id_key = self._id_column(list(record))
                yield self._make_id(record.get(id_key) if id_key else None, row, id_key), record.get(self.text_key)
                row += 1

    def _parquet(self) -> Iterator[Tuple[str, Any]]:
        file = pq.ParquetFile(self.path)
        id_key = self._id_column(file.schema_arrow.names)
        columns = [self.text_key] + ([id_key] if id_key and id_key != self.text_key else [])
        row = 0
        for batch in file.iter_batches(columns=columns, batch_size=4096):
            texts = batch.column(self.text_key).to_pylist()
            ids = batch.column(id_key).to_pylist() if id_key else [None] * len(texts)
            for value, text in zip(ids, texts):
                yield self._make_id(value, row, id_key), text
                row += 1

    def _csv(self) -> Iterator[Tuple[str, Any]]:
        csv.field_size_limit(sys.maxsize)  # long documents are fields too
        with open(self.path, encoding="utf8", newline="") as f:
            reader = csv.DictReader(f)
            id_key = self._id_column(list(reader.fieldnames or []))
            for row, record in enumerate(reader):
                yield self._make_id(record.get(id_key) if id_key else None, row, id_key), record.get(self.text_key)

    def _txt_files(self) -> List[Path]:
        return sorted(p for p in self.path.rglob("*.txt") if p.is_file())

    def _txt(self) -> Iterator[Tuple[str, Any]]:
        files = self._txt_files()
        if not files:
            raise SpacyHFNerError(Errors.E100.format(path=self.path, problem="is a folder without .txt files"))
        for file in files:
            yield str(file.relative_to(self.path)), file.read_text(encoding="utf8")


def id_column(path: Any, columns: Sequence[str], text_key: str, id_key: Optional[str]) -> Optional[str]:
    """The column holding the ids (None: record numbers); E102 when the text
    or the id column is missing."""
    _check_column(path, text_key, columns, "text-key", "text")
    if id_key == "":
        return None
    if id_key is None:
        return "id" if "id" in columns else None
    _check_column(path, id_key, columns, "id-key", "ids")
    return id_key


def _check_column(path: Any, key: str, columns: Sequence[str], flag: str, what: str) -> None:
    if key not in columns:
        shown = ", ".join(repr(c) for c in columns) or "none"
        raise SpacyHFNerError(Errors.E102.format(path=path, key=key, flag=flag, columns=shown, what=what))


# -- output -----------------------------------------------------------------------------


def output_kind(path: Path) -> str:
    """"parquet" or "jsonl" from the output's suffix (E101 otherwise)."""
    kind = OUTPUT_KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise SpacyHFNerError(Errors.E101.format(path=path))
    return kind


def parts_dir(output: Path) -> Path:
    """Where a running job keeps its finished parts."""
    return Path(str(output) + ".parts")


def meta_path(output: Path) -> Path:
    """The metadata file next to a JSONL output."""
    return Path(str(output) + ".meta.json")


def with_metadata(schema: pa.Schema, meta: Dict[str, Any]) -> pa.Schema:
    return schema.with_metadata({META_KEY: json.dumps(meta, sort_keys=True).encode("utf8")})


def read_metadata(path: Path) -> Dict[str, Any]:
    """The job metadata of an output (Parquet or JSONL, a file or a Spark
    job's folder) or a part; {} when it has none."""
    path = Path(path)
    if output_kind(path) == "jsonl" or path.is_dir():  # a Spark output is a folder of parts
        file = meta_path(path)
        return json.loads(file.read_text(encoding="utf8")) if file.is_file() else {}
    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata[META_KEY]) if META_KEY in metadata else {}


class Parts:
    """The finished parts of a running job, each a complete Parquet file."""

    def __init__(self, folder: Path, schema: pa.Schema, meta: Dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.schema = with_metadata(schema, meta)

    def files(self) -> List[Path]:
        return sorted(self.folder.glob(PART_GLOB)) if self.folder.is_dir() else []

    @staticmethod
    def number_of(part: Path) -> int:
        """The number of a part file (`part-<number>.parquet`)."""
        return int(part.stem.split("-")[1])

    def ids(self) -> List[str]:
        """The ids already written (left-over temporary files are removed)."""
        if self.folder.is_dir():
            for tmp in self.folder.glob("*.tmp"):
                tmp.unlink()
        return [i for f in self.files() for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]

    def write(self, table: pa.Table, number: Optional[int] = None) -> Path:
        """Write one part atomically (a temporary name, then a rename).

        number (Optional[int]): the part's number (default: the next one).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        if number is None:
            files = self.files()
            number = self.number_of(files[-1]) + 1 if files else 0
        target = self.folder / f"part-{number:06d}.parquet"
        tmp = target.with_suffix(f".{os.getpid()}.tmp")  # a retried task may write beside a stuck one
        pq.write_table(table.cast(self.schema), tmp)
        os.replace(tmp, target)
        return target


def read_rows(path: Path, schema: Optional[pa.Schema] = None) -> pa.Table:
    """An output (Parquet or JSONL) as an Arrow table."""
    path = Path(path)
    if output_kind(path) == "parquet":
        return pq.read_table(path)
    rows = []
    with open(path, encoding="utf8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if isinstance(row.get("cats"), dict):
                    row["cats"] = list(row["cats"].items())
                rows.append(row)
    if schema is None:
        from .core import schema as make_schema

        fields = read_metadata(path).get("fields", [])
        schema = make_schema(fields)
    return pa.Table.from_pylist(rows, schema=schema)


def publish(
    sources: Sequence[Path], output: Path, schema: pa.Schema, meta: Dict[str, Any], unique: bool = False
) -> Dict[str, int]:
    """Merge the parts (and an earlier output) into `output`, streaming, through
    a temporary file renamed at the end.

    unique (bool): the sources hold each id once (no id set is kept).
    RETURNS (Dict[str, int]): the output's rows, failed rows and entities.
    """
    output = Path(output)
    kind = output_kind(output)
    tmp = output.with_name(output.name + ".tmp")
    counts = {"rows": 0, "failed": 0, "entities": 0}
    full = with_metadata(schema, meta)
    batches = (b for s in sources for b in _batches(s, schema)) if unique else _unique_batches(sources, schema)
    if kind == "parquet":
        with pq.ParquetWriter(tmp, full) as writer:
            for batch in batches:
                writer.write_batch(batch.cast(full))
                _add_counts(counts, batch)
    else:
        with open(tmp, "w", encoding="utf8") as f:
            for batch in batches:
                for row in batch.to_pylist():
                    if "cats" in row and row["cats"] is not None:
                        row["cats"] = dict(row["cats"])
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                _add_counts(counts, batch)
        meta_path(output).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf8")
    os.replace(tmp, output)
    return counts


def _add_counts(counts: Dict[str, int], batch: pa.RecordBatch) -> None:
    counts["rows"] += batch.num_rows
    counts["failed"] += batch.num_rows - batch.column("error").null_count
    counts["entities"] += int(pc.sum(pc.list_value_length(batch.column("entities"))).as_py() or 0)


def _unique_batches(sources: Sequence[Path], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The rows of every source, each id once (a run killed between writing
    OUTPUT and removing its parts has them in both)."""
    seen: Set[str] = set()
    for source in sources:
        for batch in _batches(source, schema):
            ids = batch.column("id").to_pylist()
            keep = [i not in seen for i in ids]
            seen.update(ids)
            yield batch if all(keep) else batch.filter(pa.array(keep))


def _batches(source: Path, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    if output_kind(source) == "parquet":
        yield from pq.ParquetFile(source).iter_batches(batch_size=8192)
    else:
        yield from read_rows(source, schema).to_batches()


def flat_entities(table: pa.Table) -> pa.Table:
    """One row per entity: id, text, label, start, end, score (documents
    without entities have no row here; they are in the per-document output)."""
    entities = table.column("entities").combine_chunks()
    parents = pc.list_parent_indices(entities)
    flat = pc.list_flatten(entities)
    columns: Dict[str, Any] = {"id": pc.take(table.column("id"), parents)}
    for name in ("text", "label", "start", "end", "score"):
        columns[name] = pc.struct_field(flat, name)
    return pa.table(columns)


def write_table(table: pa.Table, path: Path) -> None:
    """Write a table (e.g. the flat entity view) as Parquet or JSONL."""
    path = Path(path)
    if output_kind(path) == "parquet":
        pq.write_table(table, path)
    else:
        with open(path, "w", encoding="utf8") as f:
            for row in table.to_pylist():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
