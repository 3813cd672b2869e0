"""ONNX Runtime vs torch on CPU for a token classifier, in one process, side by side.

1. Raw limit (the same for every runner): all texts tokenized at once by the
   fast tokenizer, windows sorted by length, padded batches of `--batch-size`,
   forward pass, logits as numpy. Runners: torch float32 (the transformers
   model, `torch.inference_mode`), and ONNX Runtime on each `--onnx-files` file
   of the export (float32 and int8 by default). The runners take turns for
   `--rounds` rounds; reported: docs/s of each round, the median, and the
   ratio of medians to torch.
2. Quality: seqeval entity P/R/F1 (IOB2, strict, `seqeval_metrics` of scripts/trainer_conll.py)
   of `hf_ner` (words "spacy", aggregation "first") with backend "torch" and
   with backend "onnx" on each file, on the gold tokenization, and their
   `nlp.pipe` docs/s.

    spacy-hf-ner export-onnx spacy-hf-ner:en_conll03 /tmp/en_conll03_onnx --quantize int8
    python -m bench.onnx_speed /tmp/en_conll03_onnx corpus/test.spacy --out bench/results/onnx_cpu.json

Threads: torch and ONNX Runtime both get `--threads` intra-op threads.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent

import numpy as np  # noqa: E402


def raw_batches(tokenizer: Any, texts: Sequence[str], window: int, stride: int, batch: int, overflow: bool = True):
    """Tokenize all texts into windows (`overflow`: a long text gives several,
    overlapping by `stride`; else it is truncated to one), sort them by length,
    and yield padded (input_ids, attention_mask, token_type_ids) batches."""
    kwargs: Dict[str, Any] = {"stride": stride, "return_overflowing_tokens": True} if overflow else {}
    ids = tokenizer(
        list(texts), truncation=True, max_length=window, padding=False,
        return_attention_mask=False, return_token_type_ids=False, **kwargs,
    )["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    pad = tokenizer.pad_token_id or 0
    for b in range(0, len(order), batch):
        rows = [ids[i] for i in order[b : b + batch]]
        arr = np.full((len(rows), len(rows[0])), pad, dtype=np.int64)
        mask = np.zeros_like(arr)
        for r, row in enumerate(rows):
            arr[r, : len(row)] = row
            mask[r, : len(row)] = 1
        yield {"input_ids": arr, "attention_mask": mask, "token_type_ids": np.zeros_like(arr)}


def torch_raw(model: Any, tokenizer: Any, window: int, stride: int, batch: int) -> Callable[[List[str]], None]:
    import torch

    def run(texts: List[str]) -> None:
        with torch.inference_mode():
            for arrays in raw_batches(tokenizer, texts, window, stride, batch):
                model(**{k: torch.from_numpy(v) for k, v in arrays.items()}).logits.float().numpy()

    return run


def onnx_raw(path: Path, tokenizer: Any, window: int, stride: int, batch: int, threads: int) -> Callable[[List[str]], None]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(texts: List[str]) -> None:
        for arrays in raw_batches(tokenizer, texts, window, stride, batch):
            session.run(None, {k: arrays[k] for k in names})

    return run


def timed(fn: Callable[[List[str]], None], texts: List[str]) -> float:
    start = time.perf_counter()
    fn(texts)
    return len(texts) / (time.perf_counter() - start)


def take_turns(runners: Dict[str, Callable[[List[str]], None]], texts: List[str], rounds: int) -> Dict[str, List[float]]:
    """Warm each runner up, then let them take turns over `texts` for
    `rounds` rounds; texts/s of each round, by runner (printed as they come)."""
    for run in runners.values():
        run(texts[:64])
    speeds: Dict[str, List[float]] = {name: [] for name in runners}
    for r in range(rounds):
        for name, run in runners.items():
            speeds[name].append(round(timed(run, texts), 1))
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.0f}/s" for n, v in speeds.items()), file=sys.stderr, flush=True)
    return speeds


def seqeval_f1(nlp: Any, gold_docs: Sequence[Any]) -> Dict[str, float]:
    from spacy.tokens import Doc

    from scripts.trainer_conll import seqeval_metrics, word_tags

    inputs = [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in gold_docs]
    list(nlp.pipe(inputs[:16]))  # load the model
    start = time.perf_counter()
    predicted = list(nlp.pipe(inputs, batch_size=64))
    seconds = time.perf_counter() - start
    metrics = seqeval_metrics([word_tags(d)[1] for d in gold_docs], [word_tags(d)[1] for d in predicted])
    return {
        **{k: metrics[k] for k in ("precision", "recall", "f1")},
        "docs_per_s": round(len(gold_docs) / seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export", type=Path, help="output dir of `spacy-hf-ner export-onnx`")
    ap.add_argument("gold", type=Path, help="DocBin with gold entities (CoNLL-2003 test)")
    ap.add_argument("--model", default="spacy-hf-ner:en_conll03", help="the torch model that was exported")
    ap.add_argument("--onnx-files", default="onnx/model.onnx,onnx/model_int8.onnx")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--speed-docs", type=int, default=0, help="time the raw runners on the first N docs only")
    ap.add_argument("--skip-f1", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import spacy
    from spacy.tokens import DocBin
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    import spacy_hf_ner  # noqa: F401  registers the factories
    from spacy_hf_ner.sources import resolve_model

    warnings.filterwarnings("ignore")
    model_dir = resolve_model(args.model, "bench")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    nlp = spacy.blank("en")
    gold_docs = list(DocBin().from_disk(args.gold).get_docs(nlp.vocab))
    texts = [d.text for d in gold_docs][: args.speed_docs or None]
    window = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    stride = window // 8
    files = args.onnx_files.split(",")

    runners: Dict[str, Callable[[List[str]], None]] = {
        "torch fp32": torch_raw(model, tokenizer, window, stride, args.batch_size)
    }
    for rel in files:
        runners[f"onnxruntime {rel}"] = onnx_raw(args.export / rel, tokenizer, window, stride, args.batch_size, args.threads)
    rounds = take_turns(runners, texts, args.rounds)
    base = statistics.median(rounds["torch fp32"])
    raw = {
        name: {
            "docs_per_s": v,
            "median": statistics.median(v),
            "ratio_to_torch": round(statistics.median(v) / base, 2),
            "ratio_per_round": [round(a / b, 2) for a, b in zip(v, rounds["torch fp32"])],
        }
        for name, v in rounds.items()
    }
    result: Dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads",
        "versions": {"torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__},
        "speed_texts": len(texts),
        "f1_docs": len(gold_docs),
        "batch_size": args.batch_size,
        "raw": raw,
    }
    for name, row in raw.items():
        print(f"raw {name}: median {row['median']:.1f} docs/s, x{row['ratio_to_torch']} torch fp32 "
              f"(per round {row['ratio_per_round']})")

    if not args.skip_f1:
        quality: Dict[str, Any] = {}
        configs = {"torch fp32": {}} | {f"onnx {rel}": {"backend": "onnx", "onnx_file": rel} for rel in files}
        for name, extra in configs.items():
            pipe = spacy.blank("en")
            model_ref = args.model if not extra else str(args.export)
            pipe.add_pipe("hf_ner", config={"model": model_ref, "device": "cpu", **extra})
            quality[name] = seqeval_f1(pipe, gold_docs)
            print(f"hf_ner {name}: {quality[name]}", flush=True)
        result["hf_ner_seqeval"] = quality
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
