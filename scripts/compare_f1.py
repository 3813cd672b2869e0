#!/usr/bin/env python
"""Compare the test F1 of `spacy train` with the transformers Trainer recipe's
(two metrics JSON files; or any two models, `--names`); exit 1 when the first's
is lower by more than `--tolerance`.

    python -m scripts.compare_f1 metrics/raw_text.json metrics/trainer_raw_text.json --key sentences.raw
    python -m scripts.compare_f1 metrics/word_level.json metrics/trainer_word_level.json
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
    ap.add_argument("--key", default="", help="where the metrics sit in both files, dotted (e.g. sentences.raw)")
    ap.add_argument("--names", default="spacy train,transformers Trainer", help="the two models' names, comma-separated")
    args = ap.parse_args()
    ours, theirs = (read(path, args.key) for path in (args.spacy_metrics, args.trainer_metrics))
    gap = ours["f1"] - theirs["f1"]
    what = f" ({args.what})" if args.what else ""
    first, second = args.names.split(",")
    print(f"test entity F1{what}: {first} {ours['f1']:.4f} | {second} {theirs['f1']:.4f} | "
          f"difference {100 * gap:+.2f} points (allowed -{100 * args.tolerance:.2f})")
    return 0 if gap >= -args.tolerance else 1


def read(path: Path, key: str) -> dict:
    """The metrics dict at the dotted `key` of a JSON file (the whole file for "")."""
    data = json.loads(path.read_text())
    for part in filter(None, key.split(".")):
        data = data[part]
    return data


if __name__ == "__main__":
    sys.exit(main())
