#!/usr/bin/env python
"""Entity-level P/R/F1 (seqeval, CoNLL-style exact match) and token accuracy of a
spaCy pipeline's `doc.ents` on a gold DocBin, written as metrics JSON.

The pipeline runs on the gold tokenization (`Doc(words=..., spaces=...)`), so
tags compare token by token exactly as `seqeval` / conlleval score them.

    python scripts/evaluate_seqeval.py training/model-best corpus/test.spacy metrics/seqeval.json
"""
import argparse
import json
import time
from pathlib import Path
from typing import Dict, List, Sequence


def seqeval_metrics(gold: Sequence[List[str]], pred: Sequence[List[str]]) -> Dict:
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    kwargs = dict(mode="strict", scheme=IOB2)
    report = classification_report(gold, pred, output_dict=True, **kwargs)
    return {
        "precision": round(float(precision_score(gold, pred, **kwargs)), 4),
        "recall": round(float(recall_score(gold, pred, **kwargs)), 4),
        "f1": round(float(f1_score(gold, pred, **kwargs)), 4),
        "accuracy": round(float(accuracy_score(gold, pred)), 4),
        "per_type": {
            k: {m: round(float(v[m]), 4) for m in ("precision", "recall", "f1-score", "support")}
            for k, v in report.items()
            if "avg" not in k
        },
    }


def iob(doc) -> List[str]:
    return [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ in ("B", "I") else "O" for t in doc]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", help="spaCy pipeline dir or package")
    ap.add_argument("gold", type=Path, help=".spacy DocBin with gold entities")
    ap.add_argument("output", type=Path, help="metrics JSON")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    import spacy
    from spacy.tokens import Doc, DocBin

    nlp = spacy.load(args.pipeline)
    gold_docs = list(DocBin().from_disk(args.gold).get_docs(nlp.vocab))
    inputs = [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in gold_docs]
    start = time.time()
    predicted = list(nlp.pipe(inputs, batch_size=args.batch_size))
    secs = time.time() - start
    metrics = seqeval_metrics([iob(d) for d in gold_docs], [iob(d) for d in predicted])
    metrics.update({"pipeline": str(args.pipeline), "docs": len(gold_docs), "seconds": round(secs, 1)})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(metrics, indent=2))
    print(json.dumps({k: metrics[k] for k in ("precision", "recall", "f1", "accuracy")}, indent=2))


if __name__ == "__main__":
    main()
