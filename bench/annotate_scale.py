"""Driver memory of `annotate --engine ray` against corpus size.

The Ray engine is driverless (bulk/ray.py): the driver plans units from file
metadata, receives one summary row per unit and counts, and never holds texts
or results. This script checks that claim: for each corpus size N it runs one
job in a fresh process (inside a loopback-only network and pid namespace, as
the tests do) and samples, every 0.2 s,

  driver_peak_mib   the peak RSS of the driver process
  job_peak_mib      the peak of the summed RSS of every process of the job
                    (driver, raylet, GCS, actors; shared pages count once per
                    process)

The corpus is short synthetic sentences (12 words from a CoNLL-like
vocabulary, ~70 bytes) and the model is the tiny random BERT of
tests/models.py: this measures the engine, not the model.

    python -m bench.annotate_scale --n 20000 200000 --out bench/results/annotate_scale.json
"""
import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

NAMESPACE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]
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
    me = psutil.Process()
    peaks = {"driver": 0, "job": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total = 0
            for p in psutil.process_iter():
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peaks["driver"] = max(peaks["driver"], me.memory_info().rss)
            peaks["job"] = max(peaks["job"], total)
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    import spacy_hf_ner

    start = time.perf_counter()
    report = spacy_hf_ner.annotate(
        args.corpus, args.output, args.model, engine="ray", workers=args.workers, cpus_per_worker=args.cpus_per_worker,
        batch_size=64, checkpoint_every=args.checkpoint_every, progress=False,
        ray_init={"num_cpus": 2, "include_dashboard": False, "object_store_memory": 300 * 1024 * 1024},
    )
    stop.set()
    thread.join()
    mib = 1024 * 1024
    print("RESULT " + json.dumps({
        "n": report.documents, "seconds": round(time.perf_counter() - start, 1), "docs_per_s": round(report.docs_per_s, 1),
        "driver_peak_mib": round(peaks["driver"] / mib, 1), "job_peak_mib": round(peaks["job"] / mib, 1),
    }))
    sys.stdout.flush()
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
        output = work / f"out-{n}.parquet"
        output.unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "bench.annotate_scale", "--child", "--corpus", str(corpus), "--output", str(output),
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
        Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
