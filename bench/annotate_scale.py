"""Driver memory against corpus size: peak RSS of the driver's Python process
(and of the whole job) for growing corpora, per engine.

The corpus is CoNLL-2003 sentences repeated to N documents (ids unique); the
pipeline is a tiny random BERT token classifier (tests/models.py), so the
model costs little and the engine's own costs show. Each (engine, N) runs in
a fresh process through bench/annotate_speed.py's child mode (Ray and Spark
in a loopback-only namespace).

    python -m bench.annotate_scale --n 20000,200000 --configs spark-2
    python -m bench.annotate_scale --n 20000,200000,1000000 --configs spark-2,ray-2   # long

Target (issue 25): the driver's peak RSS grows < 10% from 200k to 1M documents.
"""
import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    from bench.annotate_speed import CONFIGS, NAMESPACE, measure, namespace_ok
    from scripts.conll import fetch_conll, read_conll
    from tests.models import build_token_classifier

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="20000,200000", help="comma-separated corpus sizes")
    ap.add_argument("--configs", default="spark-2", help="comma-separated, of: " + ", ".join(CONFIGS))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--cache-dir", default=str(ROOT / "assets" / "conll2003"))
    ap.add_argument("--work", default=str(ROOT / "build" / "annotate_scale"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "annotate_scale.json"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = build_token_classifier(work / "tiny_model")
    files = fetch_conll(args.cache_dir)
    sentences = [" ".join(words) for words, _ in read_conll(files["train"])]
    sizes = [int(n) for n in args.n.split(",")]
    for n in sizes:
        with open(work / f"corpus-{n}.jsonl", "w", encoding="utf8") as f:
            for i in range(n):
                f.write(json.dumps({"id": i, "text": sentences[i % len(sentences)]}) + "\n")
    isolated = namespace_ok()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    results = {}
    for name in args.configs.split(","):
        results[name] = {}
        for n in sizes:
            cmd = [sys.executable, str(ROOT / "bench" / "annotate_speed.py"), "--child", "--config", name, "--work", str(work),
                   "--pipeline", str(model), "--batch-size", str(args.batch_size), "--limit", str(n)]
            if CONFIGS[name]["engine"] in ("ray", "spark"):
                if not isolated:
                    sys.exit("Ray and Spark need a loopback-only namespace (root and unshare)")
                cmd = [*NAMESPACE, "sh", "-c", "ip link set lo up && exec " + " ".join(cmd)]
            run = measure(cmd, env)
            results[name][n] = {
                "wall_s": round(run["wall_s"], 1),
                "docs_per_s": round(n / run["wall_s"], 1),
                "driver_python_rss_mb": round(run["driver_rss_mb"]),
                "job_peak_rss_mb": round(run["peak_rss_mb"]),
            }
            print(name, n, json.dumps(results[name][n]), flush=True)
        first, last = results[name][sizes[0]], results[name][sizes[-1]]
        results[name]["driver_rss_growth"] = round(last["driver_python_rss_mb"] / max(first["driver_python_rss_mb"], 1) - 1, 3)
    summary = {
        "what": "driver's peak RSS against corpus size (bench/annotate_scale.py)",
        "corpus": "CoNLL-2003 train sentences repeated, unique ids",
        "pipeline": "tiny random BERT token classifier (tests/models.py)",
        "machine": {"cpus": os.cpu_count()},
        "configs": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
