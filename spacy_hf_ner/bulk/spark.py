"""The Spark engine: the batch function over `mapInArrow` on Spark's Python
workers (the `spark` extra, `pip install '.[spark]'`, imported only here).

    # inside an existing SparkSession (Databricks, EMR, Dataproc)
    from spacy_hf_ner.bulk.spark import annotate_dataframe
    rows = annotate_dataframe(spark.table("docs"), "spacy-hf-ner:en_conll03")
    rows.write.saveAsTable("docs_ner")

`annotate_dataframe` is lazy and leaves exactly-once to Spark's writer. The
job (`spacy_hf_ner.annotate(..., engine="spark")`, `annotate --engine spark`)
adds the guarantees of the other engines, with the corpus never passing
through the driver:

* Spark reads the input (`run_job` in `spark_job`), and each task annotates
  one partition, cut by a hash of the id (so a retried task gets the same
  documents), and writes it as one Parquet part itself (a temporary name, then
  a rename: a part is whole or absent; a retry rewrites the same name). The
  driver gets one summary row per part.
* Each Python worker process loads the pipeline once (`core.load_cached`)
  and keeps it for every task it runs (Spark reuses its Python workers).
* The pipeline travels by name: it must be at the same path, or installed,
  on every executor.
"""
import os
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import Errors, SpacyHFNerError
from .core import Spec, describe, schema
from .local import WORKER_COLUMN, run_batch
from .units import filesystem

# the summary row each task returns for the part it wrote
SUMMARY = pa.schema(
    [
        ("part", pa.string()),
        ("rows", pa.int64()),
        ("failed", pa.int64()),
        ("entities", pa.int64()),
        ("worker", pa.string()),
    ]
)
SUMMARY_DDL = "part string, rows bigint, failed bigint, entities bigint, worker string"
PART_COLUMN = "_part"


def import_pyspark() -> Any:
    """`pyspark.sql`, or E114 with the install command."""
    try:
        import pyspark.sql
    except ImportError as e:
        raise ImportError(Errors.E114.format(error=e)) from e
    return pyspark.sql


def spark_schema(fields: Sequence[str] = ()) -> Any:
    """The output schema (`core.schema`) as a Spark `StructType`."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema(fields))


# -- on the Python workers -----------------------------------------------------------


def rebatch(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Arrow batches of `size` rows (the last may be shorter) from batches of
    any size, as Spark hands them over."""
    pending: List[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - held, batch.num_rows)
            pending.append(batch.slice(0, take))
            batch = batch.slice(take)
            held += take
            if held == size:
                yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
                pending, held = [], 0
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _set_threads(threads: Optional[int]) -> None:
    if threads:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _annotated(spec: Spec, batches: Iterator[pa.RecordBatch], batch_size: int, threads: Optional[int]) -> Iterator[pa.Table]:
    """The batch function over a partition: tables with `_worker`."""
    _set_threads(threads)
    for batch in rebatch(batches, batch_size):
        yield run_batch(spec, batch.column("id").to_pylist(), batch.column("text").to_pylist())


class Annotate:
    """The `mapInArrow` function of `annotate_dataframe`: output rows."""

    def __init__(self, spec: Spec, batch_size: int, threads: Optional[int] = None) -> None:
        self.spec, self.batch_size, self.threads = spec, batch_size, threads

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for table in _annotated(self.spec, batches, self.batch_size, self.threads):
            yield from table.drop_columns([WORKER_COLUMN]).to_batches()


class WritePart:
    """The `mapInArrow` function of the job: annotates one partition, writes it
    as the part `{prefix}{partition:06d}.parquet` in `folder`, and returns its
    summary row (`SUMMARY`)."""

    def __init__(self, spec: Spec, batch_size: int, folder: str, prefix: str, part_schema: pa.Schema, threads: Optional[int]) -> None:
        self.spec, self.batch_size, self.threads = spec, batch_size, threads
        self.folder, self.prefix, self.part_schema = folder, prefix, part_schema

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        first = next(batches, None)
        if first is None:
            return
        number = first.column(PART_COLUMN)[0].as_py()

        def chained() -> Iterator[pa.RecordBatch]:
            yield first
            yield from batches

        tables = list(_annotated(self.spec, chained(), self.batch_size, self.threads))
        table = pa.concat_tables(tables)
        worker = table.column(WORKER_COLUMN)[0].as_py()
        table = table.drop_columns([WORKER_COLUMN]).cast(self.part_schema)
        name = f"{self.prefix}{number:06d}.parquet"
        write_part(table, self.folder, name)
        entities = int(pc.sum(pc.list_value_length(table.column("entities"))).as_py() or 0)
        failed = table.num_rows - table.column("error").null_count
        yield pa.RecordBatch.from_pylist(
            [{"part": name, "rows": table.num_rows, "failed": failed, "entities": entities, "worker": worker}], schema=SUMMARY
        )


def write_part(table: pa.Table, folder: str, name: str) -> None:
    """Write one part atomically: a hidden temporary name (readers skip names
    starting with '.'), then a rename over `name`."""
    import pyarrow.parquet as pq

    fs, base = filesystem(folder)
    fs.create_dir(base, recursive=True)
    tmp = f"{base}/.{name}.{uuid.uuid4().hex}.tmp"
    pq.write_table(table, tmp, filesystem=fs)
    fs.move(tmp, f"{base}/{name}")


# -- on the driver -------------------------------------------------------------------


def annotate_dataframe(
    df: Any,
    pipeline: str,
    *,
    text_col: str = "text",
    id_col: Optional[str] = "id",
    batch_size: int = 64,
    code: Optional[str] = None,
    threads: Optional[int] = None,
) -> Any:
    """Annotate a Spark DataFrame, lazily: one output row per input row (id,
    entities, cats/tags when the pipeline assigns them, error), as
    `spacy_hf_ner.annotate` writes them. Spark runs it when the result is
    written or collected; each Python worker loads the pipeline once.

    df (DataFrame): the documents.
    pipeline (str): a spaCy pipeline folder or installed package, or a
        transformers classifier; at the same path, or installed, on every
        executor.
    text_col (str): the column holding the text.
    id_col (Optional[str]): the column holding the ids (cast to strings);
        None: Spark's `monotonically_increasing_id()` (unique, not the row
        number).
    batch_size (int): documents per `nlp.pipe` batch.
    code (Optional[str]): a Python file to import first in every worker.
    threads (Optional[int]): torch threads per Python worker (None: torch's
        default; give the executor's cores per task).
    RETURNS (DataFrame): the annotations, in the schema of `spark_schema`.
    """
    sql = import_pyspark()
    F = sql.functions
    spec = Spec(pipeline=pipeline, fields=tuple(describe(pipeline, code)["fields"]), code=code)
    ids = F.col(id_col).cast("string") if id_col else F.monotonically_increasing_id().cast("string")
    docs = df.select(ids.alias("id"), F.col(text_col).cast("string").alias("text"))
    return docs.mapInArrow(Annotate(spec, batch_size, threads), spark_schema(spec.fields))


def worker_counts(summaries: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    """Documents per worker process from the parts' summary rows."""
    counts: Counter = Counter()
    for row in summaries:
        counts[row["worker"]] += row["rows"]
    return dict(counts)


def check_parts(summaries: Sequence[Dict[str, Any]], folder: str) -> None:
    """Each part a task reported is in `folder` with the rows it reported
    (read from the Parquet footers: no data is read)."""
    import pyarrow.parquet as pq

    fs, base = filesystem(folder)
    for row in summaries:
        with fs.open_input_file(f"{base}/{row['part']}") as f:
            rows = pq.ParquetFile(f).metadata.num_rows
        if rows != row["rows"]:
            raise RuntimeError(
                Errors.E110.format(
                    missing=max(row["rows"] - rows, 0), extra=max(rows - row["rows"], 0),
                    examples=f"part {row['part']} holds {rows} rows, its task wrote {row['rows']}", path=folder,
                )
            )


def not_spark_input(path: str, problem: str, fix: str) -> SpacyHFNerError:
    return SpacyHFNerError(Errors.E115.format(path=path, problem=problem, fix=fix))


def session(master: Optional[str], workers: Optional[int], max_retries: int, conf: Optional[Dict[str, str]]) -> Tuple[Any, bool]:
    """(SparkSession, whether this job started it): the active session when
    there is one (`master` is then ignored), else a new one on `master`
    (default `local[workers,max_retries+1]`: local mode retries tasks)."""
    sql = import_pyspark()
    active = sql.SparkSession.getActiveSession()
    if active is not None:
        return active, False
    master = master or f"local[{workers or os.cpu_count() or 1},{max_retries + 1}]"
    builder = sql.SparkSession.builder.master(master).appName("spacy-hf-ner annotate")
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    if master.startswith("local"):
        # the Python workers run this interpreter (pyspark reads the variable,
        # not `spark.pyspark.python`, when the driver is a Python process)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate(), True


class Watchdog:
    """Runs Spark actions in a job group, reports task progress, and cancels
    an action when no task finishes within `timeout` seconds."""

    def __init__(self, spark: Any, timeout: float, progress: Optional[Callable[[int, int], None]] = None) -> None:
        self.spark, self.timeout, self.progress = spark, timeout, progress
        self.sc = spark.sparkContext

    def __call__(self, what: str, action: Callable[[], Any]) -> Any:
        group = f"spacy-hf-ner-{uuid.uuid4().hex[:12]}"
        box: Dict[str, Any] = {}

        def target() -> None:
            self.sc.setJobGroup(group, f"spacy-hf-ner annotate: {what}", interruptOnCancel=True)
            try:
                box["value"] = action()
            except BaseException as e:  # raised in the caller's thread
                box["error"] = e

        thread = threading.Thread(target=target, name="annotate-spark", daemon=True)
        thread.start()
        last, changed = -1, time.monotonic()
        while thread.is_alive():
            thread.join(0.5)
            done, running, total = self._tasks(group)
            if self.progress is not None:
                self.progress(done, total)
            if done != last:
                last, changed = done, time.monotonic()
            elif thread.is_alive() and time.monotonic() - changed > self.timeout:
                error = self._stalled(what, done, running)
                self._cancel(group, thread)
                raise error
        if "error" in box:
            raise _coded(box["error"])
        return box.get("value")

    def _cancel(self, group: str, thread: threading.Thread, patience: float = 30.0) -> None:
        """Cancel the group's jobs until the action returns (a job submitted
        just after a cancel would otherwise run on)."""
        end = time.monotonic() + patience
        while thread.is_alive() and time.monotonic() < end:
            self.sc.cancelJobGroup(group)
            thread.join(0.5)

    def _tasks(self, group: str) -> Tuple[int, int, int]:
        tracker = self.sc.statusTracker()
        done = running = total = 0
        for job in tracker.getJobIdsForGroup(group):
            info = tracker.getJobInfo(job)
            for stage in (info.stageIds if info else []):
                stage_info = tracker.getStageInfo(stage)
                if stage_info is not None:
                    done += stage_info.numCompletedTasks
                    running += stage_info.numActiveTasks
                    total += stage_info.numTasks
        return done, running, total

    def _stalled(self, what: str, done: int, running: int) -> Exception:
        master = self.sc.master
        executors = 1 if master.startswith("local") else self.sc._jsc.sc().getExecutorMemoryStatus().size() - 1
        if running == 0 and done == 0:
            fix = (
                "give the cluster workers with free cores and memory (the Spark UI lists them), make "
                "spark.executor.cores / memory fit a worker, or raise --stall-timeout"
            )
            return SpacyHFNerError(
                Errors.E113.format(seconds=self.timeout, what=what, executors=executors, master=master, running=running, fix=fix)
            )
        return TimeoutError(Errors.E108.format(seconds=self.timeout, engine="spark", done="?", total="?"))


def _coded(error: BaseException) -> BaseException:
    """Spark's own errors (a task failed too often, ...) as E116; ours as they are."""
    if str(error).startswith("[E") or not type(error).__module__.startswith(("py4j", "pyspark")):
        return error
    lines = [line for line in str(error).splitlines() if line.strip()]
    first = next((line for line in lines if "Error" in line or "Exception" in line), lines[0] if lines else "")
    wrapped = RuntimeError(Errors.E116.format(error=f"{type(error).__name__}: {first.strip()[:500]}"))
    wrapped.__cause__ = error
    return wrapped
