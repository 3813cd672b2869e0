"""int8 settings of the ONNX export side by side: agreement with torch float32
through hf_ner, file size, and speed, in one process.

The float32 export is made once (`spacy-hf-ner export-onnx`'s own functions),
then each `--modes` setting of `--int8-mode` quantizes it. For the float32 file
and each int8 file:

* entity-level F1 of hf_ner with backend "onnx" against backend "torch"
  (float32) on `--texts` varied texts (the export's check: words "spacy" with
  aggregation "first", words "model" with "simple"; all entities, in
  doc.spans), the largest score difference of entities both find, and how
  many texts differ;
* the largest logit difference, and the file size;
* raw speed: the same texts as length-sorted padded batches through torch
  float32 and each file (bench/onnx_speed.py's runners), taking turns for
  `--rounds` rounds; the ratio of medians to torch float32.

    OMP_NUM_THREADS=1 python -m bench.onnx_int8 --out bench/results/onnx_int8.json

On the shared 2-core machine the defaults (300 texts, 3 rounds, 1 thread) take
about 10 minutes; speed ratios there vary by about 25% between runs.

Threads: torch and ONNX Runtime both get `--threads` intra-op threads.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List

from bench.onnx_speed import onnx_raw, take_turns, torch_raw  # noqa: E402


def main() -> None:
    from spacy_hf_ner.backends import export_onnx as ex, quantize
    from spacy_hf_ner.backends.agreement import varied_texts

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="spacy-hf-ner:en_conll03", help="model to export (default: %(default)s)")
    ap.add_argument("--modes", default=",".join(quantize.INT8_MODES), help="comma-separated --int8-mode values")
    ap.add_argument("--texts", type=int, default=ex.CHECK_TEXTS, help="varied texts (default: %(default)s)")
    ap.add_argument("--speed-texts", type=int, default=0, help="time on the first N texts only (0: all)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, help="where the exports go (default: a temporary folder)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="onnx_int8_"))
    source = ex.resolve_source(args.model)
    model, tokenizer = ex.load_torch(source)
    fp32 = workdir / ex.FP32_FILE
    print(f"exporting {args.model} to {fp32}", file=sys.stderr, flush=True)
    ex.export(model, tokenizer, fp32, source.task)
    ex.save_config_and_tokenizer(model, tokenizer, workdir)
    files = {"float32": ex.FP32_FILE}
    for mode in args.modes.split(","):
        rel = f"onnx/model_int8_{mode}.onnx"
        print(f"quantizing: {mode}", file=sys.stderr, flush=True)
        quantize.quantize_int8(fp32, workdir / rel, mode)  # type: ignore[arg-type]
        files[mode] = rel

    texts = varied_texts(args.texts)
    rows = {(rel, run): a for rel, run, a in ex.check_agreement(source, workdir, list(files.values()), texts)}
    diffs = ex.logit_diffs(model, tokenizer, [workdir / rel for rel in files.values()], texts)
    results: Dict[str, Any] = {}
    for (name, rel), diff in zip(files.items(), diffs):
        results[name] = {
            "file": rel,
            "mib": round((workdir / rel).stat().st_size / 2**20, 1),
            "max_logit_diff": float(f"{diff:.3g}"),
            **{
                run: {
                    "f1": round(a.f1, 4),
                    "max_score_diff": round(a.max_score_diff, 4),
                    "texts_differing": a.texts_differing,
                    "entities_torch_onnx": [a.want, a.got],
                }
                for (r, run), a in rows.items()
                if r == rel
            },
        }

    speed_texts = texts[: args.speed_texts or None]
    window = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    stride = window // 8
    runners: Dict[str, Callable[[List[str]], None]] = {
        "torch fp32": torch_raw(model, tokenizer, window, stride, args.batch_size)
    }
    for name, rel in files.items():
        runners[name] = onnx_raw(workdir / rel, tokenizer, window, stride, args.batch_size, args.threads)
    rounds = take_turns(runners, speed_texts, args.rounds)
    median = {name: statistics.median(v) for name, v in rounds.items()}
    for name in files:
        results[name]["speed_vs_torch_fp32"] = round(median[name] / median["torch fp32"], 2)
        results[name]["speed_vs_onnx_fp32"] = round(median[name] / median["float32"], 2)
        results[name]["speed_per_round"] = [round(a / b, 2) for a, b in zip(rounds[name], rounds["torch fp32"])]

    runs = list(ex.CHECK_RUNS[source.factory])
    header = [
        "file", "MiB", *(f"F1 {r}" for r in runs), *(f"max score diff {r}" for r in runs),
        "max logit diff", "speed vs torch", "speed vs onnx fp32",
    ]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for name, row in results.items():
        cells = [
            name, f"{row['mib']}", *(f"{row[r]['f1']:.4f}" for r in runs),
            *(f"{row[r]['max_score_diff']:.3f}" for r in runs),
        ]
        speed = [f"{row['speed_vs_torch_fp32']:.2f}", f"{row['speed_vs_onnx_fp32']:.2f}"]
        print(" | ".join([*cells, f"{row['max_logit_diff']:.3g}", *speed]))

    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads",
        "versions": {
            "torch": torch.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
            "onnx": __import__("onnx").__version__,
        },
        "model": args.model,
        "texts": len(texts),
        "speed_texts": len(speed_texts),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "texts_per_s_per_round": rounds,
        "files": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
