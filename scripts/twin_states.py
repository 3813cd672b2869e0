#!/usr/bin/env python
"""How often the heads' two encoders give the same hidden states: the trained
pipeline on hf_ner and its curated twin (`scripts/curated_twin.py`) on the same
documents, the last layer that each writes to `doc._.trf_data`.

A document counts as the same when both give it the same number of pieces and
no value differs by more than `--atol`; otherwise by a different number of
pieces (curated splits each spaCy token into pieces, hf_ner the text) or by
values (a piece that differs, another window for texts over 256 pieces).

    python -m scripts.twin_states training/heads_ewt/model-last training/heads_ewt_curated/model-last corpus/upos/test.spacy metrics/heads_states.json
    python -m scripts.twin_states training/heads_ewt/model-last training/heads_ewt_curated_raw/model-last corpus/upos/test.spacy metrics/heads_states_raw.json

The second twin reads hf_ner's own pieces (`scripts/twin_pieces.py`, imported
here so that its pipeline loads).
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict, List


def last_layer(doc: Any) -> Any:
    output = doc._.trf_data
    return output.all_outputs[-1].dataXd


def compare(ours: List[Any], theirs: List[Any], atol: float) -> Dict[str, Any]:
    import numpy as np

    same, pieces, values = 0, 0, 0
    for a, b in zip(ours, theirs):
        if a.shape != b.shape:
            pieces += 1
        elif len(a) and float(np.abs(a - b).max()) > atol:
            values += 1
        else:
            same += 1
    return {"documents": len(ours), "same": same, "other_piece_count": pieces, "other_values": values, "atol": atol}


def main() -> None:
    import spacy
    from spacy.tokens import DocBin

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ours", help="the pipeline whose heads listen to hf_ner")
    ap.add_argument("twin", help="the pipeline whose heads listen to curated's transformer")
    ap.add_argument("corpus", type=Path, help="a .spacy file (its texts are used)")
    ap.add_argument("output", type=Path)
    ap.add_argument("--atol", type=float, default=1e-4)
    args = ap.parse_args()
    import scripts.twin_pieces  # noqa: F401  (registers the raw-text twin's piece encoder)

    ours, twin = spacy.load(args.ours), spacy.load(args.twin)
    texts = [d.text for d in DocBin().from_disk(args.corpus).get_docs(ours.vocab)]
    states = {}
    for name, nlp in (("ours", ours), ("twin", twin)):
        states[name] = [last_layer(d) for d in nlp.pipe(texts)]
    report = {"ours": args.ours, "twin": args.twin, "corpus": str(args.corpus), **compare(states["ours"], states["twin"], args.atol)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
