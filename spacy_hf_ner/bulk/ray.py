"""The Ray engine: Ray Data `map_batches` with a callable class on a pool of
actors (the `ray` extra, `pip install '.[ray]'`, imported only here).

Each actor loads the pipeline itself, once, from a path or an installed
package (`core.load_cached`): the weights never go through Ray's object store,
so the pipeline must be at the same path (or installed) on every node. Only
the texts and the result rows travel.

The traps this module avoids:

* Ray Data bundles small blocks into one task, so one actor can get all the
  work: the input is cut into at least `BLOCKS_PER_WORKER` blocks per actor,
  and each task is one block (`batch_size` = the block's rows).
* Ray retries a crashed actor's tasks forever by default: restarts and task
  retries are capped at `max_retries`.
* Ray waits silently for resources that never come: `check_resources`
  refuses a pool that does not fit next to the CPU Ray Data's own tasks need
  (E107, with the flag to change).
* Actors are separate processes started by Ray, never forks of the driver, so
  CUDA in the driver cannot leak into them.
"""
import math
import sys
import warnings
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import Errors, SpacyHFNerError, SpacyHFNerImportError, SpacyHFNerRuntimeError
from .core import Spec
from .local import run_batch

# blocks per actor at least, so that every actor gets work
BLOCKS_PER_WORKER = 4
# CPUs kept free for Ray Data's own tasks (reading, splitting)
RESERVED_CPUS = 1.0


def check_resources(
    cpus: float, gpus: float, workers: int, cpus_per_worker: float, gpus_per_worker: float, reserve: float = RESERVED_CPUS
) -> None:
    """Refuse (E107) a pool of `workers` actors that the cluster's `cpus` and
    `gpus` cannot hold next to `reserve` CPUs for Ray Data's own tasks: Ray
    would wait for it forever."""
    if workers < 1:
        fix = f"the cluster has {cpus:g} CPUs: use --cpus-per-worker {max(cpus - reserve, 0.1):.2g} with --workers 1"
        raise SpacyHFNerError(Errors.E107.format(problem="no worker fits", fix=fix))
    if gpus_per_worker > 0 and gpus <= 0:
        raise SpacyHFNerError(
            Errors.E107.format(
                problem=f"--gpus-per-worker {gpus_per_worker:g} asks for GPUs and the cluster has none",
                fix="use --gpus-per-worker 0, or add GPU nodes",
            )
        )
    problems = []
    options = []
    need = workers * cpus_per_worker + reserve
    fit = int((cpus - reserve) // cpus_per_worker + 1e-9) if cpus > reserve else 0
    if need > cpus + 1e-9:
        problems.append(
            f"{workers} worker(s) x {cpus_per_worker:g} CPU + {reserve:g} CPU for Ray Data's own tasks "
            f"= {need:g} CPUs, and the cluster has {cpus:g}"
        )
        if cpus > reserve:
            options.append(f"--cpus-per-worker {math.floor((cpus - reserve) / workers * 100) / 100:g}")
    if gpus_per_worker > 0:
        fit = min(fit, int(gpus // gpus_per_worker + 1e-9))
        if workers * gpus_per_worker > gpus + 1e-9:
            problems.append(
                f"{workers} worker(s) x {gpus_per_worker:g} GPU = {workers * gpus_per_worker:g} GPUs, "
                f"and the cluster has {gpus:g}"
            )
            options.append(f"--gpus-per-worker {math.floor(gpus / workers * 100) / 100:g} (fractions share a GPU)")
    if problems:
        if fit >= 1:
            options.insert(0, f"--workers {fit}")
        raise SpacyHFNerError(
            Errors.E107.format(problem="; ".join(problems), fix=" or ".join(options) or "add CPUs to the cluster")
        )


def plan_workers(
    cpus: float, gpus: float, workers: Optional[int], cpus_per_worker: float, gpus_per_worker: Optional[float]
) -> Tuple[int, float]:
    """(workers, gpus per worker) with the defaults filled: one actor per GPU
    on a cluster with GPUs, else as many as the CPUs hold."""
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if gpus > 0 else 0.0
    if workers is None:
        if gpus_per_worker > 0:
            workers = max(1, int(gpus // gpus_per_worker))
        else:
            workers = int((cpus - RESERVED_CPUS) // cpus_per_worker) if cpus_per_worker > 0 else 1
    return workers, gpus_per_worker


def block_rows(n: int, workers: int, batch_size: int) -> int:
    """Rows per block: at most `batch_size`, and few enough that every actor
    gets `BLOCKS_PER_WORKER` blocks."""
    return max(1, min(batch_size, math.ceil(n / (workers * BLOCKS_PER_WORKER))))


class _Annotator:
    """The callable class of `map_batches`: loads the pipeline once per actor."""

    def __init__(self, spec: Spec) -> None:
        from .core import load_cached

        self.spec = spec
        load_cached(spec)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return run_batch(self.spec, batch.column("id").to_pylist(), batch.column("text").to_pylist())


class RayEngine:
    """Annotate on a Ray cluster (Ray Data).

    workers (Optional[int]): actors; default one per GPU, or as many as the
        CPUs hold.
    cpus_per_worker (float): CPUs each actor reserves.
    gpus_per_worker (Optional[float]): GPUs each actor reserves (fractions
        share a GPU); default 1 on a cluster with GPUs, else 0.
    address (Optional[str]): the cluster ("auto", "ray://..."); None starts
        a local Ray unless one is running in this process.
    max_retries (int): restarts of a crashed actor and retries of its task.
    batch_size (int): documents per block (fewer on a small corpus).
    init (Optional[Dict[str, Any]]): more `ray.init` arguments.
    """

    name = "ray"

    def __init__(
        self,
        workers: Optional[int] = None,
        cpus_per_worker: float = 1.0,
        gpus_per_worker: Optional[float] = None,
        address: Optional[str] = None,
        max_retries: int = 3,
        batch_size: int = 64,
        init: Optional[Dict[str, Any]] = None,
    ) -> None:
        try:
            import ray
            import ray.data  # noqa: F401
        except ImportError as e:
            raise SpacyHFNerImportError(Errors.E106.format(error=e)) from e
        self.ray = ray
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self.address = address
        self.max_retries = max_retries
        self.batch_size = batch_size
        self.init_args = dict(init or {})
        self._owned = False

    def start(self) -> Tuple[int, float]:
        """Connect (or start Ray) and check the pool fits; RETURNS (workers,
        gpus per worker)."""
        ray = self.ray
        if not ray.is_initialized():
            args: Dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            args.update(self.init_args)
            ray.init(address=self.address, **args)
            self._owned = True
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        workers, gpus_per_worker = plan_workers(cpus, gpus, self.workers, self.cpus_per_worker, self.gpus_per_worker)
        check_resources(cpus, gpus, workers, self.cpus_per_worker, gpus_per_worker)
        return workers, gpus_per_worker

    def run(self, batches: Iterator[Tuple[List[str], List[Any]]], spec: Spec) -> Iterator[pa.Table]:
        """Annotated tables (with `_worker`), one per block."""
        from ray.data import from_arrow

        workers, gpus_per_worker = self.start()
        ids: List[str] = []
        texts: List[Any] = []
        for batch_ids, batch_texts in batches:
            ids.extend(batch_ids)
            texts.extend(batch_texts)
        if not ids:
            return
        table = pa.table({"id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string())})
        delivered: set = set()
        failures = 0
        while table.num_rows:
            rows = block_rows(table.num_rows, workers, self.batch_size)
            blocks = [table.slice(start, rows) for start in range(0, table.num_rows, rows)]
            with warnings.catch_warnings():
                # Ray Data takes max_restarts / max_task_retries only as `ray_remote_args`
                # (deprecated in general, but the only way to cap its default of -1: forever)
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
                dataset = self._dataset(from_arrow(blocks), spec, workers, gpus_per_worker, rows)
            try:
                for out in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
                    delivered.update(out.column("id").to_pylist())
                    yield out
                return
            except Exception as e:
                if isinstance(e, ValueError) and str(e).startswith("[E"):
                    raise
                # Ray gave up on a block (e.g. its node was lost while its actors
                # restarted): run what was not delivered again, as a new dataset
                failures += 1
                if failures > self.max_retries:
                    raise SpacyHFNerRuntimeError(
                        Errors.E109.format(engine=self.name, failures=failures, retries=self.max_retries, error=_first_line(e))
                    ) from e
                table = table.filter(pc.invert(pc.is_in(table.column("id"), pa.array(list(delivered), pa.string()))))
                workers, gpus_per_worker = self.start()  # what is left of the cluster must still hold the pool
                print(
                    f"annotate: ray: the dataset failed ({_first_line(e)}); running the {table.num_rows} "
                    f"undelivered document(s) again (retry {failures} of {self.max_retries})",
                    file=sys.stderr,
                )

    def _dataset(self, source: Any, spec: Spec, workers: int, gpus_per_worker: float, rows: int) -> Any:
        """`map_batches` over an actor pool: one block per task, retries capped."""
        from ray.data import ActorPoolStrategy

        return source.map_batches(
            _Annotator,
            fn_constructor_kwargs={"spec": spec},
            batch_size=rows,
            batch_format="pyarrow",
            compute=ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=2),
            num_cpus=self.cpus_per_worker,
            num_gpus=gpus_per_worker,
            max_restarts=self.max_retries,
            max_task_retries=self.max_retries,
        )

    def close(self) -> None:
        if self._owned and self.ray.is_initialized():
            self.ray.shutdown()
            self._owned = False


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
