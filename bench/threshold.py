#!/usr/bin/env python
"""What does `threshold` buy? Raw-text entity F1 on CoNLL-2003 at a range of
score thresholds, for sentences alone and whole documents, with how many
entities each threshold drops.

    python -m bench.threshold spacy-hf-ner:en_conll03 bench/results/threshold.json --split test

Choose a threshold on `--split dev` with a model that never trained on dev; the
bundled model was trained on train + dev, so for it only test is held out, and
the figures describe the default rather than tune it.

The pipeline runs once per granularity; an entity below a threshold is the one
`hf_ner` drops with that `threshold` (the filter acts on decoded entities, so
dropping afterwards gives the same doc.ents in a blank pipeline).
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

from scripts.evaluate_raw import gold_spans, items, load, prf  # noqa: E402

THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def scored_spans(nlp: Any, texts: List[str]) -> List[Tuple[Tuple[int, int, int, str], float]]:
    """Every predicted entity as ((item, start, end, label), score)."""
    return [
        ((i, e.start_char, e.end_char, e.label_), e._.hf_score)
        for i, doc in enumerate(nlp.pipe(texts, batch_size=64))
        for e in doc.ents
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default="spacy-hf-ner:en_conll03")
    ap.add_argument("output", nargs="?", default="bench/results/threshold.json")
    ap.add_argument("--cache-dir", default="assets/conll2003")
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    args = ap.parse_args()
    nlp = load(args.model, {})
    data = items(args.split, args.cache_dir)
    out: Dict[str, Any] = {"model": args.model, "split": args.split, "text": "raw", "results": {}}
    for granularity, batch in data.items():
        predicted = scored_spans(nlp, [item.text for item in batch])
        gold = gold_spans(batch)
        rows = {}
        for t in THRESHOLDS:
            kept = [span for span, score in predicted if score >= t]
            metrics = prf(kept, gold)
            rows[str(t)] = {k: metrics[k] for k in ("precision", "recall", "f1")}
            rows[str(t)]["dropped"] = len(predicted) - len(kept)
        out["results"][granularity] = rows
        print(f"{granularity} ({len(batch)} texts, {len(predicted)} entities)")
        print("threshold  precision  recall  f1      dropped")
        for t, r in rows.items():
            print(f"{t:<9}  {r['precision']:.4f}     {r['recall']:.4f}  {r['f1']:.4f}  {r['dropped']}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
