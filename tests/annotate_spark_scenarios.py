"""Spark scenarios for tests/test_annotate_spark.py and bench/annotate_spark.py.

Run it inside a network namespace with only loopback (Spark's driver and
block manager listen on sockets):

    unshare --net --pid --fork --mount-proc sh -c 'ip link set lo up && exec python tests/annotate_spark_scenarios.py SCENARIO ...'

Scenarios (each writes its outputs and a JSON summary, result.json, into --out):

* `engines`: one SparkSession `local[2,4]` (2 cores, a task tried 4 times),
  used by the library calls as a Databricks notebook would:
  the same corpus through the local engine and through Spark (rows compared by
  the test), record numbers as ids, `annotate_dataframe`; a corpus whose
  pipeline kills its Python worker once mid-task and has a poisoned doc, then
  `--resume` over that output with 20 more documents (library call and command
  line); a doc that hangs (E108, the finished parts kept), then `--resume`.
* `no-executor`: a standalone master with no worker: E113, not a hang.

The assertions are in the tests; this script only runs the jobs.
"""
import argparse
import json
import os
import subprocess
import time
import traceback
from pathlib import Path

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("PYSPARK_PYTHON", None)  # the engine's `session` must point the workers at this interpreter

HERE = Path(__file__).parent
FAULTS = str(HERE / "annotate_faults.py")
CONF = {
    "spark.ui.enabled": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.showConsoleProgress": "false",
}


def write_jsonl(path, texts, ids=True):
    with open(path, "w", encoding="utf8") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": f"d{i}", "text": text} if ids else {"text": text}) + "\n")
    return path


def new_session(master):
    """The session a notebook would have, made by the engine's own `session`
    (which must point the Python workers at this interpreter)."""
    from spacy_hf_ner.bulk.spark import session

    spark, _ = session(master, None, 3, CONF)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def summary(report):
    return {
        "documents": report.documents,
        "annotated": report.annotated,
        "resumed": report.resumed,
        "failed": report.failed,
        "entities": report.entities,
        "seconds": report.seconds,
        "workers": report.workers,
        "entities_now": report.entities_now,
        "failed_now": report.failed_now,
        "failed_examples": report.failed_examples,
    }


def attempt(fn):
    """{"error": message, "seconds": s} of a call that should fail."""
    start = time.perf_counter()
    try:
        fn()
    except Exception as e:  # recorded for the test to check
        return {"error": str(e), "type": type(e).__name__, "seconds": time.perf_counter() - start}
    return {"error": None, "seconds": time.perf_counter() - start}


def engines(args, out):
    import spacy_hf_ner
    from spacy_hf_ner.bulk.spark import annotate_dataframe

    texts = [line.rstrip("\n") for line in open(args.texts, encoding="utf8")]
    corpus = write_jsonl(out / "corpus.jsonl", texts)
    numbered = write_jsonl(out / "numbered.jsonl", texts[:100], ids=False)
    os.environ["ANNOTATE_CRASH_FLAG"] = str(out / "crashed")  # the Python workers inherit it
    os.environ["ANNOTATE_HANG_OFF"] = str(out / "hang_off")
    result = {"timings": {}}
    clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        result["timings"][name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    local = spacy_hf_ner.annotate(corpus, out / "local.parquet", args.model, progress=False, batch_size=16)
    result["local"] = summary(local)
    spacy_hf_ner.annotate(numbered, out / "local_numbered.parquet", args.model, progress=False)
    lap("local")
    spark = new_session("local[2,4]")
    lap("session")
    options = {"engine": "spark", "progress": False, "batch_size": 16, "checkpoint_every": 100}
    result["spark"] = summary(spacy_hf_ner.annotate(corpus, out / "spark.parquet", args.model, **options))
    lap("spark")
    spacy_hf_ner.annotate(numbered, out / "spark_numbered.jsonl", args.model, **options)
    lap("numbered")
    frame = annotate_dataframe(spark.read.json(str(corpus)), args.model, batch_size=16)
    frame.write.parquet(str(out / "dataframe.parquet"))
    lap("dataframe")
    result["faults"] = faults(args, out, texts, options)
    lap("faults")
    result["stall"] = stall(args, out, texts, options)
    lap("stall")
    result["reused_session"] = spark.sparkContext.master
    spark.stop()
    return result


def faults(args, out, texts, options):
    """A worker process killed mid-task (os._exit) and a poisoned doc."""
    import spacy_hf_ner

    all_texts, texts = texts, list(texts[:300])
    texts[7] = "POISON " + texts[7]
    texts[150] = "CRASH " + texts[150]
    corpus = write_jsonl(out / "faulty.jsonl", texts)
    report = spacy_hf_ner.annotate(corpus, out / "faulty.parquet", args.faulty, code=FAULTS, **options)
    more = write_jsonl(out / "faulty_more.jsonl", texts + all_texts[300:320])
    resumed = resume_faulty(args, out, more, options)
    return {**summary(report), "crashed": (out / "crashed").exists(), "resumed": resumed}


def resume_faulty(args, out, corpus, options):
    """`--resume` over a copy of faulty.parquet (its d7 failed) with 20 more
    documents, then the command line over that output once more (nothing left
    to do): what each reports, W100 warnings, the exit code."""
    import contextlib
    import io
    import shutil
    import warnings

    import spacy_hf_ner
    from spacy_hf_ner.__main__ import main
    from spacy_hf_ner.bulk.cli import CHILD

    target = out / "faulty_resumed.parquet"
    shutil.copytree(out / "faulty.parquet", target)
    shutil.copy(out / "faulty.parquet.meta.json", out / "faulty_resumed.parquet.meta.json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = spacy_hf_ner.annotate(corpus, target, args.faulty, code=FAULTS, resume=True, **options)
    argv = ["annotate", str(corpus), str(target), "--pipeline", args.faulty, "--code", FAULTS, "--engine", "spark",
            "--resume", "--no-progress", "--batch-size", "16"]
    printed = io.StringIO()
    os.environ[CHILD] = str(out / "cli_status")  # the job in this process, in the active session
    try:
        with contextlib.redirect_stdout(printed):
            code = main(argv)
    finally:
        del os.environ[CHILD]
    w100 = [str(w.message) for w in caught if "W100" in str(w.message)]
    return {"report": summary(report), "w100": w100, "exit_code": code, "table": printed.getvalue()}


def stall(args, out, texts, options):
    """A doc that hangs: E108 in stall_timeout, parts kept; then --resume."""
    import spacy_hf_ner

    texts = list(texts[:300])
    texts[250] = "HANG " + texts[250]
    corpus = write_jsonl(out / "hang.jsonl", texts)
    target = out / "hang.parquet"
    stalled = attempt(
        lambda: spacy_hf_ner.annotate(corpus, target, args.faulty, code=FAULTS, **{**options, "stall_timeout": 12})
    )
    parts = sorted(p.name for p in Path(str(target) + ".parts").glob("part-*.parquet"))
    refused = attempt(lambda: spacy_hf_ner.annotate(corpus, target, args.faulty, code=FAULTS, **options))
    (out / "hang_off").write_text("")
    resumed = spacy_hf_ner.annotate(corpus, target, args.faulty, code=FAULTS, resume=True, **options)
    return {"stalled": stalled, "parts_kept": parts, "without_resume": refused, "resumed": summary(resumed)}


def no_executor(args, out):
    """A standalone master without workers: the job must fail with E113."""
    import pyspark

    import spacy_hf_ner

    texts = [line.rstrip("\n") for line in open(args.texts, encoding="utf8")][:20]
    corpus = write_jsonl(out / "corpus.jsonl", texts)
    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    master = subprocess.Popen(
        [str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", "7077", "--webui-port", "0"],
        stdout=open(out / "master.log", "w"), stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(8)
        return {
            "no_executor": attempt(
                lambda: spacy_hf_ner.annotate(
                    corpus, out / "none.parquet", args.model, engine="spark", progress=False, stall_timeout=15,
                    spark_master="spark://127.0.0.1:7077", spark_conf=CONF,
                )
            )
        }
    finally:
        master.terminate()
        master.wait(30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["engines", "no-executor"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--faulty", default="")
    parser.add_argument("--texts", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = {"engines": engines, "no-executor": no_executor}[args.scenario](args, out)
    except Exception:
        result = {"error": traceback.format_exc()}
    (out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
