"""The annotation job: the same driver for every engine.

It reads the corpus, skips what an earlier (killed) run already wrote
(`resume`), hands batches to the engine, writes the results in parts, and at
the end checks that every input document is in the output exactly once before
it publishes OUTPUT. A watchdog stops the job (E108) when no batch finishes
within `stall_timeout` seconds, instead of hanging.
"""
import queue
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import (
    Errors,
    HFNerWarning,
    SpacyHFNerError,
    SpacyHFNerFileExistsError,
    SpacyHFNerRuntimeError,
    SpacyHFNerTimeoutError,
    Warnings,
)
from .core import OFFSETS, Spec, describe, schema
from .io import Corpus, Parts, flat_entities, output_kind, parts_dir, publish, read_metadata, read_rows, write_table
from .local import WORKER_COLUMN


@dataclass
class Report:
    """What a job did. `documents` is every row of the output; `annotated`,
    `entities`, `failed` and the rate count this run (a resumed run skips
    `resumed` documents written before)."""

    output: str
    engine: str
    documents: int
    annotated: int
    resumed: int
    entities: int
    failed: int
    seconds: float
    workers: Dict[str, int] = field(default_factory=dict)
    failed_examples: List[str] = field(default_factory=list)

    @property
    def docs_per_s(self) -> float:
        return self.annotated / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> str:
        """The report as a table (printed by the command line)."""
        from wasabi import table

        rows = [
            ("output", self.output),
            ("engine", f"{self.engine}, {len(self.workers)} worker process(es)"),
            ("documents", f"{self.documents:,}"),
            ("annotated now", f"{self.annotated:,}"),
            ("resumed (written before)", f"{self.resumed:,}"),
            ("entities", f"{self.entities:,}"),
            ("failed documents", f"{self.failed:,}"),
            ("seconds", f"{self.seconds:.1f}"),
            ("docs/s", f"{self.docs_per_s:.1f}"),
        ]
        rows += [(f"  worker {name}", f"{n:,} docs") for name, n in sorted(self.workers.items())]
        return table(rows, header=("annotate", ""), divider=True)


def check_positive(key: str, flag: str, value: Any, least: float = 1, fix: str = "") -> None:
    if value is not None and value < least:
        raise SpacyHFNerError(
            Errors.E111.format(key=key, flag=flag, value=value, problem=f"must be at least {least:g}", fix=fix or f"give --{flag} {least:g} or more")
        )


def run(
    input: Any,
    output: Any,
    pipeline: str,
    *,
    engine: str,
    workers: Optional[int],
    cpus_per_worker: float,
    gpus_per_worker: Optional[float],
    batch_size: int,
    resume: bool,
    text_key: str,
    id_key: Optional[str],
    code: Optional[str],
    max_retries: int,
    stall_timeout: float,
    checkpoint_every: int,
    flat: Any,
    progress: bool,
    ray_address: Optional[str],
    ray_init: Optional[Dict[str, Any]],
) -> Report:
    """Run one job (see `spacy_hf_ner.annotate` for the arguments and their
    defaults)."""
    import spacy

    from .. import __version__

    check_positive("batch_size", "batch-size", batch_size)
    check_positive("workers", "workers", workers)
    check_positive("max_retries", "max-retries", max_retries, least=0)
    check_positive("checkpoint_every", "checkpoint-every", checkpoint_every)
    check_positive("gpus_per_worker", "gpus-per-worker", gpus_per_worker, least=0)
    if stall_timeout <= 0 or cpus_per_worker <= 0:
        key, value = ("stall_timeout", stall_timeout) if stall_timeout <= 0 else ("cpus_per_worker", cpus_per_worker)
        flag = key.replace("_", "-")
        raise SpacyHFNerError(Errors.E111.format(key=key, flag=flag, value=value, problem="must be positive", fix=f"give --{flag} > 0"))
    output = Path(output)
    output_kind(output)
    corpus = Corpus(Path(input), text_key=text_key, id_key=id_key)
    described = describe(pipeline, code)
    spec = Spec(pipeline=pipeline, fields=tuple(described["fields"]), code=code)
    out_schema = schema(spec.fields)
    meta = {
        "model": pipeline,
        "config_hash": described["config_hash"],
        "spacy_hf_ner_version": __version__,
        "spacy_version": spacy.__version__,
        "offsets": OFFSETS,
        "fields": list(spec.fields),
        "input": str(corpus.path),
    }
    parts = Parts(parts_dir(output), out_schema, meta)
    earlier = [output] if output.exists() else []
    if (earlier or parts.files()) and not resume:
        left = f" (and {len(parts.files())} part(s) of an unfinished run in '{parts.folder}')" if parts.files() else ""
        if not earlier:
            left = f": '{parts.folder}' holds {len(parts.files())} part(s) of an unfinished run"
        raise SpacyHFNerFileExistsError(Errors.E105.format(path=output, parts=left))
    for source in [*earlier, *parts.files()[:1]]:
        was = read_metadata(source)
        if was and was.get("config_hash") != meta["config_hash"]:
            raise SpacyHFNerError(
                Errors.E112.format(
                    path=output, was=was.get("model"), was_hash=was.get("config_hash"), now=pipeline, now_hash=meta["config_hash"]
                )
            )
    written: Set[str] = set(parts.ids())
    for source in earlier:
        written.update(read_rows(source, out_schema).column("id").to_pylist())
    resumed = len(written)

    inputs: Set[str] = set()

    todo = corpus.batches(batch_size, skip=frozenset(written), seen=inputs)
    runner = _engine(engine, workers, cpus_per_worker, gpus_per_worker, ray_address, max_retries, batch_size, ray_init)
    bar = None
    if progress and engine == "local":
        from tqdm import tqdm

        total = corpus.total
        bar = tqdm(total=None if total is None else total - resumed, unit="doc", desc="annotate", smoothing=0.1)
    start = time.perf_counter()
    counts: Counter = Counter()
    per_worker: Counter = Counter()
    failed_examples: List[str] = []
    buffer: List[pa.Table] = []
    buffered = 0
    try:
        for table in _watched(runner.run(todo, spec), stall_timeout, engine, lambda: len(written), corpus.total):
            for name, n in zip(*_value_counts(table.column(WORKER_COLUMN))):
                per_worker[name] += n
            table = table.drop_columns([WORKER_COLUMN])
            keep = [doc_id not in written for doc_id in table.column("id").to_pylist()]
            if not all(keep):  # a retried task delivered a block twice: keep the first
                table = table.filter(pa.array(keep))
            new_ids = table.column("id").to_pylist()
            written.update(new_ids)
            errors = table.column("error")
            failed = table.num_rows - errors.null_count
            if failed and len(failed_examples) < 3:
                failed_examples += [
                    f"{i!r}: {e}" for i, e in zip(new_ids, errors.to_pylist()) if e is not None
                ][: 3 - len(failed_examples)]
            counts["annotated"] += table.num_rows
            counts["failed"] += failed
            counts["entities"] += int(pc.sum(pc.list_value_length(table.column("entities"))).as_py() or 0)
            buffer.append(table)
            buffered += table.num_rows
            if buffered >= checkpoint_every:
                parts.write(pa.concat_tables(buffer))
                buffer, buffered = [], 0
            if bar is not None:
                bar.update(table.num_rows)
        if buffer:
            parts.write(pa.concat_tables(buffer))
            buffer = []
    finally:
        if buffer:  # keep what was finished for --resume
            parts.write(pa.concat_tables(buffer))
        if bar is not None:
            bar.close()
        runner.close()
    seconds = time.perf_counter() - start
    missing = inputs - written
    extra = written - inputs
    if missing or extra:
        examples = ", ".join(repr(i) for i in sorted(missing | extra)[:3])
        raise SpacyHFNerRuntimeError(Errors.E110.format(missing=len(missing), extra=len(extra), examples=examples, path=output))
    documents = publish([*earlier, *parts.files()], output, out_schema, meta)
    for file in parts.files():
        file.unlink()
    if parts.folder.is_dir():
        parts.folder.rmdir()
    if flat is not None:
        write_table(flat_entities(read_rows(output, out_schema)), Path(flat))
    if counts["failed"]:
        warnings.warn(
            Warnings.W100.format(failed=counts["failed"], total=counts["annotated"], examples="; ".join(failed_examples)),
            HFNerWarning,
        )
    return Report(
        output=str(output),
        engine=engine,
        documents=documents,
        annotated=counts["annotated"],
        resumed=resumed,
        entities=counts["entities"],
        failed=counts["failed"],
        seconds=seconds,
        workers=dict(per_worker),
        failed_examples=failed_examples,
    )


def _engine(
    engine: str,
    workers: Optional[int],
    cpus_per_worker: float,
    gpus_per_worker: Optional[float],
    address: Optional[str],
    max_retries: int,
    batch_size: int,
    init: Optional[Dict[str, Any]],
) -> Any:
    if engine == "local":
        from .local import LocalEngine

        return LocalEngine(workers=workers or 1, max_retries=max_retries)
    if engine == "ray":
        from .ray import RayEngine

        return RayEngine(
            workers=workers,
            cpus_per_worker=cpus_per_worker,
            gpus_per_worker=gpus_per_worker,
            address=address,
            max_retries=max_retries,
            batch_size=batch_size,
            init=init,
        )
    raise SpacyHFNerError(
        Errors.E111.format(key="engine", flag="engine", value=engine, problem="is not an engine", fix="use 'local' or 'ray'")
    )


def _value_counts(column: Any) -> Tuple[List[str], List[int]]:
    counts = pc.value_counts(column)
    return counts.field("values").to_pylist(), counts.field("counts").to_pylist()


def _watched(results: Iterator[pa.Table], timeout: float, engine: str, done: Any, total: Optional[int]) -> Iterator[pa.Table]:
    """The engine's results, produced in a thread; E108 when none comes within
    `timeout` seconds (the watchdog)."""
    box: "queue.Queue[Tuple[str, Any]]" = queue.Queue(maxsize=4)

    def produce() -> None:
        try:
            for item in results:
                box.put(("item", item))
            box.put(("done", None))
        except BaseException as e:  # handed to the consumer, raised there
            box.put(("error", e))

    thread = threading.Thread(target=produce, name="annotate-engine", daemon=True)
    thread.start()
    while True:
        try:
            kind, value = box.get(timeout=timeout)
        except queue.Empty:
            raise SpacyHFNerTimeoutError(
                Errors.E108.format(seconds=timeout, engine=engine, done=done(), total="?" if total is None else total)
            ) from None
        if kind == "done":
            return
        if kind == "error":
            raise value
        yield value
