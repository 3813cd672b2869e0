#!/usr/bin/env python
"""CoNLL-2003 entity F1 as a user gets it: raw text through `nlp(text)`, with
the same words as gold tokens beside it.

Two granularities, each scored on character spans (exact start, end, label):

* sentences alone: each test sentence's words joined by single spaces;
* whole documents: each test story, one sentence a line.

"raw" gives that text to the pipeline, so spaCy's tokenizer splits it (as it
does for users). "gold tokens" gives the same text as a `Doc` of the CoNLL
words, so only the tokenization differs. Gold entities follow conlleval's
rule (an "I-" that does not continue an entity starts one).

    python -m scripts.evaluate_raw PIPELINE_OR_MODEL metrics/raw_text.json [--set decoding=greedy]

PIPELINE_OR_MODEL is a spaCy pipeline with hf_ner (folder or package), or a
token classifier (folder, hub id, `spacy-hf-ner:en_conll03`) run by a blank
English pipeline with hf_ner and its default config; `--set KEY=VALUE`
overrides hf_ner settings there (JSON values, e.g. `--set words='"model"'`).
"""
import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Set, Tuple

from scripts.conll import DEFAULT_CACHE, fetch_conll, gold_char_spans, read_conll_docs  # noqa: E402

Span = Tuple[int, int, int, str]  # (item, start, end, label)
SPLIT_FILES = {"train": "train", "dev": "valid", "test": "test"}


class Item:
    """A text to annotate: its words (with "\\n" between sentences for a
    document) and gold character spans."""

    def __init__(self, sentences: Sequence[Tuple[List[str], List[str]]]) -> None:
        self.sentences = list(sentences)
        self.words: List[str] = []
        self.spaces: List[bool] = []
        for i, (words, _) in enumerate(sentences):
            if i:
                self.words.append("\n")
                self.spaces.append(False)
            self.words.extend(words)
            self.spaces.extend([True] * (len(words) - 1) + [False])
        self.text = "\n".join(" ".join(words) for words, _ in sentences)
        self.gold = self.spans([tags for _, tags in sentences])

    def spans(self, tags: Sequence[List[str]]) -> List[Tuple[int, int, str]]:
        """Character spans in `text` of IOB tags given per sentence."""
        out, offset = [], 0
        for (words, _), sentence_tags in zip(self.sentences, tags):
            out.extend((offset + a, offset + b, t) for a, b, t in gold_char_spans(words, list(sentence_tags)))
            offset += len(" ".join(words)) + 1
        return out


def items(split: str = "test", cache_dir: Any = DEFAULT_CACHE) -> Dict[str, List[Item]]:
    """The split's sentences alone and whole documents."""
    stories = read_conll_docs(fetch_conll(cache_dir)[SPLIT_FILES[split]])
    return {
        "sentences": [Item([sentence]) for story in stories for sentence in story],
        "documents": [Item(story) for story in stories],
    }


def prf(pred: Iterable[Span], gold: Set[Span]) -> Dict[str, Any]:
    """Precision, recall and F1 of predicted spans against gold spans (a set
    comparison; kept by hand because seqeval scores tag sequences, not spans on
    different tokenizations), overall and per label."""
    pred = set(pred)

    def score(p: Set[Span], g: Set[Span]) -> Dict[str, Any]:
        tp = len(p & g)
        precision = tp / len(p) if p else 0.0
        recall = tp / len(g) if g else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": len(g)}

    out = score(pred, gold)
    labels = sorted({s[3] for s in gold})
    out["per_type"] = {label: score({s for s in pred if s[3] == label}, {s for s in gold if s[3] == label}) for label in labels}
    return out


def gold_spans(batch: Sequence[Item]) -> Set[Span]:
    return {(i, a, b, t) for i, item in enumerate(batch) for a, b, t in item.gold}


def doc_spans(docs: Iterable[Any]) -> List[Span]:
    return [(i, e.start_char, e.end_char, e.label_) for i, doc in enumerate(docs) for e in doc.ents]


def run(nlp: Any, batch: Sequence[Item], gold_tokens: bool, batch_size: int = 64) -> Tuple[Dict[str, Any], float]:
    """F1 of the pipeline's doc.ents on raw text, or on the gold tokens."""
    from spacy.tokens import Doc

    inputs: List[Any] = (
        [Doc(nlp.vocab, words=item.words, spaces=item.spaces) for item in batch]
        if gold_tokens
        else [item.text for item in batch]
    )
    if gold_tokens:
        assert all(doc.text == item.text for doc, item in zip(inputs, batch))
    start = time.perf_counter()
    docs = list(nlp.pipe(inputs, batch_size=batch_size))
    return prf(doc_spans(docs), gold_spans(batch)), time.perf_counter() - start


MODES = {"raw": False, "gold_tokens": True}


def evaluate(nlp: Any, data: Dict[str, List[Item]], modes: Sequence[str] = tuple(MODES)) -> Dict[str, Any]:
    """Raw text and gold tokens (or `modes` of them), for sentences and documents."""
    out: Dict[str, Any] = {}
    for granularity, batch in data.items():
        out[granularity] = {}
        for mode, gold_tokens in ((m, MODES[m]) for m in modes):
            metrics, secs = run(nlp, batch, gold_tokens)
            out[granularity][mode] = {**metrics, "seconds": round(secs, 1)}
    return out


def load(name: str, settings: Dict[str, Any]) -> Any:
    """A pipeline by name, or a bare model in a blank English one (see the
    module docstring)."""
    from spacy_hf_ner import load_pipeline

    return load_pipeline(name, lang="en", config=settings or None)


def parse_settings(pairs: Sequence[str]) -> Dict[str, Any]:
    settings = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


def table(results: Dict[str, Any]) -> str:
    rows = [f"{'':12} {'raw text F1':>12} {'gold tokens F1':>15}"]
    for granularity, modes in results.items():
        f1 = [f"{modes[m]['f1']:.4f}" if m in modes else "-" for m in MODES]
        rows.append(f"{granularity:12} {f1[0]:>12} {f1[1]:>15}")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", help="spaCy pipeline with hf_ner, or a token classifier")
    ap.add_argument("output", type=Path, help="metrics JSON")
    ap.add_argument("--split", default="test", choices=sorted(SPLIT_FILES))
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="hf_ner setting for a bare model (JSON value)")
    ap.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    ap.add_argument("--granularity", choices=["sentences", "documents"], action="append", default=None,
                    help="score only these (repeatable; default: both)")
    ap.add_argument("--raw-only", action="store_true", help="skip the gold-tokens runs")
    args = ap.parse_args()
    nlp = load(args.pipeline, parse_settings(args.settings))
    ner = next(pipe for _, pipe in nlp.pipeline if type(pipe).__name__ == "HFNer")
    data = items(args.split, args.cache_dir)
    data = {k: v for k, v in data.items() if k in (args.granularity or data)}
    results = evaluate(nlp, data, ["raw"] if args.raw_only else list(MODES))
    report = {
        "pipeline": args.pipeline,
        "split": args.split,
        **{f"n_{k}": len(v) for k, v in data.items()},
        "hf_ner": ner.cfg,
        **results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str))
    print(f"CoNLL-2003 {args.split}, entity F1 on character spans: {args.pipeline}")
    print(table(results))


if __name__ == "__main__":
    main()
