"""The annotation job: the same driver for every engine.

`run(options)` checks the options and what an earlier run left (`--resume`),
starts the engine (in this thread), lets it annotate into parts, publishes
OUTPUT from the parts once the engine has proved every input document is in
them exactly once, and reports on the published output.

The engine interface (`ENGINES` maps `--engine` to a class taking the
options): `start()` connects or starts what the engine runs on, in the
caller's thread; `annotate(job) -> Tally` annotates every document not yet in
`job.parts` into new parts, proves exactly-once (E110) and returns what this
run did; `publish(job) -> Dict[str, int]` merges the parts into OUTPUT and
returns its counts (`io.publish`); `close()` stops what `start` started and
leaves no process behind.
"""
import importlib
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import pyarrow as pa

from ..errors import Errors, HFNerWarning, SpacyHFNerError, Warnings
from .core import OFFSETS, Spec, describe, schema
from .io import Parts, flat_entities, output_kind, parts_dir, read_metadata, read_rows, write_table
from .options import AnnotateOptions

# --engine -> "module:class" (imported when a job runs)
ENGINES = {"local": "spacy_hf_ner.bulk.local:LocalEngine", "ray": "spacy_hf_ner.bulk.ray:RayEngine"}


@dataclass
class Job:
    """What an engine needs: the options, the output, the pipeline to run, the
    output schema and metadata, the parts folder and an earlier OUTPUT."""

    options: AnnotateOptions
    output: Path
    spec: Spec
    schema: pa.Schema
    meta: Dict[str, Any]
    parts: Parts
    earlier: List[Path]


@dataclass
class Tally:
    """What an engine did in this run."""

    annotated: int = 0
    failed: int = 0
    entities: int = 0
    resumed: int = 0
    workers: Counter = field(default_factory=Counter)
    failed_examples: List[str] = field(default_factory=list)


@dataclass
class Report:
    """What a job did, on the output that is published: `documents`,
    `entities` and `failed` count every row of OUTPUT (rows written by an
    earlier run included); `annotated`, `entities_now`, `failed_now` and the
    rate count this run (a resumed run skips `resumed` documents)."""

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
    entities_now: int = 0
    failed_now: int = 0

    @property
    def docs_per_s(self) -> float:
        return self.annotated / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> str:
        """The report as a table (printed by the command line)."""
        from wasabi import table

        def both(total: int, now: int) -> str:
            return f"{total:,}" if total == now else f"{total:,} ({now:,} in this run)"

        rows = [
            ("output", self.output),
            ("engine", f"{self.engine}, {len(self.workers)} worker process(es)"),
            ("documents", f"{self.documents:,}"),
            ("annotated now", f"{self.annotated:,}"),
            ("resumed (written before)", f"{self.resumed:,}"),
            ("entities", both(self.entities, self.entities_now)),
            ("failed documents", both(self.failed, self.failed_now)),
            ("seconds", f"{self.seconds:.1f}"),
            ("docs/s", f"{self.docs_per_s:.1f}"),
        ]
        rows += [(f"  worker {name}", f"{n:,} docs") for name, n in sorted(self.workers.items())]
        return table(rows, header=("annotate", ""), divider=True)


def run(options: AnnotateOptions) -> Report:
    """Run one job (see `AnnotateOptions` for the options)."""
    job = prepare(options)
    engine = make_engine(options)
    start = time.perf_counter()
    try:
        engine.start()  # here, not in a thread that ends (issue 28)
        tally = engine.annotate(job)
        counts = engine.publish(job)
    finally:
        engine.close()
    seconds = time.perf_counter() - start
    for file in job.parts.files():
        file.unlink()
    if job.parts.folder.is_dir():
        job.parts.folder.rmdir()
    if options.flat is not None:
        write_table(flat_entities(read_rows(job.output, job.schema)), Path(options.flat))
    if tally.failed:
        examples = "; ".join(tally.failed_examples)
        warnings.warn(Warnings.W100.format(failed=tally.failed, total=tally.annotated, examples=examples), HFNerWarning)
    return Report(
        output=str(job.output), engine=options.engine, documents=counts["rows"], annotated=tally.annotated,
        resumed=tally.resumed, entities=counts["entities"], failed=counts["failed"], seconds=seconds,
        workers=dict(tally.workers), failed_examples=tally.failed_examples, entities_now=tally.entities,
        failed_now=tally.failed,
    )


def make_engine(options: AnnotateOptions) -> Any:
    """The engine named by `options.engine` (its module imported now)."""
    module, name = ENGINES[options.engine].split(":")
    return getattr(importlib.import_module(module), name)(options)


def prepare(options: AnnotateOptions) -> Job:
    """The job of `options`: the pipeline described (without loading weights),
    E105 when an earlier run's output or parts are there without --resume,
    E112 when they came from another pipeline."""
    import spacy

    from .. import __version__

    output = Path(options.output)
    output_kind(output)
    described = describe(options.pipeline, options.code)
    spec = Spec(pipeline=options.pipeline, fields=tuple(described["fields"]), code=options.code)
    meta = {
        "model": options.pipeline,
        "config_hash": described["config_hash"],
        "spacy_hf_ner_version": __version__,
        "spacy_version": spacy.__version__,
        "offsets": OFFSETS,
        "fields": list(spec.fields),
        "input": str(options.input),
    }
    out_schema = schema(spec.fields)
    parts = Parts(parts_dir(output), out_schema, meta)
    earlier = [output] if output.exists() else []
    _check_earlier(options, output, parts, earlier, meta)
    return Job(options, output, spec, out_schema, meta, parts, earlier)


def _check_earlier(options: AnnotateOptions, output: Path, parts: Parts, earlier: List[Path], meta: Dict[str, Any]) -> None:
    if (earlier or parts.files()) and not options.resume:
        left = f" (and {len(parts.files())} part(s) of an unfinished run in '{parts.folder}')" if parts.files() else ""
        if not earlier:
            left = f": '{parts.folder}' holds {len(parts.files())} part(s) of an unfinished run"
        raise FileExistsError(Errors.E105.format(path=output, parts=left))
    for source in [*earlier, *parts.files()[:1]]:
        was = read_metadata(source)
        if was and was.get("config_hash") != meta["config_hash"]:
            raise SpacyHFNerError(
                Errors.E112.format(
                    path=output, was=was.get("model"), was_hash=was.get("config_hash"), now=options.pipeline,
                    now_hash=meta["config_hash"],
                )
            )


def check_layout(job: Job, layout: str, fix: str) -> None:
    """E118 unless an earlier output and the parts were cut as `layout` (an
    engine that resumes by part, not by id)."""
    for source in [*job.earlier, *job.parts.files()[:1]]:
        was = read_metadata(source).get("layout", "by id (--engine local)")
        if was != layout:
            raise SpacyHFNerError(Errors.E118.format(parts=source, was=was, now=layout, fix=fix))
