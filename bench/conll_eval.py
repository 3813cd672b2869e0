"""`hf_ner` with `words="model"` against transformers' pipeline on CoNLL-2003:
does hf_ner reproduce and place the model's own entities?

Each CoNLL sentence becomes a Doc whose tokens are exactly the CoNLL words
(text = " ".join(words)); gold entities are character spans built from the IOB2
tags. For every aggregation strategy: parity with transformers'
`pipeline("token-classification")` entity by entity (label, start, end, score
within 1e-4), how many HF entities lie on token boundaries, how many of ours
were written exactly vs snapped, entity P/R/F1 vs gold of the raw HF output and
of our doc.ents (scored by `scripts.evaluate_raw.prf`, seqeval's F1 beside it as
the check), and docs/s.

The F1 of hf_ner's configurations next to transformers' pipeline and
spacy-huggingface-pipelines on raw text is `bench/raw_text.py` (the same
scorer); this script is only about parity.

Usage:
    python -m bench.conll_eval [--model NAME_OR_DIR] [--split test] [--limit N] [--out JSON]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
os.environ.setdefault("RAYON_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent

import torch  # noqa: E402

from scripts.conll import fetch_conll, gold_char_spans, read_conll  # noqa: E402
from scripts.evaluate_raw import doc_spans, prf  # noqa: E402

torch.set_num_threads(2)

import spacy  # noqa: E402
from seqeval.metrics import f1_score as seqeval_f1  # noqa: E402
from spacy.tokens import Doc  # noqa: E402
from transformers import pipeline  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import spacy_hf_ner  # noqa: E402,F401  (registers hf_ner)

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

STRATEGIES = ["none", "simple", "first", "average", "max"]
HF_BATCH = 64
PIPE_BATCH = 1000
SCORE_TOL = 1e-4
N_EXAMPLES = 10

CharEnt = Tuple[int, int, int, str]  # (doc index, start, end, label)


# -- data ----------------------------------------------------------------------


def make_docs(nlp, sents) -> List[Doc]:
    docs = []
    for words, _ in sents:
        n = len(words)
        docs.append(Doc(nlp.vocab, words=list(words), spaces=[True] * (n - 1) + [False]))
    return docs


# -- scoring -------------------------------------------------------------------


def iob_tags(doc: Doc) -> List[str]:
    return ["O" if t.ent_iob_ in ("O", "") else f"{t.ent_iob_}-{t.ent_type_}" for t in doc]


def strip_prefix(label: str) -> str:
    return label.split("-", 1)[-1]


# -- runners -------------------------------------------------------------------


def timed(fn, *args):
    """fn(*args) and the seconds it took."""
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def predict_all(ner, docs: List[Doc]) -> list:
    """`ner.predict` over `docs`, PIPE_BATCH docs a call."""
    return [e for b in range(0, len(docs), PIPE_BATCH) for e in ner.predict(docs[b:b + PIPE_BATCH])]


def rate(n: int, secs: float) -> float:
    return round(n / secs, 1) if secs > 0 else float("inf")


def make_hf_ner(model: str, strategy: str, words: str):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "hf_ner",
        config={
            "model": model,
            "words": words,
            "aggregation_strategy": strategy,
            "batch_size": HF_BATCH,
            "device": "cpu",
        },
    )
    nlp.initialize()
    return nlp


def run_hf_pipeline(model: str, strategy: str, texts: List[str]):
    hf = pipeline("token-classification", model=model, aggregation_strategy=strategy, device=-1)
    hf(texts[:8], batch_size=HF_BATCH)  # warm-up
    out, secs = timed(lambda: hf(texts, batch_size=HF_BATCH))
    key = "entity" if strategy == "none" else "entity_group"
    ents = [
        [(e[key], float(e["score"]), int(e["start"]), int(e["end"])) for e in doc_out]
        for doc_out in out
    ]
    return ents, secs


def run_nlp_pipe(nlp, docs: List[Doc]):
    """nlp.pipe over already-built docs (the pipeline's components only)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, secs = timed(lambda: list(nlp.pipe(docs, batch_size=PIPE_BATCH)))
    return secs, len(caught), [str(w.message)[:300] for w in caught[:3]]


def warm_up(nlp, sents):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        list(nlp.pipe(make_docs(nlp, sents[:8])))


def compare(hf_ents, our_ents, texts) -> Dict[str, Any]:
    """Match HF entities with ours doc by doc (label, start, end, |score diff| <= tol)."""
    n_hf = n_ours = identical = same_list_docs = 0
    max_diff = 0.0
    examples = []
    for d, (hf_doc, our_doc) in enumerate(zip(hf_ents, our_ents)):
        n_hf += len(hf_doc)
        n_ours += len(our_doc)
        pool = list(our_doc)
        for lab, score, s, e in hf_doc:
            for j, (l2, sc2, s2, e2) in enumerate(pool):
                if (l2, s2, e2) == (lab, s, e) and abs(sc2 - score) <= SCORE_TOL:
                    max_diff = max(max_diff, abs(sc2 - score))
                    pool.pop(j)
                    identical += 1
                    break
        doc_ok = len(hf_doc) == len(our_doc) and all(
            (a[0], a[2], a[3]) == (b[0], b[2], b[3]) and abs(a[1] - b[1]) <= SCORE_TOL
            for a, b in zip(hf_doc, our_doc)
        )
        if doc_ok:
            same_list_docs += 1
        elif len(examples) < N_EXAMPLES:
            examples.append(
                {
                    "doc": d,
                    "text": texts[d][:200],
                    "hf": [(l, round(sc, 5), s, e, texts[d][s:e]) for l, sc, s, e in hf_doc],
                    "ours": [(l, round(sc, 5), s, e, texts[d][s:e]) for l, sc, s, e in our_doc],
                }
            )
    return {
        "n_hf": n_hf,
        "n_ours": n_ours,
        "identical": identical,
        "docs_identical": same_list_docs,
        "max_score_diff_matched": max_diff,
        "examples": examples,
    }


# -- main ----------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="spacy-hf-ner:en_conll03",
                    help="hf_ner model: the bundled default, a hub id or a local dir")
    ap.add_argument("--split", default="test", choices=["train", "valid", "test"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=str(REPO_ROOT / "build" / "conll_eval.json"))
    args = ap.parse_args()
    from spacy_hf_ner.sources import resolve_model

    model = resolve_model(args.model, "bench")
    model = str(Path(model).resolve()) if Path(model).is_dir() else model

    paths = fetch_conll()
    sents = read_conll(paths[args.split], limit=args.limit)
    texts = [" ".join(w) for w, _ in sents]
    n = len(sents)
    base = spacy.blank("en")
    gold: Set[CharEnt] = {
        (d, s, e, t) for d, (w, tags) in enumerate(sents) for s, e, t in gold_char_spans(w, tags)
    }
    gold_tags = [list(tags) for _, tags in sents]
    print(f"[conll_eval] split={args.split} sentences={n} tokens={sum(len(w) for w, _ in sents)} "
          f"gold entities={len(gold)} model={model} torch threads={torch.get_num_threads()}",
          flush=True)

    metrics_path = Path(model) / "metrics.json"
    model_f1 = None
    if metrics_path.is_file():
        model_f1 = json.loads(metrics_path.read_text()).get(args.split, {}).get("f1")

    result: Dict[str, Any] = {
        "split": args.split,
        "limit": args.limit,
        "n_docs": n,
        "n_gold": len(gold),
        "model": model,
        "model_metrics_f1": model_f1,
        "torch_threads": torch.get_num_threads(),
        "versions": {},
        "model_words": {},
    }
    import transformers

    result["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                          "spacy": spacy.__version__, "spacy_hf_ner": spacy_hf_ner.__version__}

    # 1. words="model": parity with transformers' pipeline
    for strategy in STRATEGIES:
        hf_ents, hf_secs = run_hf_pipeline(model, strategy, texts)
        nlp = make_hf_ner(model, strategy, "model")
        warm_up(nlp, sents)
        ner = nlp.get_pipe("hf_ner")
        ner.stats.clear()
        docs = make_docs(base, sents)
        pipe_secs, n_warn, warn_ex = run_nlp_pipe(nlp, docs)
        stats = dict(ner.stats)
        pred_docs = make_docs(base, sents)
        predicted, pred_secs = timed(predict_all, ner, pred_docs)
        ours = [[(e.label, float(e.score), e.start, e.end) for e in doc_ents] for doc_ents in predicted]
        parity = compare(hf_ents, ours, texts)
        on_tokens = sum(
            docs[d].char_span(s, e) is not None for d, doc_ents in enumerate(hf_ents) for _, _, s, e in doc_ents
        )
        relabel = strip_prefix if strategy == "none" else (lambda x: x)
        hf_raw = [(d, s, e, relabel(l)) for d, doc_ents in enumerate(hf_ents) for l, _, s, e in doc_ents]
        written = stats.get("written", 0)
        snapped = stats.get("snapped", 0)
        row = {
            **{k: v for k, v in parity.items() if k != "examples"},
            "hf_on_token_boundaries": on_tokens,
            "stats": stats,
            "written_exact": written - snapped,
            "written_snapped": snapped,
            "n_warnings": n_warn,
            "warning_examples": warn_ex,
            "prf_hf_raw": prf(hf_raw, gold),
            "prf_ours_ents": prf(doc_spans(docs), gold),
            "seqeval_f1_ours": round(seqeval_f1(gold_tags, [iob_tags(d) for d in docs]), 4),
            "docs_per_s_hf_pipeline": rate(n, hf_secs),
            "docs_per_s_hf_ner_pipe": rate(n, pipe_secs),
            "docs_per_s_hf_ner_predict": rate(n, pred_secs),
            "mismatch_examples": parity["examples"],
        }
        if strategy == "none":
            row["note"] = "labels stripped of B-/I-; each subword is an entity: P/R/F1 not meaningful"
        result["model_words"][strategy] = row
        print(f"[model/{strategy}] hf={row['n_hf']} identical={row['identical']} "
              f"ours={row['n_ours']} on_tokens={on_tokens} stats={stats} "
              f"F1 hf={row['prf_hf_raw']['f1']} ours={row['prf_ours_ents']['f1']} "
              f"docs/s hf={row['docs_per_s_hf_pipeline']} ours={row['docs_per_s_hf_ner_pipe']}",
              flush=True)
        del nlp, ner

    print_tables(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\n[conll_eval] wrote {out}")


def print_tables(r: Dict[str, Any]) -> None:
    print(f"\n== CoNLL-2003 {r['split']}: {r['n_docs']} sentences, {r['n_gold']} gold entities; "
          f"model's own seqeval F1 (metrics.json) = {r['model_metrics_f1']} ==")
    print("\n-- words='model' vs transformers pipeline (entity P/R/F1: exact char span + label) --")
    hdr = (f"{'strategy':<8} {'HF ents':>7} {'identical':>9} {'ours':>6} {'on tok':>6} "
           f"{'exact':>6} {'snapped':>7} {'merged':>6} {'confl':>5} {'unpl':>4} "
           f"{'HF P/R/F1':>20} {'ours P/R/F1':>20} {'HF d/s':>7} {'ours d/s':>8}")
    print(hdr)
    for s, row in r["model_words"].items():
        st = row["stats"]
        hp, op = row["prf_hf_raw"], row["prf_ours_ents"]
        print(f"{s:<8} {row['n_hf']:>7} {row['identical']:>9} {row['n_ours']:>6} "
              f"{row['hf_on_token_boundaries']:>6} {row['written_exact']:>6} "
              f"{row['written_snapped']:>7} {st.get('merged', 0):>6} {st.get('conflicts', 0):>5} "
              f"{st.get('unplaced', 0):>4} "
              f"{hp['precision']:>6.4f}/{hp['recall']:.4f}/{hp['f1']:.4f} "
              f"{op['precision']:>6.4f}/{op['recall']:.4f}/{op['f1']:.4f} "
              f"{row['docs_per_s_hf_pipeline']:>7} {row['docs_per_s_hf_ner_pipe']:>8}")
    print("  ('none': labels stripped of B-/I-, one entity per subword: P/R/F1 not meaningful)")
    print(f"{'strategy':<8} {'ours seqeval F1':>15}")
    for s, row in r["model_words"].items():
        if s != "none":
            print(f"{s:<8} {row['seqeval_f1_ours']:>15.4f}  (the check on prf's F1 above)")
    for s, row in r["model_words"].items():
        if row["identical"] != row["n_hf"] or row["n_ours"] != row["n_hf"]:
            print(f"\n[parity] {s}: {row['n_hf'] - row['identical']} HF entities not matched, "
                  f"ours {row['n_ours']} vs HF {row['n_hf']}; examples:")
            for ex in row["mismatch_examples"][:3]:
                print(f"  doc {ex['doc']}: {ex['text'][:120]!r}\n    HF:   {ex['hf']}\n    ours: {ex['ours']}")


if __name__ == "__main__":
    main()
