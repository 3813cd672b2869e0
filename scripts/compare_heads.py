#!/usr/bin/env python
"""The heads listening to hf_ner against the same heads on spacy-curated-
transformers' transformer (the same encoder weights), with en_core_web_sm
beside them: tag accuracy, UAS and LAS on UD English EWT test from three
`spacy evaluate` outputs. Exit 1 when the first two differ by more than
`--tolerance` points on any of them (or, with `--entities`, when the frozen
pipeline's entities differ from the standalone hf_ner's).

en_core_web_sm's dependency labels are ClearNLP-style, not UD: its LAS is not
comparable and is not shown.

    python -m scripts.compare_heads metrics/heads_ewt.json metrics/heads_ewt_curated.json metrics/heads_ewt_sm.json
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, Optional

KEYS = ("tag_acc", "dep_uas", "dep_las")


def points(path: Path) -> Dict[str, float]:
    data = json.loads(path.read_text())
    return {key: 100 * float(data[key]) for key in KEYS}


def table(ours: Dict[str, float], curated: Dict[str, float], sm: Optional[Dict[str, float]]) -> str:
    rows = [f"{'EWT test':<30} {'tag acc':>8} {'UAS':>7} {'LAS':>7}"]
    rows.append(f"{'heads on hf_ner':<30} " + " ".join(f"{ours[k]:>7.2f}" for k in KEYS))
    rows.append(f"{'heads on curated transformer':<30} " + " ".join(f"{curated[k]:>7.2f}" for k in KEYS))
    rows.append(f"{'difference':<30} " + " ".join(f"{ours[k] - curated[k]:>+7.2f}" for k in KEYS))
    if sm is not None:
        rows.append(f"{'en_core_web_sm':<30} {sm['tag_acc']:>7.2f} {sm['dep_uas']:>7.2f} {'n/a':>7}")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ours", type=Path, help="spacy evaluate output of the heads on hf_ner")
    ap.add_argument("curated", type=Path, help="... of the same heads on curated's transformer")
    ap.add_argument("sm", type=Path, nargs="?", help="... of en_core_web_sm (shown beside them)")
    ap.add_argument("--tolerance", type=float, default=0.3, help="allowed difference, in points")
    ap.add_argument("--entities", type=Path, default=None, help="scripts.frozen_entities output (0 differences)")
    args = ap.parse_args()
    ours, curated = points(args.ours), points(args.curated)
    print(table(ours, curated, points(args.sm) if args.sm else None))
    worst = max(abs(ours[k] - curated[k]) for k in KEYS)
    ok = worst <= args.tolerance
    print(f"largest difference {worst:.2f} points (allowed {args.tolerance:.2f}): {'ok' if ok else 'TOO LARGE'}")
    if args.entities:
        found = json.loads(args.entities.read_text())
        print(f"frozen hf_ner: {found['differences']} entity differences against the standalone hf_ner "
              f"({found['texts']} texts, {found['entities_trained']} entities; {found['corpus']})")
        ok = ok and found["differences"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
