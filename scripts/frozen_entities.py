#!/usr/bin/env python
"""Frozen encoder, entities unchanged: a pipeline whose heads were trained on a
frozen `hf_ner` against the standalone `hf_ner` on CoNLL-2003 raw text.

Both read the same raw texts (each test story, one sentence a line, as
`scripts/evaluate_raw.py` builds them) through `nlp.pipe`; every entity
(start and end character, label) of one that the other lacks is a difference.
The trained pipeline runs whole (its tagger and parser listening), as users
run it.

    python -m scripts.frozen_entities training/heads_ewt/model-last metrics/frozen_entities.json
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

from scripts.conll import DEFAULT_CACHE
from scripts.evaluate_raw import items

Entity = Tuple[int, int, str]


def entities(nlp: Any, texts: List[str]) -> List[List[Entity]]:
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=16)]


def compare(trained: List[List[Entity]], standalone: List[List[Entity]]) -> Dict[str, Any]:
    """The entity counts and every difference (text index, entity, which side has it)."""
    diffs = []
    for i, (a, b) in enumerate(zip(trained, standalone)):
        diffs += [{"text": i, "entity": e, "only_in": "trained"} for e in sorted(set(a) - set(b))]
        diffs += [{"text": i, "entity": e, "only_in": "standalone"} for e in sorted(set(b) - set(a))]
    return {
        "texts": len(trained),
        "entities_trained": sum(map(len, trained)),
        "entities_standalone": sum(map(len, standalone)),
        "differences": len(diffs),
        "examples": diffs[:20],
    }


def main() -> None:
    import spacy

    from spacy_hf_ner import load_pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", help="a trained pipeline whose hf_ner was frozen")
    ap.add_argument("output", type=Path)
    ap.add_argument("--model", default="spacy-hf-ner:en_conll03", help="the standalone hf_ner's model")
    ap.add_argument("--granularity", choices=["documents", "sentences"], default="documents")
    ap.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    args = ap.parse_args()
    texts = [item.text for item in items("test", args.cache_dir)[args.granularity]]
    trained = spacy.load(args.pipeline)
    standalone = load_pipeline(args.model, lang="en")
    report = {
        "pipeline": args.pipeline,
        "pipes": trained.pipe_names,
        "standalone": args.model,
        "corpus": f"CoNLL-2003 test, raw text, {args.granularity}",
        **compare(entities(trained, texts), entities(standalone, texts)),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['texts']} {args.granularity}: {report['entities_trained']} entities (trained pipeline), "
          f"{report['entities_standalone']} (standalone hf_ner), {report['differences']} differences")


if __name__ == "__main__":
    main()
