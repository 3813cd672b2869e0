"""Units of work for engines whose workers read the corpus themselves.

The driver plans units from file listings and metadata only (sizes, Parquet
footers, the first record of the first file): a unit is a byte range of a
JSONL file (the lines that start in it), a row range of a Parquet file, a
whole CSV file, or a range of a .txt folder's files. A worker reads its unit
(`read_unit`) from any filesystem pyarrow or fsspec opens, annotates it and
writes one part named after the unit; so every document belongs to exactly
one unit, a part is written once (atomically), and `--resume` skips the units
whose part exists.

Ids are the id column's values, or, without one, the record number: the
driver then needs each unit's record count first (`count_unit`, on workers)
to number the units' first records.
"""
import csv
import hashlib
import io
import json
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import pyarrow.parquet as pq
from pyarrow import fs as pafs

from ..errors import Errors
from .io import INPUT_KINDS, id_column

SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class Unit:
    """One unit: `path` on the input's filesystem, `kind`, [start, stop) in
    bytes (jsonl), rows (parquet) or files (txt; `path` is the folder),
    `first` = the record number of its first record, `rows` = its record
    count when known (-1: counted by its worker)."""

    number: int
    path: str
    kind: str
    start: int
    stop: int
    first: int = 0
    rows: int = -1


@dataclass(frozen=True)
class Source:
    """The input: its URI, columns, and the id column chosen (None: record
    numbers)."""

    uri: str
    text_key: str
    id_column: Optional[str]


def filesystem(uri: str) -> Tuple[Any, str]:
    """(pyarrow filesystem, path) for a local path or a URI (s3://, gs://,
    hdfs://, or any fsspec protocol)."""
    if "://" not in uri:
        import os

        return pafs.LocalFileSystem(), os.path.abspath(uri)
    try:
        return pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError):  # not a pyarrow filesystem: fsspec's
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def list_files(uri: str) -> Tuple[str, List[Tuple[str, int]]]:
    """(kind, [(path, size)]) of a file or a folder (sorted); E100 when there
    is nothing to read."""
    fs, path = filesystem(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise ValueError(Errors.E100.format(path=uri, problem="does not exist"))
    if info.type == pafs.FileType.File:
        kind = INPUT_KINDS.get("." + path.rsplit(".", 1)[-1].lower())
        if kind is None:
            raise ValueError(Errors.E100.format(path=uri, problem=f"has an unknown suffix '{path.rsplit('.', 1)[-1]}'"))
        return kind, [(path, info.size)]
    found = [f for f in fs.get_file_info(pafs.FileSelector(path, recursive=True)) if f.type == pafs.FileType.File]
    for kind in ("parquet", "jsonl", "csv", "txt"):
        files = sorted((f.path, f.size) for f in found if _kind(f.path) == kind)
        if files:
            return kind, files
    raise ValueError(Errors.E100.format(path=uri, problem="is a folder without .jsonl, .parquet, .csv or .txt files"))


def _kind(path: str) -> str:
    suffix = "." + path.rsplit(".", 1)[-1].lower()
    return "txt" if suffix == ".txt" else INPUT_KINDS.get(suffix, "")


def plan(uri: str, text_key: str, id_key: Optional[str], rows_per_unit: Callable[[int], int]) -> Tuple[Source, List[Unit]]:
    """The units of the input at `uri`, of `rows_per_unit(records)` records
    each (the number of records is estimated from the sizes for JSONL)."""
    kind, files = list_files(uri)
    fs, _ = filesystem(uri)
    columns = _columns(fs, kind, files[0][0])
    source = Source(uri, text_key, _id_column(uri, kind, columns, text_key, id_key))
    units: List[Unit] = []
    if kind == "parquet":
        counts = [pq.ParquetFile(fs.open_input_file(path)).metadata.num_rows for path, _ in files]
        rows = rows_per_unit(sum(counts))
        for (path, _), n in zip(files, counts):
            for start in range(0, n, rows):
                units.append(Unit(len(units), path, kind, start, min(n, start + rows), rows=min(n, start + rows) - start))
    elif kind == "jsonl":
        per_record = _bytes_per_record(fs, files[0][0])
        step = max(1, rows_per_unit(sum(size for _, size in files) // per_record) * per_record)
        for path, size in files:
            for start in range(0, max(size, 1), step):
                units.append(Unit(len(units), path, kind, start, min(size, start + step)))
    elif kind == "csv":
        units = [Unit(i, path, kind, 0, size) for i, (path, size) in enumerate(files)]
    else:
        _, folder = filesystem(uri)
        rows = rows_per_unit(len(files))
        for start in range(0, len(files), rows):
            stop = min(len(files), start + rows)
            units.append(Unit(len(units), folder, kind, start, stop, first=start, rows=stop - start))
    return source, _numbered(units)


def _numbered(units: List[Unit]) -> List[Unit]:
    """Units with known counts get their first record number now."""
    first, out = 0, []
    for unit in units:
        if unit.rows < 0:
            return units
        out.append(Unit(unit.number, unit.path, unit.kind, unit.start, unit.stop, first, unit.rows))
        first += unit.rows
    return out


def with_counts(units: Sequence[Unit], counts: Sequence[int]) -> List[Unit]:
    """The units with their record counts and first record numbers."""
    return _numbered([Unit(u.number, u.path, u.kind, u.start, u.stop, 0, n) for u, n in zip(units, counts)])


def signature(source: Source, units: Sequence[Unit]) -> str:
    """A hash of the layout: a resumed run must cut the input the same way."""
    text = json.dumps([source.uri, source.id_column, [(u.path, u.start, u.stop) for u in units]])
    return "units:" + hashlib.sha256(text.encode("utf8")).hexdigest()[:16]


def _columns(fs: Any, kind: str, path: str) -> List[str]:
    if kind == "parquet":
        return list(pq.ParquetFile(fs.open_input_file(path)).schema_arrow.names)
    if kind == "txt":
        return ["text"]
    with fs.open_input_stream(path) as f:
        head = f.read(SAMPLE_BYTES).decode("utf8", errors="replace")
    if kind == "csv":
        return next(csv.reader(io.StringIO(head)), [])
    line = next((x for x in head.splitlines() if x.strip()), "{}")
    try:
        record = json.loads(line)
    except ValueError:
        record = {}
    return list(record) if isinstance(record, dict) else []


def _id_column(uri: str, kind: str, columns: List[str], text_key: str, id_key: Optional[str]) -> Optional[str]:
    return "path" if kind == "txt" else id_column(uri, columns, text_key, id_key)


def _bytes_per_record(fs: Any, path: str) -> int:
    with fs.open_input_stream(path) as f:
        head = f.read(SAMPLE_BYTES)
    lines = [x for x in head.split(b"\n") if x.strip()]
    return max(1, math.ceil(len(head) / max(1, len(lines))))


# -- on a worker -----------------------------------------------------------------------


def read_unit(source: Source, unit: Unit) -> Tuple[List[str], List[Any]]:
    """(ids, texts) of one unit, in input order."""
    fs, _ = filesystem(source.uri)
    if unit.kind == "parquet":
        return _parquet(fs, source, unit)
    if unit.kind == "txt":
        return _txt(fs, source, unit)
    records = _jsonl(fs, unit) if unit.kind == "jsonl" else _csv(fs, unit)
    ids, texts = [], []
    for n, record in enumerate(records):
        ids.append(_make_id(source, record.get(source.id_column) if source.id_column else None, unit.first + n))
        texts.append(record.get(source.text_key))
    return ids, texts


def count_unit(source: Source, unit: Unit) -> int:
    """The number of records of a unit (for record-number ids)."""
    fs, _ = filesystem(source.uri)
    return sum(1 for _ in (_jsonl(fs, unit) if unit.kind == "jsonl" else _csv(fs, unit)))


def _make_id(source: Source, value: Any, row: int) -> str:
    if source.id_column is None:
        return str(row)
    if value is None:
        fix = "give every record an id, or pass --id-key '' to number the records"
        problem = f"the id column `{source.id_column}` is empty"
        raise ValueError(Errors.E104.format(path=source.uri, row=row, problem=problem, fix=fix))
    return str(value)


def _jsonl(fs: Any, unit: Unit) -> List[dict]:
    """The JSON objects of the lines that start in [start, stop)."""
    with fs.open_input_file(unit.path) as f:
        f.seek(max(0, unit.start - 1))
        data = f.read(unit.stop - max(0, unit.start - 1))
        tail = b"" if data.endswith(b"\n") or f.tell() >= f.size() else _rest_of_line(f)
    data += tail
    if unit.start > 0:  # the line that began before `start` belongs to the previous unit
        cut = data.find(b"\n")
        data = data[cut + 1:] if cut >= 0 else b""
    records = []
    for line in data.split(b"\n"):
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError as e:
                record = e
            if not isinstance(record, dict):
                fix = 'write one JSON object per line, e.g. {"id": 1, "text": "..."}'
                problem = f"a line of bytes {unit.start}-{unit.stop} is not a JSON object ({record})"
                raise ValueError(Errors.E104.format(path=unit.path, row="?", problem=problem, fix=fix))
            records.append(record)
    return records


def _rest_of_line(f: Any) -> bytes:
    out = b""
    while True:
        chunk = f.read(1 << 16)
        if not chunk:
            return out
        cut = chunk.find(b"\n")
        if cut >= 0:
            return out + chunk[: cut + 1]
        out += chunk


def _csv(fs: Any, unit: Unit) -> List[dict]:
    csv.field_size_limit(sys.maxsize)
    with fs.open_input_stream(unit.path) as f:
        return list(csv.DictReader(io.StringIO(f.read().decode("utf8"))))


def _parquet(fs: Any, source: Source, unit: Unit) -> Tuple[List[str], List[Any]]:
    file = pq.ParquetFile(fs.open_input_file(unit.path))
    columns = [source.text_key] + ([source.id_column] if source.id_column and source.id_column != source.text_key else [])
    texts: List[Any] = []
    values: List[Any] = []
    row = 0
    for batch in file.iter_batches(columns=columns, batch_size=4096):
        lo, hi = max(unit.start - row, 0), min(unit.stop - row, batch.num_rows)
        if hi > lo:
            texts += batch.column(source.text_key).slice(lo, hi - lo).to_pylist()
            if source.id_column:
                values += batch.column(source.id_column).slice(lo, hi - lo).to_pylist()
        row += batch.num_rows
        if row >= unit.stop:
            break
    ids = [_make_id(source, values[i] if values else None, unit.first + i) for i in range(len(texts))]
    return ids, texts


def _txt(fs: Any, source: Source, unit: Unit) -> Tuple[List[str], List[Any]]:
    _, kind_files = list_files(source.uri)
    files = [p for p, _ in kind_files][unit.start: unit.stop]
    ids = [p[len(unit.path):].lstrip("/") for p in files]
    texts = []
    for path in files:
        with fs.open_input_stream(path) as f:
            texts.append(f.read().decode("utf8"))
    return ids, texts
