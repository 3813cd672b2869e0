"""The Ray engine, driverless: workers read the input, annotate it on a pool
of actors and write the output parts themselves (the `ray` extra, `pip
install '.[ray]'`, imported only here).

The driver plans units from the input's listing and metadata
(`units.plan`), runs them through Ray Data `map_batches` on an actor pool
(one unit per task), and receives one small summary row per unit (counts, the
worker's name, a few failed ids): it never holds texts or results. Before
OUTPUT is published, exactly-once is proved on the cluster: every unit has its
part, and a distributed group-by over the input ids (read again by workers)
and the output ids finds no id missing, extra or repeated (E110/E103); the
driver receives the counts and at most three examples. `--resume` skips the
units whose part exists. OUTPUT is merged from the parts by a task on the
driver's node.

Each actor loads the pipeline itself, once (`core.load_cached`): the weights
never go through Ray's object store, so the pipeline must be at the same path
(or installed) on every node; so must the output folder (shared storage).

The traps this module avoids:

* Ray ties the processes `ray.init` starts to the thread that started them
  (PR_SET_PDEATHSIG): `start` runs in the job's own thread (issue 28), and
  `close` waits until every process it started has ended.
* Ray Data bundles small inputs into one task, so one actor can get all the
  work: the input is cut into at least `BLOCKS_PER_WORKER` units per actor.
* Ray retries a crashed actor's tasks forever by default: restarts and task
  retries are capped at `max_retries`; a dataset Ray gives up on (a lost node)
  is run again on the units without a part, and the parts written whose
  summaries went with it are counted from the parts (`_count_parts`).
* Ray waits silently for resources that never come: `check_resources`
  refuses a pool that does not fit next to the CPU Ray Data's own tasks need
  (E107, with the flag to change).
"""
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Sequence, Set, Tuple

import pyarrow as pa

from ..errors import Errors, SpacyHFNerError, SpacyHFNerImportError, SpacyHFNerRuntimeError
from .core import Spec, annotate_batch, load_cached, worker_name
from .io import Parts, publish
from .pool import BLOCKS_PER_WORKER, RESERVED_CPUS, check_resources, plan_workers, unit_rows  # noqa: F401
from .units import Source, Unit, count_unit, plan, read_unit, signature, with_counts

# one row per finished unit: what the driver receives
SUMMARY = pa.schema(
    [("unit", pa.int64()), ("rows", pa.int64()), ("failed", pa.int64()), ("entities", pa.int64()),
     ("worker", pa.string()), ("examples", pa.string())]
)


class _Annotator:
    """The callable class of `map_batches`: loads the pipeline once per actor;
    each call reads its units, annotates them and writes their parts."""

    def __init__(self, spec: Spec, source: Source, parts: Parts, batch_size: int) -> None:
        self.spec, self.source, self.parts, self.batch_size = spec, source, parts, batch_size
        load_cached(spec)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return pa.Table.from_pylist([self._unit(Unit(**row)) for row in batch.to_pylist()], schema=SUMMARY)

    def _unit(self, unit: Unit) -> Dict[str, Any]:
        ids, texts = read_unit(self.source, unit)
        if unit.rows >= 0 and len(ids) != unit.rows:
            raise RuntimeError(f"unit {unit.number} of '{unit.path}' has {len(ids)} records, the plan {unit.rows}")
        nlp, size = load_cached(self.spec), self.batch_size
        tables = [annotate_batch(nlp, ids[i: i + size], texts[i: i + size], self.spec.fields) for i in range(0, len(ids), size)]
        table = pa.concat_tables(tables) if tables else self.parts.schema.empty_table()
        self.parts.write(table, number=unit.number)
        return _summary(unit.number, table, worker_name())


def _summary(unit: int, table: pa.Table, worker: str) -> Dict[str, Any]:
    """A unit's SUMMARY row from its annotated table (its part's rows)."""
    errors = table.column("error")
    examples = [f"{i!r}: {e}" for i, e in zip(table.column("id").to_pylist(), errors.to_pylist()) if e is not None]
    entities = sum(len(e or ()) for e in table.column("entities").to_pylist())
    return {"unit": unit, "rows": table.num_rows, "failed": table.num_rows - errors.null_count,
            "entities": entities, "worker": worker, "examples": json.dumps(examples[:3])}


def _part_summaries(batch: pa.Table) -> pa.Table:
    """The SUMMARY rows of parts read again (`unit`, `path`): parts a worker
    wrote whose summary never reached the driver (its node went). No worker
    is named: the one that wrote them is gone."""
    import pyarrow.parquet as pq

    rows = [_summary(r["unit"], pq.read_table(r["path"], columns=["id", "error", "entities"]), "") for r in batch.to_pylist()]
    return pa.Table.from_pylist(rows, schema=SUMMARY)


def _ids(batch: pa.Table, source: Source, side: int) -> pa.Table:
    """The ids of units (side 1: input, read again) as (id, side) rows."""
    ids = [i for row in batch.to_pylist() for i in read_unit(source, Unit(**row))[0]]
    return pa.table({"id": pa.array(ids, pa.string()), "side": pa.array([side] * len(ids), pa.int64())})


def _part_ids(batch: pa.Table) -> pa.Table:
    """The ids of parts (side 0: output) as (id, side) rows."""
    import pyarrow.parquet as pq

    ids = pa.concat_arrays([pq.read_table(p, columns=["id"]).column("id").combine_chunks() for p in batch.column("path").to_pylist()])
    return pa.table({"id": ids.cast(pa.string()), "side": pa.array([0] * len(ids), pa.int64())})


def _problems(batch: pa.Table) -> pa.Table:
    """Group rows whose id is not exactly once in the input and once in the
    output."""
    import pyarrow.compute as pc

    n, inputs = batch.column("count()"), batch.column("sum(side)")
    good = pc.and_(pc.equal(n, 2), pc.equal(inputs, 1))
    return batch.filter(pc.invert(good))


def _publish(sources: List[str], output: str, schema: pa.Schema, meta: Dict[str, Any]) -> Dict[str, int]:
    return publish([Path(s) for s in sources], Path(output), schema, meta, unique=True)


class RayEngine:
    """Annotate on a Ray cluster, driverless (the job's engine interface:
    `bulk.job`).

    options (AnnotateOptions): workers, cpus_per_worker, gpus_per_worker,
        ray_address (None starts Ray here unless this process already did),
        max_retries, batch_size, checkpoint_every (records per unit at most),
        stall_timeout, progress, ray_init.
    """

    name = "ray"

    def __init__(self, options: Any) -> None:
        try:
            import ray
            import ray.data  # noqa: F401
        except ImportError as e:
            raise SpacyHFNerImportError(Errors.E106.format(error=e)) from e
        self.ray, self.options = ray, options
        self._owned = False
        self._before: set = set()
        self.pool: Tuple[int, float] = (1, 0.0)

    def start(self) -> Tuple[int, float]:
        """Connect (or start Ray) and check the pool fits; RETURNS (workers,
        gpus per worker).

        Call it first from the thread that will call `close`, never from a
        short-lived one: Ray ties the processes `ray.init` starts (raylet, GCS,
        their agents) to the *thread* that started them (PR_SET_PDEATHSIG), and
        kills them when that thread ends - the driver then dies with status 1
        and no message (issue 28)."""
        ray, o = self.ray, self.options
        if not ray.is_initialized():
            args: Dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            args.update(o.ray_init or {})
            self._before = _descendants()
            ray.init(address=o.ray_address, **args)
            self._owned = True
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        workers, gpus_per_worker = plan_workers(cpus, gpus, o.workers, o.cpus_per_worker, o.gpus_per_worker)
        check_resources(cpus, gpus, workers, o.cpus_per_worker, gpus_per_worker)
        self.pool = (workers, gpus_per_worker)
        return self.pool

    def annotate(self, job: Any) -> Any:
        """Annotate every unit without a part, prove exactly-once; RETURNS this
        run's Tally."""
        from .job import Tally, check_layout

        o = self.options
        source, units = plan(o.input, o.text_key, o.id_key, lambda n: unit_rows(n, self.pool[0], o.checkpoint_every))
        if source.id_column is None and any(u.rows < 0 for u in units):
            units = with_counts(units, self._map_units(units, lambda b: _counts(b, source)))
        layout = signature(source, units)
        check_layout(job, layout, f"--checkpoint-every {o.checkpoint_every}, --engine ray, the same input")
        job.meta["layout"] = layout
        job.parts = Parts(job.parts.folder, job.schema, job.meta)
        done = {Parts.number_of(f) for f in job.parts.files()}
        if job.earlier and not done:  # a finished output: every unit is in it
            done = {u.number for u in units}
        tally = Tally(resumed=_rows([f for f in job.parts.files() if Parts.number_of(f) in done]))
        if job.earlier and not job.parts.files():
            tally.resumed = _rows(job.earlier)
        self._run(job, source, [u for u in units if u.number not in done], tally)
        self._prove(job, source, units)
        return tally

    def _run(self, job: Any, source: Source, todo: List[Unit], tally: Any) -> None:
        """Run the units through the actor pool until each has its part."""
        from .stream import _watched

        failures, counted = 0, set()  # counted: units whose summaries reached the driver
        while todo:
            dataset = self._dataset(job, source, todo)
            try:
                rows = _watched(dataset.iter_batches(batch_format="pyarrow", batch_size=None), self.options.stall_timeout,
                                self.name, lambda: tally.annotated, None)
                for summary in rows:
                    counted |= _tally(tally, summary)
                    self._progress(tally, len(todo))
                return
            except Exception as e:
                if isinstance(e, TimeoutError):  # the watchdog (E108): stop, not retry
                    raise
                _raise_ours(e)
                failures += 1
                if failures > self.options.max_retries:
                    raise SpacyHFNerRuntimeError(
                        Errors.E109.format(engine=self.name, failures=failures, retries=self.options.max_retries, error=_first_line(e))
                    ) from e
                written = {Parts.number_of(f): f for f in job.parts.files()}
                unseen = {n: written[n] for n in {u.number for u in todo} & set(written) - counted}
                if unseen:  # written, but their summaries were lost with the failure
                    counted |= self._count_parts(unseen, tally)
                todo = [u for u in todo if u.number not in written]
                self.start()  # what is left of the cluster must still hold the pool
                print(f"annotate: ray: the dataset failed ({_first_line(e)}); running the {len(todo)} unit(s) "
                      f"without a part again (retry {failures} of {self.options.max_retries})", file=sys.stderr)

    def _count_parts(self, parts: Dict[int, Path], tally: Any) -> Set[int]:
        """Tally parts whose summaries were lost, reading them again in tasks
        of no CPU (the failed dataset's actors may still hold every CPU),
        under the watchdog; RETURNS their unit numbers."""
        from ray.data import from_items

        from .stream import _watched

        items = [{"unit": n, "path": str(p)} for n, p in sorted(parts.items())]
        summaries = from_items(items, override_num_blocks=len(items)).map_batches(
            _part_summaries, batch_format="pyarrow", num_cpus=0
        )
        batches = iter(summaries.iter_batches(batch_format="pyarrow", batch_size=None))
        for summary in _watched(batches, self.options.stall_timeout, self.name, lambda: tally.annotated, None):
            _tally(tally, summary)
        return set(parts)

    def _dataset(self, job: Any, source: Source, todo: Sequence[Unit]) -> Any:
        """`map_batches` over an actor pool: one unit per task, retries capped."""
        from ray.data import ActorPoolStrategy, from_items

        workers, gpus_per_worker = self.pool
        with warnings.catch_warnings():
            # Ray Data takes max_restarts / max_task_retries only as `ray_remote_args`
            # (deprecated in general, but the only way to cap its default of -1: forever)
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
            return from_items([u.__dict__ for u in todo], override_num_blocks=len(todo)).map_batches(
                _Annotator,
                fn_constructor_kwargs={"spec": job.spec, "source": source, "parts": job.parts, "batch_size": self.options.batch_size},
                batch_size=1,
                batch_format="pyarrow",
                compute=ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=2),
                num_cpus=self.options.cpus_per_worker,
                num_gpus=gpus_per_worker,
                max_restarts=self.options.max_retries,
                max_task_retries=self.options.max_retries,
            )

    def _map_units(self, units: Sequence[Unit], fn: Any) -> List[int]:
        """fn over the units on the cluster (tasks); one int per unit, in order."""
        from ray.data import from_items

        out = from_items([u.__dict__ for u in units], override_num_blocks=len(units)).map_batches(fn, batch_format="pyarrow")
        pairs = sorted((r["unit"], r["n"]) for r in out.take_all())
        return [n for _, n in pairs]

    def _prove(self, job: Any, source: Source, units: Sequence[Unit]) -> None:
        """E110 unless each unit has its part and every input id is in the parts
        exactly once (a group-by on the cluster); E103 for a repeated input id."""
        from ray.data import from_items
        from ray.data.aggregate import Count, Sum

        files = job.parts.files()
        missing_parts = {u.number for u in units} - {Parts.number_of(f) for f in files}
        inputs = from_items([u.__dict__ for u in units], override_num_blocks=len(units)).map_batches(
            _ids, fn_kwargs={"source": source, "side": 1}, batch_format="pyarrow"  # type: ignore[arg-type]  # Ray's stub: a batch-only callable (fn_kwargs pass the rest)
        )
        outputs = from_items([{"path": str(f)} for f in files], override_num_blocks=max(1, len(files))).map_batches(
            _part_ids, batch_format="pyarrow"
        )
        partitions = max(1, min(len(units), self.pool[0] * 2))
        bad = inputs.union(outputs).groupby("id", num_partitions=partitions).aggregate(Count(), Sum("side")).map_batches(_problems, batch_format="pyarrow")
        bad = bad.materialize()
        rows = bad.take(3)
        repeated = [r["id"] for r in rows if r["sum(side)"] > 1]
        if repeated:
            raise SpacyHFNerError(Errors.E103.format(path=source.uri, id=repeated[0], row="?", key=source.id_column or "id"))
        n_bad = bad.count()
        if n_bad or missing_parts:
            missing = sum(1 for r in rows if r["sum(side)"] == 1)
            examples = ", ".join(repr(r["id"]) for r in rows) or f"units {sorted(missing_parts)[:3]} have no part"
            raise SpacyHFNerRuntimeError(Errors.E110.format(missing=missing, extra=n_bad - missing, examples=examples, path=job.output))

    def publish(self, job: Any) -> Dict[str, int]:
        """Merge the parts into OUTPUT in a task on this node (the driver never
        reads the rows); RETURNS the output's counts."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        sources = [str(f) for f in job.parts.files()] or [str(p) for p in job.earlier]
        task = ray.remote(num_cpus=0, scheduling_strategy=here)(_publish)
        return ray.get(task.remote(sources, str(job.output), job.schema, job.meta))

    def _progress(self, tally: Any, units: int) -> None:
        now = time.monotonic()
        if self.options.progress and now - getattr(self, "_shown", 0.0) > 10:
            self._shown = now
            print(f"annotate: ray: {tally.annotated:,} documents annotated ({tally.failed:,} failed)", file=sys.stderr)

    def close(self) -> None:
        """Stop the Ray this engine started (if any) and wait until every
        process it started is gone: `ray.shutdown` returns while actors and
        agents still run, orphaned."""
        if self._owned and self.ray.is_initialized():
            import psutil

            started = [p for p in _processes() if p.pid not in self._before]
            self.ray.shutdown()
            self._owned = False
            _, alive = psutil.wait_procs(started, timeout=10)
            for process in alive:
                try:
                    process.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(alive, timeout=5)


def _counts(batch: pa.Table, source: Source) -> pa.Table:
    rows = batch.to_pylist()
    return pa.table({"unit": [r["number"] for r in rows], "n": [count_unit(source, Unit(**r)) for r in rows]})


def _rows(files: Sequence[Path]) -> int:
    """The rows of outputs and parts (Parquet: from their footers)."""
    import pyarrow.parquet as pq

    from .io import output_kind

    def rows(f: Path) -> int:
        if output_kind(f) == "parquet":
            return pq.read_metadata(f).num_rows
        with open(f, "rb") as lines:
            return sum(1 for line in lines if line.strip())

    return sum(rows(Path(f)) for f in files)


def _tally(tally: Any, summary: pa.Table) -> Set[int]:
    """Add SUMMARY rows to `tally`; RETURNS their unit numbers."""
    units = set()
    for row in summary.to_pylist():
        units.add(row["unit"])
        tally.annotated += row["rows"]
        tally.failed += row["failed"]
        tally.entities += row["entities"]
        if row["worker"]:
            tally.workers[row["worker"]] += row["rows"]
        tally.failed_examples += json.loads(row["examples"])[: 3 - len(tally.failed_examples)]
    return units


def _raise_ours(error: BaseException) -> None:
    """Raise this package's own error (a coded one) found in the chain of a
    Ray error: it is the user's to fix, not a failure to retry."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, SpacyHFNerError) or (isinstance(error, ValueError) and str(error).startswith("[E")):
            message = str(error)
            start = message.find("[E")
            raise SpacyHFNerError(message[start:].splitlines()[0] if start >= 0 else message) from None
        error = getattr(error, "cause", None) or error.__cause__  # type: ignore[assignment]  # Ray's errors keep theirs in `cause` (untyped)
        seen += 1


def _processes() -> List[Any]:
    """This process's descendants (psutil processes)."""
    import psutil

    return psutil.Process().children(recursive=True)


def _descendants() -> set:
    return {p.pid for p in _processes()}


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
