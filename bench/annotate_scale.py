"""Driver memory of `annotate --engine ray|spark` against corpus size.

Both engines are driverless (bulk/ray.py, bulk/spark_job.py): the driver
plans, receives one summary row per unit or part and counts, and never holds
texts or results. This script checks that claim: for each corpus size N it
runs one job in a fresh process (inside a loopback-only network and pid
namespace, as the tests do) and samples, every 0.2 s,

  driver_peak_mib   the peak RSS of the driver (the Python process that calls
                    `spacy_hf_ner.annotate`)
  jvm_peak_mib      spark only: the peak RSS of Spark's JVM, which in local
                    mode is the Spark driver and the executor in one process
                    (its heap is capped by spark.driver.memory, 1g by default)
  job_peak_mib      the peak of the summed RSS of every process of the job
                    (driver, raylet, GCS, actors / the JVM and Spark's Python
                    workers; shared pages count once per process)

The corpus is short synthetic sentences (12 words from a CoNLL-like
vocabulary, ~70 bytes) and the model is the tiny random BERT of
tests/models.py: this measures the engine, not the model.

    python -m bench.annotate_scale --n 20000 200000 --out bench/results/annotate_scale.json
    python -m bench.annotate_scale --engine spark --n 20000 200000

Spark runs `local[W]` (W = --workers) with its UI off, bound to 127.0.0.1,
otherwise with Spark's defaults.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

NAMESPACE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]
SPARK_CONF = {"spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
WORDS = "Angela Merkel met Emmanuel Macron in Paris on Monday said Reuters the bank Berlin London talks".split()


def write_corpus(path: Path, n: int) -> Path:
    rng = random.Random(0)
    with open(path, "w", encoding="utf8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(WORDS) for _ in range(12))}) + "\n")
    return path


def child(args: argparse.Namespace) -> None:
    """One job in this process (the driver); prints its figures as JSON."""
    import psutil

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_worker_niceness", "0")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    me = psutil.Process()
    peaks = {"driver": 0, "job": 0, "jvm": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total = 0
            for p in psutil.process_iter():
                try:
                    rss = p.memory_info().rss
                    total += rss
                    if p.name() == "java":
                        peaks["jvm"] = max(peaks["jvm"], rss)
                except psutil.Error:
                    pass
            peaks["driver"] = max(peaks["driver"], me.memory_info().rss)
            peaks["job"] = max(peaks["job"], total)
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    import spacy_hf_ner

    start = time.perf_counter()
    common = {"workers": args.workers, "batch_size": 64, "checkpoint_every": args.checkpoint_every, "progress": False}
    if args.engine == "spark":
        engine = {"engine": "spark", "spark_conf": SPARK_CONF}
    else:
        ray_init = {"num_cpus": 2, "include_dashboard": False, "object_store_memory": 300 * 1024 * 1024}
        engine = {"engine": "ray", "cpus_per_worker": args.cpus_per_worker, "ray_init": ray_init}
    report = spacy_hf_ner.annotate(args.corpus, args.output, args.model, **common, **engine)
    stop.set()
    thread.join()
    mib = 1024 * 1024
    figures = {
        "engine": args.engine, "n": report.documents, "seconds": round(time.perf_counter() - start, 1),
        "docs_per_s": round(report.docs_per_s, 1), "driver_peak_mib": round(peaks["driver"] / mib, 1),
        "job_peak_mib": round(peaks["job"] / mib, 1),
    }
    if args.engine == "spark":
        figures["jvm_peak_mib"] = round(peaks["jvm"] / mib, 1)
    print("RESULT " + json.dumps(figures))
    sys.stdout.flush()
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["ray", "spark"], default="ray")
    parser.add_argument("--n", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    parser.add_argument("--work", default="/tmp/annotate_scale")
    parser.add_argument("--out", default=None, help="write the results here (JSON)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--checkpoint-every", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    from tests.models import build_token_classifier

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = work / "tiny_ner"
    if not (model / "config.json").is_file():
        build_token_classifier(model)
    results = []
    for n in args.n:
        corpus = write_corpus(work / f"corpus-{n}.jsonl", n)
        output = work / f"out-{args.engine}-{n}.parquet"
        for old in (output, Path(f"{output}.parts")):  # spark: folders of parts
            shutil.rmtree(old, ignore_errors=True)
            old.unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "bench.annotate_scale", "--child", "--engine", args.engine, "--corpus", str(corpus), "--output", str(output),
            "--model", str(model), "--workers", str(args.workers), "--cpus-per-worker", str(args.cpus_per_worker),
            "--checkpoint-every", str(args.checkpoint_every),
        ]
        script = "ip link set lo up && exec " + " ".join(f"'{c}'" for c in cmd)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run([*NAMESPACE, "sh", "-c", script], capture_output=True, text=True, timeout=args.timeout, env=env)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"n={n}: failed (status {done.returncode})\n{done.stderr[-3000:]}", file=sys.stderr)
            break
        results.append(json.loads(line[len("RESULT "):]))
        print(json.dumps(results[-1]), flush=True)
    if args.out:
        write_results(Path(args.out), args.engine, {"command": " ".join(sys.argv), "results": results})


def write_results(path: Path, engine: str, figures: dict) -> None:
    """The Ray figures at the top of the file, Spark's under "spark" (the
    other engine's figures are kept)."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    if engine == "ray":
        data.update(figures)
    else:
        data[engine] = figures
    path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
