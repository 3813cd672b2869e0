"""Speed of `spacy-hf-ner annotate` per engine, side by side on one input.

Configurations, each run in a fresh process (one after the other, same input,
same pipeline, same batch size):

  local-1   the local engine in one process (torch uses every core)
  local-2   the local engine with 2 spawned worker processes (1 thread each)
  ray-1     Ray Data, 1 actor (1 CPU)
  ray-2     Ray Data, 2 actors (0.5 CPU each)

The input is the first N sentences of CoNLL-2003 English train, then dev, then
test (words joined by spaces; default 20,000 of their 20,744), fetched with
scripts/conll.py into --cache-dir.
Each configuration runs twice: on one batch and on all N, so that

    wall(N) = start-up + N / rate

gives the start-up overhead (process, imports, Ray, model loads) and the
steady rate in docs/s. Also reported: docs/s over the whole run, CPU seconds
per 1,000 docs (all processes of the run, sampled) and the peak of the summed
RSS of the run's processes (shared pages count once per process).

Ray runs inside new network and pid namespaces with only loopback (Ray
listens on all interfaces): root and `unshare` are needed; otherwise the ray
configurations are skipped (or run anyway with --ray-on-host-network).

    python -m bench.annotate_speed                       # full: N = 20,000
    python -m bench.annotate_speed --n 300 --out /tmp/annotate_quick.json   # end-to-end check
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = {
    "local-1": {"engine": "local", "workers": 1},
    "local-2": {"engine": "local", "workers": 2},
    "ray-1": {"engine": "ray", "workers": 1, "cpus_per_worker": 1.0},
    "ray-2": {"engine": "ray", "workers": 2, "cpus_per_worker": 0.5},
}
NAMESPACE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]


def child(args):
    """One job in this process; prints its report as JSON."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_worker_niceness", "0")
    config = dict(CONFIGS[args.config])
    if config["engine"] == "ray":
        import ray
        from ray.data import DataContext

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, object_store_memory=200 * 1024 * 1024)
        DataContext.get_current().enable_progress_bars = False
    import spacy_hf_ner

    out = Path(args.work) / f"{args.config}-{args.limit}.parquet"
    for stale in (out, Path(str(out) + ".parts")):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    corpus = Path(args.work) / f"corpus-{args.limit}.jsonl"
    report = spacy_hf_ner.annotate(
        corpus, out, args.pipeline, batch_size=args.batch_size, progress=False, **config
    )
    print("REPORT " + json.dumps({"documents": report.documents, "entities": report.entities, "seconds": report.seconds}))
    sys.stdout.flush()
    if config["engine"] == "ray":
        import ray

        ray.shutdown()


def measure(cmd, env):
    """Run `cmd`; wall seconds, CPU seconds and peak RSS of its process tree."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = {}
    peak = [0]

    def sample():
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            rss = 0
            for p in tree:
                try:
                    times = p.cpu_times()
                    seen[p.pid] = times.user + times.system
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], rss)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    sampler.join(timeout=2)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[-6:])} failed:\n{stderr[-3000:]}")
    report = json.loads(next(line[7:] for line in stdout.splitlines() if line.startswith("REPORT ")))
    return {"wall_s": wall, "cpu_s": sum(seen.values()), "peak_rss_mb": peak[0] / 2**20, **report}


def namespace_ok():
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    done = subprocess.run([*NAMESPACE, "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30)
    return done.returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="CoNLL sentences (default: %(default)s)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--pipeline", default="spacy-hf-ner:en_conll03")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, of: " + ", ".join(CONFIGS))
    ap.add_argument("--cache-dir", default=str(ROOT / "assets" / "conll2003"))
    ap.add_argument("--work", default=str(ROOT / "build" / "annotate_bench"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "annotate_cpu.json"))
    ap.add_argument("--ray-on-host-network", action="store_true", help="run Ray without a namespace (it listens on all interfaces)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    from scripts.conll import fetch_conll, read_conll

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    files = fetch_conll(args.cache_dir)
    sentences = [" ".join(words) for split in ("train", "valid", "test") for words, _ in read_conll(files[split])]
    if len(sentences) < args.n:
        sys.exit(f"CoNLL-2003 has {len(sentences)} sentences, fewer than --n {args.n}")
    sentences = sentences[: args.n]
    small = min(args.batch_size, args.n // 2)
    for limit in (small, args.n):
        with open(work / f"corpus-{limit}.jsonl", "w", encoding="utf8") as f:
            for i, text in enumerate(sentences[:limit]):
                f.write(json.dumps({"id": i, "text": text}) + "\n")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    isolated = namespace_ok()
    results = {}
    for name in args.configs.split(","):
        base = [sys.executable, str(Path(__file__).resolve()), "--child", "--config", name, "--work", str(work),
                "--pipeline", args.pipeline, "--batch-size", str(args.batch_size)]
        wrap = lambda cmd: cmd  # noqa: E731
        if CONFIGS[name]["engine"] == "ray":
            if isolated:
                wrap = lambda cmd: [*NAMESPACE, "sh", "-c", "ip link set lo up && exec " + " ".join(cmd)]  # noqa: E731
            elif not args.ray_on_host_network:
                results[name] = {"skipped": "no loopback-only namespace (needs root and unshare); --ray-on-host-network to run anyway"}
                print(f"{name}: skipped", flush=True)
                continue
        runs = {limit: measure(wrap([*base, "--limit", str(limit)]), env) for limit in (small, args.n)}
        full, one = runs[args.n], runs[small]
        rate = (args.n - small) / max(full["wall_s"] - one["wall_s"], 1e-9)
        results[name] = {
            **CONFIGS[name],
            "docs": args.n,
            "entities": full["entities"],
            "wall_s": round(full["wall_s"], 2),
            "job_s": round(full["seconds"], 2),
            "docs_per_s": round(args.n / full["wall_s"], 1),
            "steady_docs_per_s": round(rate, 1),
            "startup_s": round(one["wall_s"] - small / rate, 2),
            "cpu_s_per_1k_docs": round(1000 * full["cpu_s"] / args.n, 2),
            "peak_rss_mb": round(full["peak_rss_mb"]),
            "small_run": {"docs": small, "wall_s": round(one["wall_s"], 2)},
        }
        print(name, json.dumps(results[name]), flush=True)
    first = next((r for r in results.values() if "steady_docs_per_s" in r), None)
    for r in results.values():
        if first and "steady_docs_per_s" in r:
            r["steady_rate_vs_first"] = round(r["steady_docs_per_s"] / first["steady_docs_per_s"], 2)
    counts = {r["entities"] for r in results.values() if "entities" in r}
    summary = {
        "what": "spacy-hf-ner annotate: docs/s, start-up, CPU-s per 1k docs, peak RSS per engine (bench/annotate_speed.py)",
        "input": f"first {args.n} CoNLL-2003 sentences (train, dev, test in order)",
        "pipeline": args.pipeline,
        "batch_size": args.batch_size,
        "machine": {"cpus": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "platform": platform.platform(), "python": platform.python_version()},
        "same_entity_count_everywhere": len(counts) <= 1,
        "configs": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
