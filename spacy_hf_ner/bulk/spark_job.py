"""The driver of `annotate --engine spark`: it plans, watches and verifies;
Spark reads the corpus and the tasks write the parts (`spark.WritePart`).

1. Spark reads the input and checks it in one pass: ids unique and present,
   JSON lines well formed (E103, E104).
2. `--resume`: the ids of finished parts (and of an earlier OUTPUT) are left
   out by an anti-join, in Spark.
3. The rest is cut into parts of at most `checkpoint_every` documents by a
   hash of the id; each task annotates and writes one part.
4. Before OUTPUT is published: every part a task reported holds its rows
   (Parquet footers), and a full outer join of input ids with output ids
   counts the missing, the unexpected and the doubled (E110). No id list ever
   reaches the driver.
5. Publishing renames the parts folder to OUTPUT (a folder of Parquet parts),
   or has Spark write OUTPUT (JSON lines parts, or a merge with an earlier
   OUTPUT).

Every Spark action runs under a watchdog: when no task finishes within
`stall_timeout` seconds the job is cancelled with E108 (tasks were running)
or E113 (no executor ran anything), instead of hanging.
"""
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..errors import Errors, SpacyHFNerError
from .io import INPUT_KINDS, Parts, meta_path, output_kind, with_metadata
from .spark import (
    PART_COLUMN,
    SUMMARY_DDL,
    Watchdog,
    WritePart,
    check_parts,
    import_pyspark,
    not_spark_input,
    session,
    spark_schema,
    worker_counts,
)
from .units import filesystem

# -- reading and checking the corpus -------------------------------------------------


def read_corpus(watch: Watchdog, path: str, text_key: str, id_key: Optional[str]) -> Tuple[Any, Optional[str]]:
    """(DataFrame of id, text and `_bad` (a malformed JSON line), the id
    column or None for record numbers)."""
    F = import_pyspark().functions
    spark = watch.spark
    kind = INPUT_KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise not_spark_input(path, "is not a .jsonl, .parquet or .csv file or folder of them", "convert it to JSONL or Parquet, or use --engine local")
    fs, base = filesystem(path)
    if fs.get_file_info(base).type.name == "NotFound":
        raise not_spark_input(path, "does not exist", "give the path of a .jsonl, .parquet or .csv file (or a folder of them)")
    columns, raw = watch("reading the corpus's columns", lambda: _reader(spark, kind, path, text_key, id_key))
    id_col = _id_column(path, columns, text_key, id_key)
    # (Spark refuses a query of the corrupt-record column alone: a bad line has no text either)
    bad = (F.col("_corrupt_record").isNotNull() & F.col(text_key).isNull()) if kind == "jsonl" else F.lit(False)
    df = raw.select(
        (F.col(id_col).cast("string") if id_col else F.lit(None).cast("string")).alias("id"),
        F.col(text_key).cast("string").alias("text"),
        bad.alias("_bad"),
    )
    return (df if id_col else _numbered(watch, df)), id_col


def _reader(spark: Any, kind: str, path: str, text_key: str, id_key: Optional[str]) -> Tuple[List[str], Any]:
    if kind == "parquet":
        raw = spark.read.parquet(path)
        return raw.columns, raw
    if kind == "csv":
        raw = spark.read.options(header=True, multiLine=True, escape='"').csv(path)
        return raw.columns, raw
    first = spark.read.text(path).where("trim(value) != ''").first()
    if first is None:
        raise not_spark_input(path, "has no records", "give a file with one JSON object per line")
    try:
        columns = list(json.loads(first["value"]))
    except (ValueError, TypeError) as e:
        raise not_spark_input(path, f"line 1 is not a JSON object ({e})", 'write one JSON object per line, e.g. {"id": 1, "text": "..."}') from e
    wanted = [c for c in dict.fromkeys([text_key, id_key or "id"]) if c in columns]
    ddl = ", ".join(f"`{c}` string" for c in wanted) + ", `_corrupt_record` string"
    return columns, spark.read.schema(ddl).option("columnNameOfCorruptRecord", "_corrupt_record").json(path)


def _id_column(path: str, columns: List[str], text_key: str, id_key: Optional[str]) -> Optional[str]:
    for key, flag, what in [(text_key, "text-key", "text"), (id_key, "id-key", "ids")]:
        if key and key not in columns:
            shown = ", ".join(repr(c) for c in columns) or "none"
            raise SpacyHFNerError(Errors.E102.format(path=path, key=key, flag=flag, columns=shown, what=what))
    if id_key == "":
        return None
    return id_key or ("id" if "id" in columns else None)


def _numbered(watch: Watchdog, df: Any) -> Any:
    """Record numbers as ids (0-based, in file order), as the local engine:
    the rows per input split, then each row's offset in its split."""
    F = import_pyspark().functions
    marked = df.withColumn("_split", F.spark_partition_id()).withColumn("_mono", F.monotonically_increasing_id())
    counts = dict(watch("numbering the records", marked.groupBy("_split").count().collect))
    offsets, total = [], 0
    for split in range(max(counts, default=-1) + 1):
        offsets.append(total)
        total += counts.get(split, 0)
    offset = F.element_at(F.array(*[F.lit(o) for o in offsets or [0]]), F.col("_split") + 1)
    number = F.col("_mono") - F.shiftleft(F.col("_split").cast("long"), 33) + offset
    return marked.withColumn("id", number.cast("string")).drop("_split", "_mono")


def check_corpus(watch: Watchdog, df: Any, path: str, id_col: Optional[str]) -> int:
    """One pass: E104 on a malformed line or an empty id, E103 on a repeated
    id; RETURNS the number of documents."""
    F = import_pyspark().functions
    per_id = df.groupBy("id").agg(F.count("*").alias("n"), F.max(F.col("_bad").cast("int")).alias("bad"))
    stats = watch(
        "reading the corpus",
        lambda: per_id.agg(
            F.sum("n").alias("total"), F.sum((F.col("n") > 1).cast("int")).alias("twice"),
            F.max(F.col("id").isNull().cast("int")).alias("no_id"), F.max("bad").alias("bad"),
        ).first(),
    )
    key = id_col or "id"
    if stats["bad"]:
        fix = 'write one JSON object per line, e.g. {"id": 1, "text": "..."}'
        raise SpacyHFNerError(Errors.E104.format(path=path, row="?", problem="a line is not a JSON object", fix=fix))
    if stats["no_id"]:
        fix = "give every record an id, or pass --id-key '' to number the records"
        raise SpacyHFNerError(Errors.E104.format(path=path, row="?", problem=f"the id column `{key}` is empty", fix=fix))
    if stats["twice"]:
        example = per_id.where("n > 1").select("id").first()
        raise SpacyHFNerError(Errors.E103.format(path=path, id=example["id"], row="?", key=key))
    return int(stats["total"] or 0)


# -- resume, parts, verification, publishing --------------------------------------------


def part_files(folder: str) -> List[str]:
    """The finished parts in `folder` (temporary files are hidden and skipped)."""
    from pyarrow import fs as pafs

    fs, base = filesystem(folder)
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(base))
    names = sorted(i.base_name for i in infos if i.base_name.startswith("part-") and i.base_name.endswith(".parquet"))
    # Spark reads them: a URI keeps its scheme (the filesystem's paths drop it)
    root = folder.rstrip("/") if "://" in folder else base
    return [f"{root}/{name}" for name in names]


def next_prefix(files: List[str]) -> str:
    """This run's part prefix: `part-RRR` after the runs before (a part is
    `part-RRRPPPPPP.parquet`, which the local engine's numbering continues)."""
    runs = [Parts.number_of(Path(f)) // 10**6 for f in files]
    return f"part-{max(runs, default=0) + 1:03d}"


def read_output(spark: Any, path: str, fields: Any) -> Any:
    """An output (or the parts) as a DataFrame in the output schema."""
    if output_kind(Path(path)) == "jsonl":
        return spark.read.schema(spark_schema(fields)).json(path)
    return spark.read.parquet(path)


def verify(watch: Watchdog, docs: Any, written: Any, output: str) -> Dict[str, int]:
    """E110 unless every input id is written exactly once; RETURNS the rows,
    failed rows and entities of `written` (`io.publish`'s counts), in the
    same pass."""
    F = import_pyspark().functions
    entities = F.when(F.col("entities").isNull(), 0).otherwise(F.size("entities"))
    counted = written.groupBy("id").agg(
        F.count("*").alias("n"), F.sum(F.col("error").isNotNull().cast("int")).alias("failed"), F.sum(entities).alias("entities"),
    )
    joined = docs.select("id", F.lit(1).alias("inp")).join(counted, "id", "full_outer")
    stats = watch(
        "verifying every document is written exactly once",
        lambda: joined.agg(
            F.sum(F.col("n").isNull().cast("int")).alias("missing"),
            F.sum(F.col("inp").isNull().cast("int")).alias("extra"),
            F.sum((F.col("n") > 1).cast("int")).alias("twice"),
            F.sum("n").alias("rows"), F.sum("failed").alias("failed"), F.sum("entities").alias("entities"),
        ).first(),
    )
    missing, extra = int(stats["missing"] or 0), int((stats["extra"] or 0) + (stats["twice"] or 0))
    if missing or extra:
        wrong = joined.where("n is null or inp is null or n > 1").select("id").limit(3).collect()
        examples = ", ".join(repr(r["id"]) for r in wrong)
        raise RuntimeError(Errors.E110.format(missing=missing, extra=extra, examples=examples, path=output))
    return {key: int(stats[key] or 0) for key in ("rows", "failed", "entities")}


def publish(watch: Watchdog, written: Any, parts: str, output: str, earlier: bool, meta: Dict[str, Any]) -> None:
    """OUTPUT from the verified parts (and an earlier OUTPUT), then the
    metadata next to it (`OUTPUT.meta.json`)."""
    fs, out = filesystem(output)
    _, parts_base = filesystem(parts)
    if output_kind(Path(output)) == "parquet" and not earlier:
        fs.move(parts_base, out)
    else:
        tmp = out + ".tmp"
        writer = written.write.mode("overwrite")
        if output_kind(Path(output)) == "jsonl":
            watch("writing OUTPUT", lambda: writer.option("ignoreNullFields", "false").json(tmp))
        else:
            watch("writing OUTPUT", lambda: writer.parquet(tmp))
        _remove(fs, out)
        fs.move(tmp, out)
        _remove(fs, parts_base)
    with fs.open_output_stream(str(meta_path(Path(out)))) as f:
        f.write(json.dumps(meta, indent=2, sort_keys=True).encode("utf8"))


def _remove(fs: Any, path: str) -> None:
    from pyarrow import fs as pafs

    kind = fs.get_file_info(path).type
    if kind == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif kind == pafs.FileType.File:
        fs.delete_file(path)


def plan_parts(n: int, checkpoint_every: int, batch_size: int, parallelism: int) -> int:
    """Parts (= tasks): at most `checkpoint_every` documents each, and enough
    for 4 tasks per core when the batches allow."""
    return max(1, math.ceil(n / checkpoint_every), min(math.ceil(n / batch_size), 4 * parallelism))


def annotate_parts(watch: Watchdog, todo: Any, n: int, folder: str, spec: Any, meta: Dict[str, Any], opts: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Run the annotation: one task per part; RETURNS the parts' summaries."""
    from .core import schema

    F = import_pyspark().functions
    sc = watch.sc
    parts = plan_parts(n, opts["checkpoint_every"], opts["batch_size"], sc.defaultParallelism)
    # torch threads per Python worker: its share of the cores, not all of them
    if sc.master.startswith("local"):
        threads = max(1, (os.cpu_count() or 1) // max(1, sc.defaultParallelism))
    else:
        threads = int(sc.getConf().get("spark.task.cpus", "1"))
    writer = WritePart(spec, opts["batch_size"], folder, next_prefix(part_files(folder)), with_metadata(schema(spec.fields), meta), threads)
    planned = todo.select("id", "text").repartition(parts, "id").withColumn(PART_COLUMN, F.spark_partition_id())
    rows = watch("annotating", lambda: planned.mapInArrow(writer, SUMMARY_DDL).collect())
    return [row.asDict() for row in rows]


def run(options: Any) -> Any:
    """Run one job on Spark (`AnnotateOptions`); RETURNS its Report."""
    from .io import parts_dir
    from .job import Report, prepare

    job = prepare(options)  # the pipeline described, E105 / E112
    spec, meta = job.spec, job.meta
    input, output, batch_size = options.input, options.output, options.batch_size
    parts = str(parts_dir(Path(output)))
    fs, out = filesystem(output)
    earlier = fs.get_file_info(out).type.name != "NotFound"
    spark, owned = session(options.spark_master, options.workers, options.max_retries, options.spark_conf)
    progress, flat, checkpoint_every = options.progress, options.flat, options.checkpoint_every
    text_key, id_key, stall_timeout = options.text_key, options.id_key, options.stall_timeout
    bar = _bar(progress)
    watch = Watchdog(spark, stall_timeout, bar.progress if bar else None)
    try:
        docs, id_col = read_corpus(watch, input, text_key, id_key)
        check_corpus(watch, docs, input, id_col)
        docs = docs.drop("_bad")
        done = _done_ids(spark, part_files(parts), output if earlier else None, spec.fields)
        todo = docs if done is None else docs.join(done, "id", "left_anti")
        n = watch("planning", todo.count)
        resumed = watch("reading finished parts", done.count) if done is not None else 0
        start = time.perf_counter()
        summaries = annotate_parts(watch, todo, n, parts, spec, meta, {"checkpoint_every": checkpoint_every, "batch_size": batch_size}) if n else []
        seconds = time.perf_counter() - start
        check_parts(summaries, parts)
        written = _written(spark, parts, output if earlier else None, spec.fields)
        counts = verify(watch, docs, written, output)  # of OUTPUT, as published
        failed_now = sum(r["failed"] for r in summaries)
        examples = _failed_examples(watch, parts, summaries) if failed_now else []
        publish(watch, written, parts, output, earlier, meta)
        if flat is not None:
            _write_flat(watch, read_output(spark, output, spec.fields), str(flat))
    finally:
        if bar is not None:
            bar.close()
        if owned:
            spark.stop()
    report = Report(
        output=output, engine="spark", documents=counts["rows"], annotated=sum(r["rows"] for r in summaries),
        resumed=resumed, entities=counts["entities"], failed=counts["failed"], seconds=seconds,
        workers=worker_counts(summaries), failed_examples=examples, entities_now=sum(r["entities"] for r in summaries),
        failed_now=failed_now,
    )
    _warn_failed(report)
    return report


def _done_ids(spark: Any, parts: List[str], earlier: Optional[str], fields: Any) -> Any:
    """The ids written before (finished parts, an earlier OUTPUT), or None."""
    frames = [spark.read.parquet(*parts).select("id")] if parts else []
    if earlier is not None:
        frames.append(read_output(spark, earlier, fields).select("id"))
    if not frames:
        return None
    done = frames[0]
    for frame in frames[1:]:
        done = done.unionByName(frame)
    return done.distinct()


def _written(spark: Any, parts: str, earlier: Optional[str], fields: Any) -> Any:
    """Every output row: the parts, and the rows of an earlier OUTPUT that no
    part repeats (a run killed while publishing has both)."""
    files = part_files(parts)
    new = spark.read.parquet(*files) if files else None
    if earlier is None:
        if new is None:
            return spark.createDataFrame([], spark_schema(fields))
        return new
    old = read_output(spark, earlier, fields)
    if new is None:
        return old
    return new.unionByName(old.join(new.select("id"), "id", "left_anti"))


def _failed_examples(watch: Watchdog, parts: str, summaries: List[Dict[str, Any]]) -> List[str]:
    """Up to 3 failed documents of this run (read from its parts that hold one)."""
    files = [f"{parts.rstrip('/')}/{r['part']}" for r in summaries if r["failed"]]
    failed = watch.spark.read.parquet(*files).where("error is not null").select("id", "error")
    rows = watch("reading the failed documents", failed.limit(3).collect)
    return [f"{r['id']!r}: {r['error']}" for r in rows]


def _warn_failed(report: Any) -> None:
    import warnings

    from ..errors import HFNerWarning, Warnings

    if report.failed_now:  # this run's failures, as the other engines (the report shows both)
        message = Warnings.W100.format(failed=report.failed_now, total=report.annotated, examples="; ".join(report.failed_examples))
        warnings.warn(message, HFNerWarning)


def _write_flat(watch: Watchdog, rows: Any, path: str) -> None:
    """One row per entity (id, text, label, start, end, score), as a folder."""
    F = import_pyspark().functions
    flat = rows.select("id", F.explode("entities").alias("e")).select("id", "e.*")
    writer = flat.write.mode("overwrite")
    if output_kind(Path(path)) == "jsonl":
        watch("writing --flat", lambda: writer.json(path))
    else:
        watch("writing --flat", lambda: writer.parquet(path))


class _Bar:
    def __init__(self) -> None:
        from tqdm import tqdm

        self.tqdm = tqdm(total=0, unit="task", desc="annotate (spark)", smoothing=0.1)

    def progress(self, done: int, total: int) -> None:
        self.tqdm.total = total
        self.tqdm.n = done
        self.tqdm.refresh()

    def close(self) -> None:
        self.tqdm.close()


def _bar(progress: bool) -> Optional[_Bar]:
    return _Bar() if progress else None
