"""The streaming driver, for engines whose workers hand back result tables
(the local engine): this process reads the corpus, skips what an earlier run
wrote, hands batches to the engine's `run(batches, spec)`, writes the results
in parts, and checks that every input id is in the output exactly once (E110).
A watchdog stops the job (E108) when no batch finishes within
`stall_timeout` seconds, instead of hanging.
"""
import queue
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import Errors
from .io import Corpus, publish, read_rows
from .local import WORKER_COLUMN

if TYPE_CHECKING:
    from .job import Job, Tally


def annotate_stream(run: Callable[..., Iterator[pa.Table]], job: "Job", progress: bool) -> "Tally":
    """Annotate what `job` has not written yet through `run(batches, spec)`,
    writing parts as results come; E110 unless every input id is written
    exactly once."""
    from .job import Tally

    options = job.options
    corpus = Corpus(options.input, text_key=options.text_key, id_key=options.id_key)
    written: Set[str] = set(job.parts.ids())
    for source in job.earlier:
        written.update(read_rows(source, job.schema).column("id").to_pylist())
    tally = Tally(resumed=len(written))
    inputs: Set[str] = set()
    todo = corpus.batches(options.batch_size, skip=frozenset(written), seen=inputs)
    bar = _bar(corpus, tally.resumed) if progress else None
    buffer: List[pa.Table] = []
    try:
        results = _watched(run(todo, job.spec), options.stall_timeout, options.engine, lambda: len(written), corpus.total)
        for table in results:
            table = _count(table, written, tally)
            buffer.append(table)
            if sum(t.num_rows for t in buffer) >= options.checkpoint_every:
                job.parts.write(pa.concat_tables(buffer))
                buffer = []
            if bar is not None:
                bar.update(table.num_rows)
    finally:
        if buffer:  # keep what was finished for --resume
            job.parts.write(pa.concat_tables(buffer))
        if bar is not None:
            bar.close()
    missing, extra = inputs - written, written - inputs
    if missing or extra:
        examples = ", ".join(repr(i) for i in sorted(missing | extra)[:3])
        raise RuntimeError(Errors.E110.format(missing=len(missing), extra=len(extra), examples=examples, path=job.output))
    return tally


def publish_here(job: "Job") -> Dict[str, int]:
    """Merge an earlier OUTPUT and the parts into OUTPUT in this process."""
    return publish([*job.earlier, *job.parts.files()], job.output, job.schema, job.meta)


def _count(table: pa.Table, written: Set[str], tally: "Tally") -> pa.Table:
    """Count one result table into `tally`; RETURNS it without the worker
    column and without rows already written (a retried batch)."""
    counts = pc.value_counts(table.column(WORKER_COLUMN))
    for name, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()):
        tally.workers[name] += n
    table = table.drop_columns([WORKER_COLUMN])
    keep = [doc_id not in written for doc_id in table.column("id").to_pylist()]
    if not all(keep):  # a retried task delivered a block twice: keep the first
        table = table.filter(pa.array(keep))
    ids = table.column("id").to_pylist()
    written.update(ids)
    errors = table.column("error")
    failed = table.num_rows - errors.null_count
    if failed and len(tally.failed_examples) < 3:
        examples = [f"{i!r}: {e}" for i, e in zip(ids, errors.to_pylist()) if e is not None]
        tally.failed_examples += examples[: 3 - len(tally.failed_examples)]
    tally.annotated += table.num_rows
    tally.failed += failed
    tally.entities += int(pc.sum(pc.list_value_length(table.column("entities"))).as_py() or 0)
    return table


def _bar(corpus: Corpus, resumed: int) -> Any:
    from tqdm import tqdm

    total = corpus.total
    return tqdm(total=None if total is None else total - resumed, unit="doc", desc="annotate", smoothing=0.1)


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
            raise TimeoutError(
                Errors.E108.format(seconds=timeout, engine=engine, done=done(), total="?" if total is None else total)
            ) from None
        if kind == "done":
            return
        if kind == "error":
            raise value
        yield value
