#!/usr/bin/env python
"""Compare the test F1 of `spacy train` (seqeval metrics JSON) with the transformers
Trainer recipe's; exit 1 when spaCy's is lower by more than `--tolerance`.

    python scripts/compare_f1.py metrics/seqeval.json metrics/trainer.json --tolerance 0.005
"""
import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spacy_metrics", type=Path)
    ap.add_argument("trainer_metrics", type=Path)
    ap.add_argument("--tolerance", type=float, default=0.005, help="allowed F1 gap (0.005 = 0.5 points)")
    ap.add_argument("--what", default="", help="how both were evaluated (printed)")
    args = ap.parse_args()
    ours = json.loads(args.spacy_metrics.read_text())
    theirs = json.loads(args.trainer_metrics.read_text())
    gap = ours["f1"] - theirs["f1"]
    what = f" ({args.what})" if args.what else ""
    print(f"test entity F1{what}: spacy train {ours['f1']:.4f} | transformers Trainer {theirs['f1']:.4f} | "
          f"difference {100 * gap:+.2f} points (allowed -{100 * args.tolerance:.2f})")
    return 0 if gap >= -args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
