"""The local engine (the default): the batch function in this process, or in
`workers` processes of this machine.

Worker processes are *spawned*, never forked: a fork of a process that has
started CUDA (or torch's OpenMP pool) can deadlock or crash, so each worker
starts a fresh interpreter and loads the pipeline itself, once
(`core.load_cached`). A worker process that dies (a segfault, the OOM killer)
breaks the pool: the pool is restarted and the unfinished batches are sent
again, at most `max_retries` times.
"""
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import pyarrow as pa

from ..errors import Errors
from .core import Spec, annotate_batch, load_cached, worker_name

WORKER_COLUMN = "_worker"


def run_batch(spec: Spec, ids: Sequence[str], texts: Sequence[Any]) -> pa.Table:
    """The batch function on this worker's cached pipeline, with the worker's
    name in an extra `_worker` column (the job counts and drops it)."""
    table = annotate_batch(load_cached(spec), ids, texts, spec.fields)
    return table.append_column(WORKER_COLUMN, pa.array([worker_name()] * table.num_rows, pa.string()))


def _init_worker(spec: Spec, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    load_cached(spec)


class LocalEngine:
    """Annotate on this machine (the job's engine interface: `bulk.job`).

    options (AnnotateOptions): `workers` (1 runs in this process; more spawn
        that many processes), `max_retries` (how often a broken worker pool is
        restarted), `progress`.
    """

    name = "local"

    def __init__(self, options: Any) -> None:
        self.options = options
        self.workers = options.workers or 1
        self.max_retries = options.max_retries
        self._pool: Any = None

    def start(self) -> None:
        """Nothing to start: the pool starts with the first batch."""

    def annotate(self, job: Any) -> Any:
        """The streaming driver over `run` (`stream.annotate_stream`)."""
        from .stream import annotate_stream

        return annotate_stream(self.run, job, progress=self.options.progress)

    def publish(self, job: Any) -> Dict[str, int]:
        from .stream import publish_here

        return publish_here(job)

    def run(self, batches: Iterator[Tuple[List[str], List[Any]]], spec: Spec) -> Iterator[pa.Table]:
        """Annotated tables (with `_worker`), one per input batch."""
        if self.workers <= 1:
            for ids, texts in batches:
                yield run_batch(spec, ids, texts)
            return
        yield from self._run_pool(batches, spec)

    def _new_pool(self, spec: Spec) -> ProcessPoolExecutor:
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(spec, threads),
        )
        return self._pool

    def _run_pool(self, batches: Iterator[Tuple[List[str], List[Any]]], spec: Spec) -> Iterator[pa.Table]:
        pool = self._new_pool(spec)
        pending: Dict[Future, Tuple[List[str], List[Any]]] = {}
        failures = 0
        source = iter(batches)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < 2 * self.workers:
                    batch = next(source, None)
                    if batch is None:
                        exhausted = True
                    else:
                        pending[pool.submit(run_batch, spec, *batch)] = batch
                if not pending:
                    return
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                broken = None
                for future in finished:
                    try:
                        table = future.result()
                    except BrokenProcessPool as e:
                        broken = e
                        continue
                    del pending[future]
                    yield table
                if broken is not None:
                    failures += 1
                    if failures > self.max_retries:
                        raise RuntimeError(
                            Errors.E109.format(engine=self.name, failures=failures, retries=self.max_retries, error=broken)
                        ) from broken
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = self._new_pool(spec)
                    pending = {pool.submit(run_batch, spec, *batch): batch for batch in pending.values()}
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers; a stuck one (the watchdog fired) is terminated, so
        that the interpreter's exit does not wait for it."""
        if self._pool is not None:
            processes = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                if process.is_alive():
                    process.terminate()
            self._pool = None
