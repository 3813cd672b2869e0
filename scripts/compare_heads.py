#!/usr/bin/env python
"""The heads listening to hf_ner against the same heads on spacy-curated-
transformers' transformer (the same encoder weights), with en_core_web_sm
beside them: tag accuracy, UAS and LAS on UD English EWT test from
`spacy evaluate` outputs, one per training seed. Exit 1 when the means over
the seeds of the first two groups differ by more than `--tolerance` points on
any of them (or, with `--entities`, when the frozen pipeline's entities differ
from the standalone hf_ner's).

One seed of each is not enough: the two pipelines start from the same head
weights, but curated builds its transformer at random before loading the
weights, so the torch random stream (the dropout of the listeners' layer
weighting) differs from there on, as another seed's would. The spread of the
seeds (min to max) is printed beside the means.

en_core_web_sm's dependency labels are ClearNLP-style, not UD: its LAS is not
comparable and is not shown.

    python -m scripts.compare_heads --ours metrics/heads_ewt.json metrics/heads_ewt_s1.json \\
        --twin metrics/heads_ewt_curated_raw.json metrics/heads_ewt_curated_raw_s1.json \\
        --other "curated's own pieces=metrics/heads_ewt_curated.json" --sm metrics/heads_ewt_sm.json
"""
import argparse
import json
import sys
from pathlib import Path
from statistics import mean
from typing import Dict, List, Optional, Sequence, Tuple

KEYS = ("tag_acc", "dep_uas", "dep_las")
Group = List[Dict[str, float]]


def points(path: Path) -> Dict[str, float]:
    data = json.loads(path.read_text())
    return {key: 100 * float(data[key]) for key in KEYS}


def summary(group: Group) -> Dict[str, Tuple[float, float, float]]:
    """Per metric: (mean, min, max) over the seeds."""
    return {k: (mean(r[k] for r in group), min(r[k] for r in group), max(r[k] for r in group)) for k in KEYS}


def difference(ours: Group, twin: Group) -> Dict[str, float]:
    """Per metric: the mean of `ours` minus the mean of `twin`, in points."""
    a, b = summary(ours), summary(twin)
    return {k: a[k][0] - b[k][0] for k in KEYS}


def row(name: str, group: Group) -> str:
    cells, stats = [], summary(group)
    for k in KEYS:
        avg, lo, hi = stats[k]
        cells.append(f"{avg:>6.2f} ({lo:.2f}-{hi:.2f})" if len(group) > 1 else f"{avg:>6.2f}{'':>14}")
    return f"{name:<34} " + " ".join(cells) + f"  seeds: {len(group)}"


def table(groups: Sequence[Tuple[str, Group]], diff: Dict[str, float], sm: Optional[Dict[str, float]] = None) -> str:
    rows = [f"{'EWT test: mean (min-max)':<34} " + " ".join(f"{h:>20}" for h in ("tag acc", "UAS", "LAS"))]
    rows += [row(name, group) for name, group in groups]
    rows.append(f"{'difference of the first two means':<34} " + " ".join(f"{diff[k]:>+6.2f}{'':>14}" for k in KEYS))
    if sm is not None:
        rows.append(f"{'en_core_web_sm':<34} {sm['tag_acc']:>6.2f}{'':>14} {sm['dep_uas']:>6.2f}{'':>14} {'n/a':>6}")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ours", type=Path, nargs="+", required=True, help="spacy evaluate outputs of the heads on hf_ner, one per seed")
    ap.add_argument("--twin", type=Path, nargs="+", required=True, help="... of the same heads on curated's transformer")
    ap.add_argument("--other", action="append", default=[], help="NAME=PATH[,PATH...]: another group, shown only")
    ap.add_argument("--sm", type=Path, default=None, help="... of en_core_web_sm (shown beside them)")
    ap.add_argument("--tolerance", type=float, default=0.3, help="allowed difference of the means, in points")
    ap.add_argument("--entities", type=Path, default=None, help="scripts.frozen_entities output (0 differences)")
    args = ap.parse_args()
    ours, twin = [points(p) for p in args.ours], [points(p) for p in args.twin]
    groups = [("heads on hf_ner", ours), ("heads on curated transformer", twin)]
    for other in args.other:
        name, paths = other.split("=", 1)
        groups.append((name, [points(Path(p)) for p in paths.split(",")]))
    diff = difference(ours, twin)
    print(table(groups, diff, points(args.sm) if args.sm else None))
    worst = max(abs(d) for d in diff.values())
    ok = worst <= args.tolerance
    print(f"largest difference of the means {worst:.2f} points (allowed {args.tolerance:.2f}): {'ok' if ok else 'TOO LARGE'}")
    if args.entities:
        found = json.loads(args.entities.read_text())
        print(f"frozen hf_ner: {found['differences']} entity differences against the standalone hf_ner "
              f"({found['texts']} texts, {found['entities_trained']} entities; {found['corpus']})")
        ok = ok and found["differences"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
