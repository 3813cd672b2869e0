"""Bulk and distributed annotation: a corpus in, one output row per document.

    import spacy_hf_ner
    report = spacy_hf_ner.annotate("corpus.jsonl", "out.parquet")
    print(report.table())

Modules: `core` (the batch function and the per-worker pipeline cache), `io`
(readers and writers), `local`, `ray` and `spark` (the engines), `job` (the
driver: resume, checks, watchdog), `spark_job` (the Spark engine's driver). Nothing heavy is imported until a job runs.
"""
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ..ty import Engine

DEFAULT_PIPELINE = "spacy-hf-ner:en_conll03"


def annotate(
    input: Union[str, Path],
    output: Union[str, Path],
    pipeline: str = DEFAULT_PIPELINE,
    *,
    engine: Engine = "local",
    workers: Optional[int] = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: Optional[float] = None,
    batch_size: int = 64,
    resume: bool = False,
    text_key: str = "text",
    id_key: Optional[str] = None,
    code: Optional[str] = None,
    max_retries: int = 3,
    stall_timeout: float = 600.0,
    checkpoint_every: int = 10_000,
    flat: Optional[Union[str, Path]] = None,
    progress: bool = True,
    ray_address: Optional[str] = None,
    ray_init: Optional[Dict[str, Any]] = None,
    spark_master: Optional[str] = None,
    spark_conf: Optional[Dict[str, str]] = None,
) -> Any:
    """Annotate a corpus with a pipeline: every input document becomes exactly
    one output row (id, entities, cats/tags when the pipeline assigns them,
    error), on this machine or on a Ray cluster, with the same rows either way.

    input (Union[str, Path]): .jsonl, .parquet, .csv, or a folder of .txt files.
    output (Union[str, Path]): .parquet or .jsonl.
    pipeline (str): a spaCy pipeline folder or installed package, or a
        transformers classifier (hub id, folder, `spacy-hf-ner:NAME`); it must
        be at the same path, or installed, wherever a worker runs.
    engine (str): "local" (this machine), "ray" (Ray Data; extra [ray]) or
        "spark" (extra [spark]; OUTPUT is then a folder of parts).
    workers (Optional[int]): local: processes (spawned, default 1 = this
        process); ray: actors (default one per GPU, else as many as the CPUs
        hold next to one CPU for Ray Data); spark: N of the default master
        `local[N]` (default: the CPUs).
    cpus_per_worker (float): ray: CPUs each actor reserves.
    gpus_per_worker (Optional[float]): ray: GPUs each actor reserves; default
        1 on a cluster with GPUs; fractions share a GPU.
    batch_size (int): documents per batch (the unit of work and of fallback).
    resume (bool): keep what an earlier run wrote and annotate only the rest.
    text_key (str): the input column holding the text.
    id_key (Optional[str]): the column holding ids; None: "id" if present,
        else the record number; "": always the record number.
    code (Optional[str]): a Python file to import first, in every worker
        (custom components), as `spacy apply --code`.
    max_retries (int): restarts of crashed workers (and retries of their batch).
    stall_timeout (float): seconds without a finished batch (spark: task, one
        part of at most `checkpoint_every` documents) before the job is
        stopped (E108; spark: E113 when no executor runs), instead of hanging.
    checkpoint_every (int): documents per written part (what a killed run
        loses at most).
    flat (Optional[Union[str, Path]]): also write one row per entity here.
    progress (bool): local, spark: show a progress bar (ray shows its own).
    ray_address (Optional[str]): the Ray cluster; None starts Ray locally
        unless this process already called `ray.init`.
    ray_init (Optional[Dict[str, Any]]): more `ray.init` arguments.
    spark_master (Optional[str]): spark: the master of the session the job
        starts (default `local[workers,max_retries+1]`); inside an active
        SparkSession (Databricks) that session is used and this is ignored.
    spark_conf (Optional[Dict[str, str]]): spark: more settings of the
        session the job starts.
    RETURNS (Report): documents, entities, failed documents, docs/s, per worker;
        `report.table()` formats it.
    """
    from .job import run

    return run(
        input,
        output,
        pipeline,
        engine=engine,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
        batch_size=batch_size,
        resume=resume,
        text_key=text_key,
        id_key=id_key,
        code=code,
        max_retries=max_retries,
        stall_timeout=stall_timeout,
        checkpoint_every=checkpoint_every,
        flat=flat,
        progress=progress,
        ray_address=ray_address,
        ray_init=ray_init,
        spark_master=spark_master,
        spark_conf=spark_conf,
    )
