#!/usr/bin/env python
"""Compare the test F1 of `spacy train` with the transformers Trainer recipe's
(two metrics JSON files; or any two models, `--names`); exit 1 when the first's
is lower by more than `--tolerance`, or with `--must-exceed` when it is not
higher. `--metric` compares another number than "f1" (e.g. `tag_acc` of two
`spacy evaluate` outputs).

    python -m scripts.compare_f1 metrics/raw_text.json metrics/trainer_raw_text.json --key sentences.raw
    python -m scripts.compare_f1 metrics/word_level.json metrics/trainer_word_level.json
    python -m scripts.compare_f1 metrics/tagger_conll_joint.json metrics/tagger_conll_frozen.json --metric tag_acc --must-exceed
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
    ap.add_argument("--metric", default="f1", help="the number compared (default: f1)")
    ap.add_argument("--must-exceed", action="store_true", help="the first must be higher than the second")
    args = ap.parse_args()
    ours, theirs = (read(path, args.key)[args.metric] for path in (args.spacy_metrics, args.trainer_metrics))
    gap = ours - theirs
    what = f" ({args.what})" if args.what else ""
    first, second = args.names.split(",")
    rule = "must be above 0" if args.must_exceed else f"allowed -{100 * args.tolerance:.2f}"
    label = "entity F1" if args.metric == "f1" else args.metric
    print(f"test {label}{what}: {first} {ours:.4f} | {second} {theirs:.4f} | difference {100 * gap:+.2f} points ({rule})")
    return 0 if (gap > 0 if args.must_exceed else gap >= -args.tolerance) else 1


def read(path: Path, key: str) -> dict:
    """The metrics dict at the dotted `key` of a JSON file (the whole file for "")."""
    data = json.loads(path.read_text())
    for part in filter(None, key.split(".")):
        data = data[part]
    return data


if __name__ == "__main__":
    sys.exit(main())
