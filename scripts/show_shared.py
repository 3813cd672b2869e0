#!/usr/bin/env python
"""Entities, tags and dependencies from one forward pass: print what a pipeline
of `hf_ner` and heads listening to it (tagger, parser) gives on a few real
sentences, and how many times the transformer ran.

    python -m scripts.show_shared training/heads_ewt/model-last
"""
import argparse
from typing import Any, List

TEXTS = [
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday to discuss the European Union budget.",
    "Apple is looking at buying a U.K. startup for $1 billion, Bloomberg reported.",
]


def count_forwards(nlp: Any, name: str = "hf_ner") -> List[int]:
    """A counter of the forward calls of `name`'s transformers model."""
    calls = [0]

    def hook(*_: Any) -> None:
        calls[0] += 1

    nlp.get_pipe(name).runtime.model.register_forward_hook(hook)
    return calls


def show(doc: Any) -> str:
    rows = [doc.text, "  entities: " + ", ".join(f"{e.text} ({e.label_})" for e in doc.ents)]
    rows.append(f"  {'token':<10} {'tag':<5} {'dep':<10} head")
    for token in doc:
        rows.append(f"  {token.text:<10} {token.tag_:<5} {token.dep_:<10} {token.head.text}")
    return "\n".join(rows)


def main() -> None:
    import spacy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", help="a pipeline: hf_ner and heads listening to it")
    ap.add_argument("texts", nargs="*", help="texts (default: two example sentences)")
    args = ap.parse_args()
    nlp = spacy.load(args.pipeline)
    texts = args.texts or TEXTS
    docs = list(nlp.pipe(texts))  # warm-up: loads the model
    calls = count_forwards(nlp)
    docs = list(nlp.pipe(texts))
    listeners = nlp.get_pipe("hf_ner").listening_components
    print(f"pipeline: {nlp.pipe_names}; listening to hf_ner: {listeners}")
    print(f"transformer forward passes for {len(texts)} texts in one batch: {calls[0]}\n")
    print("\n\n".join(show(doc) for doc in docs))


if __name__ == "__main__":
    main()
