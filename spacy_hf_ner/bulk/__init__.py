"""Bulk and distributed annotation: a corpus in, one output row per document.

    import spacy_hf_ner
    report = spacy_hf_ner.annotate("corpus.jsonl", "out.parquet")
    print(report.table())

Modules: `core` (the batch function and the per-worker pipeline cache), `io`
(readers and writers), `local` and `ray` (the engines), `job` (the driver:
resume, checks, watchdog). Nothing heavy is imported until a job runs.
"""
from pathlib import Path
from typing import Any, Union

DEFAULT_PIPELINE = "spacy-hf-ner:en_conll03"


def annotate(input: Union[str, Path], output: Union[str, Path], pipeline: str = DEFAULT_PIPELINE, **options: Any) -> Any:
    """Annotate a corpus with a pipeline: every input document becomes exactly
    one output row (id, entities, cats/tags when the pipeline assigns them,
    error), on this machine or on a Ray cluster, with the same rows either way.

    input (Union[str, Path]): .jsonl, .parquet, .csv, or a folder of .txt files
        (Ray: also a folder of .jsonl/.parquet files, on any filesystem pyarrow
        or fsspec opens).
    output (Union[str, Path]): .parquet or .jsonl.
    pipeline (str): a spaCy pipeline folder or installed package, or a
        transformers classifier (hub id, folder, `spacy-hf-ner:NAME`); it must
        be at the same path, or installed, wherever a worker runs.
    **options: the other fields of `AnnotateOptions` (bulk/options.py; the
        command line's flags): engine, workers, cpus_per_worker,
        gpus_per_worker, batch_size, resume, text_key, id_key, code,
        max_retries, stall_timeout, checkpoint_every, flat, progress,
        ray_address, ray_init. Each is checked once (E111).
    RETURNS (Report): on the published output: documents, entities, failed
        documents (an earlier run's included), and this run's documents,
        entities, failures, docs/s, per worker; `report.table()` formats it.
    """
    from .job import run
    from .options import AnnotateOptions

    return run(AnnotateOptions.build(input=input, output=output, pipeline=pipeline, **options))
