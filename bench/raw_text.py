"""CoNLL-2003 test F1 on raw text next to gold tokens, for any token classifier,
with the transformers pipeline and spacy-huggingface-pipelines on the same raw
text (one run, one scorer: exact character spans, see scripts/evaluate_raw.py).

Rows, each for sentences alone and whole documents (one sentence a line):

* hf_ner with its default config (the words of `spacy-hf-ner.infix_units.v1`,
  Viterbi), on raw text and on the same words as gold tokens;
* hf_ner with the previous default (each spaCy token a word, greedy);
* hf_ner `words="model"` (transformers' own entities, snapped to tokens);
* the model's own word level: the gold words, each labelled by its first
  subword's argmax (the transformers guide's evaluation), scored like the rest;
* transformers' `pipeline("token-classification", aggregation_strategy="first")`
  and spacy-huggingface-pipelines' `hf_token_pipe` ("first") on the raw text.

    python -m bench.raw_text MODEL [MODEL ...] [--out bench/results/raw_text.json]

MODEL: a token classifier (folder, hub id, spacy-hf-ner:en_conll03) or a spaCy
pipeline folder with hf_ner (its model is used).
"""
import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Sequence

ROOT = Path(__file__).resolve().parent.parent

from scripts.evaluate_raw import DEFAULT_CACHE, Item, evaluate, gold_spans, items, prf, run  # noqa: E402

OLD_DEFAULT = {"decoding": "greedy", "units": {"@misc": "spacy-hf-ner.token_units.v1"}}


def model_dir(name: str) -> str:
    """The transformers model behind a name (a pipeline's hf_ner model folder)."""
    from spacy_hf_ner.sources import resolve_model

    path = Path(name)
    if (path / "config.cfg").is_file():
        return str(path / "hf_ner" / "model")
    return resolve_model(name, "bench")


def hf_ner(model: str, config: Dict[str, Any]) -> Any:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": model, **config})
    nlp.initialize()
    return nlp


def word_level(model: str, data: Dict[str, List[Item]], batch_size: int = 32) -> Dict[str, Any]:
    """Gold words, each labelled by its first subword's argmax; a document is run
    in pieces of whole sentences that fit the model's window."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    net = AutoModelForTokenClassification.from_pretrained(model).eval()
    labels = [net.config.id2label[i] for i in range(len(net.config.id2label))]
    window = min(tokenizer.model_max_length, 512)

    def tag(sentences: Sequence[List[str]]) -> List[List[str]]:
        words = [w for s in sentences for w in s]
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=window, return_tensors="pt")
        with torch.inference_mode():
            ids = net(**enc).logits[0].argmax(-1).tolist()
        out, seen = ["O"] * len(words), set()
        for i, w in enumerate(enc.word_ids()):
            if w is not None and w not in seen:
                seen.add(w)
                out[w] = labels[ids[i]]
        tags, at = [], 0
        for s in sentences:
            tags.append(out[at : at + len(s)])
            at += len(s)
        return tags

    results = {}
    for granularity, batch in data.items():
        start = time.perf_counter()
        pred = []
        for i, item in enumerate(batch):
            tags: List[List[str]] = []
            piece: List[List[str]] = []
            for words, _ in item.sentences:
                n = len(tokenizer([w for s in piece + [words] for w in s], is_split_into_words=True)["input_ids"])
                if piece and n > window:
                    tags.extend(tag(piece))
                    piece = []
                piece.append(words)
            tags.extend(tag(piece))
            pred.extend((i, a, b, t) for a, b, t in item.spans(tags))
        results[granularity] = {**prf(pred, gold_spans(batch)), "seconds": round(time.perf_counter() - start, 1)}
    return results


def transformers_pipeline(model: str, data: Dict[str, List[Item]]) -> Dict[str, Any]:
    from transformers import pipeline

    pipe = pipeline("token-classification", model=model, aggregation_strategy="first", device=-1)
    stride = pipe.tokenizer.model_max_length // 8 if pipe.tokenizer.model_max_length < 100_000 else 64
    results = {}
    for granularity, batch in data.items():
        start = time.perf_counter()
        found = pipe([item.text for item in batch], batch_size=16, stride=stride)
        pred = [(i, e["start"], e["end"], e["entity_group"]) for i, ents in enumerate(found) for e in ents]
        results[granularity] = {**prf(pred, gold_spans(batch)), "seconds": round(time.perf_counter() - start, 1)}
    return results


def hf_token_pipe(model: str, data: Dict[str, List[Item]]) -> Dict[str, Any]:
    import spacy

    try:
        import spacy_huggingface_pipelines  # noqa: F401
    except ImportError:
        return {"skipped": "spacy-huggingface-pipelines is not installed (scripts/setup.sh --bench)"}
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_token_pipe", config={"model": model, "aggregation_strategy": "first", "stride": 32})
    results = {}
    for granularity, batch in data.items():
        metrics, secs = run(nlp, batch, gold_tokens=False)
        results[granularity] = {**metrics, "seconds": round(secs, 1)}
    return results


def bench(name: str, data: Dict[str, List[Item]]) -> Dict[str, Any]:
    model = model_dir(name)
    rows: Dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows["hf_ner default"] = evaluate(hf_ner(model, {}), data)
        rows["hf_ner tokens+greedy (previous default)"] = evaluate(hf_ner(model, OLD_DEFAULT), data)
        model_words = hf_ner(model, {"words": "model"})
        rows["hf_ner words=model"] = {g: {"raw": run(model_words, b, False)[0]} for g, b in data.items()}
        rows["word level (gold words)"] = {g: {"gold_tokens": v} for g, v in word_level(model, data).items()}
        rows["transformers pipeline (first)"] = {g: {"raw": v} for g, v in transformers_pipeline(model, data).items()}
        found = hf_token_pipe(model, data)
        rows["hf_token_pipe (first)"] = found if "skipped" in found else {g: {"raw": v} for g, v in found.items()}
    return rows


def table(name: str, rows: Dict[str, Any]) -> str:
    cell = lambda r, g, m: f"{r[g][m]['f1']:.4f}" if g in r and m in r[g] else "-"  # noqa: E731
    lines = [name, f"{'':42} {'sent raw':>9} {'sent gold':>9} {'docs raw':>9} {'docs gold':>9}"]
    for row, r in rows.items():
        if "skipped" in r:
            lines.append(f"{row:42} {r['skipped']}")
            continue
        cells = [cell(r, g, m) for g in ("sentences", "documents") for m in ("raw", "gold_tokens")]
        lines.append(f"{row:42} " + " ".join(f"{c:>9}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    ap.add_argument("--limit", type=int, default=0, help="only the first N documents (smoke runs)")
    args = ap.parse_args()
    data = items("test", args.cache_dir)
    if args.limit:
        data["documents"] = data["documents"][: args.limit]
        n = sum(len(d.sentences) for d in data["documents"])
        data["sentences"] = data["sentences"][:n]
    report = {}
    for name in args.models:
        report[name] = bench(name, data)
        print(table(name, report[name]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
