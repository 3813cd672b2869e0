"""displaCy for spacy-hf-ner: the labels' colours, and gold vs predicted
entities of an evaluation set.

`LABEL_COLORS` is registered through spaCy's `spacy_displacy_colors` entry point
(setup.cfg), so every displaCy use (`displacy.render`, `displacy.serve`, the
server's page) colours CoNLL's PER and MISC, which displaCy's own palette (made
for OntoNotes labels) leaves grey. ORG and LOC have displaCy colours already.

    spacy-hf-ner displacy PIPELINE DATA.spacy OUTPUT_DIR [--limit 25] [--errors-only]

writes OUTPUT_DIR/entities.html: each doc of DATA twice, the gold entities and
those the pipeline predicts from the doc's raw text (as `spacy evaluate`
reads it). `spacy evaluate --displacy-path` renders entities only for a
component made by the factory `ner`, so it writes nothing for `hf_ner`.

No spaCy import at module level: the entry point loads this module on every
displaCy render.
"""
import argparse
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from .errors import Errors

# displaCy's colours of the OntoNotes types the CoNLL labels correspond to:
# PER as PERSON, MISC as NORP (nationalities, events, works are MISC in CoNLL)
LABEL_COLORS: Dict[str, str] = {"PER": "#aa9cfc", "MISC": "#c887fb"}

Span = Tuple[int, int, str]  # start char, end char, label


def entity_spans(doc: Any) -> List[Span]:
    """A doc's entities as (start char, end char, label)."""
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def compare(gold: Sequence[Span], predicted: Sequence[Span]) -> Dict[str, int]:
    """Exact-match counts: `correct` (same offsets and label), `missed` (gold
    not predicted), `wrong` (predicted not gold)."""
    correct = len(set(gold) & set(predicted))
    return {"correct": correct, "missed": len(set(gold)) - correct, "wrong": len(set(predicted)) - correct}


def manual(text: str, spans: Iterable[Span], title: str) -> Dict[str, Any]:
    """displaCy's manual entity format."""
    ents = [{"start": s, "end": e, "label": label} for s, e, label in sorted(spans)]
    return {"text": text, "ents": ents, "title": title}


def scored_spans(doc: Any, key: str, *, digits: int = 2) -> Dict[str, Any]:
    """`doc.spans[key]` in displaCy's manual span format, each label followed by
    its score from the group's `attrs["scores"]` (as hf_ner with annotate
    "spans"/"both" and spaCy's spancat write them), for
    `displacy.render(data, style="span", manual=True)`. Overlapping spans stay
    (the span view stacks them). A group without scores shows its labels."""
    group = doc.spans[key]
    scores = group.attrs.get("scores") or [None] * len(group)
    spans = [
        {"start_token": s.start, "end_token": s.end, "label": s.label_ if v is None else f"{s.label_} {float(v):.{digits}f}"}
        for s, v in zip(group, scores)
    ]
    return {"text": doc.text, "tokens": [t.text for t in doc], "spans": spans}


def evaluation_pages(
    pairs: Sequence[Tuple[Any, Any]], *, errors_only: bool = False, limit: int = 25
) -> Tuple[List[Dict[str, Any]], Dict[str, int]]:
    """displaCy manual entries, gold then predicted, for (gold doc, predicted
    doc) pairs, and the exact-match counts over all pairs. With `errors_only`,
    only docs whose prediction differs from gold are rendered; at most `limit`
    docs are rendered (the counts cover all)."""
    entries: List[Dict[str, Any]] = []
    totals = {"docs": 0, "docs_rendered": 0, "docs_with_errors": 0, "correct": 0, "missed": 0, "wrong": 0}
    for i, (gold, predicted) in enumerate(pairs):
        g, p = entity_spans(gold), entity_spans(predicted)
        counts = compare(g, p)
        totals["docs"] += 1
        for key, value in counts.items():
            totals[key] += value
        differs = counts["missed"] or counts["wrong"]
        totals["docs_with_errors"] += bool(differs)
        if totals["docs_rendered"] >= limit or (errors_only and not differs):
            continue
        totals["docs_rendered"] += 1
        entries.append(manual(gold.text, g, f"#{i} gold: {len(g)} entities"))
        summary = f"{counts['correct']} correct, {counts['missed']} missed, {counts['wrong']} wrong"
        entries.append(manual(predicted.text, p, f"#{i} predicted: {summary}"))
    return entries, totals


def render_evaluation(nlp: Any, data: Path, output_dir: Path, *, limit: int = 25, errors_only: bool = False) -> Dict[str, int]:
    """Write `output_dir`/entities.html: gold vs predicted entities of the
    evaluation set `data` (a .spacy file or a folder of them). The pipeline
    reads each doc's raw text, as `spacy evaluate` does.

    RETURNS (Dict[str, int]): the exact-match counts (see `evaluation_pages`).
    """
    from spacy import displacy
    from spacy.training import Corpus

    if not data.exists():
        raise ValueError(Errors.E143.format(path=data))
    golds = [eg.reference for eg in Corpus(data)(nlp)]
    predicted = nlp.pipe(doc.text for doc in golds)
    entries, totals = evaluation_pages(list(zip(golds, predicted)), errors_only=errors_only, limit=limit)
    output_dir.mkdir(parents=True, exist_ok=True)
    html = displacy.render(entries, style="ent", manual=True, page=True) if entries else "<p>no docs to show</p>"
    (output_dir / "entities.html").write_text(html, encoding="utf8")
    return totals


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The command's arguments (`spacy-hf-ner displacy`)."""
    ap.add_argument("pipeline", help="a spaCy pipeline (folder or package) that writes doc.ents")
    ap.add_argument("data", type=Path, help="evaluation set: .spacy file (or folder) with gold entities")
    ap.add_argument("output_dir", type=Path, help="folder for entities.html (created)")
    ap.add_argument("--limit", type=int, default=25, help="docs to render (default: %(default)s)")
    ap.add_argument("--errors-only", action="store_true", help="render only docs whose prediction differs from gold")
    ap.add_argument("--gpu-id", type=int, default=-1, help="GPU to use (default: %(default)s, the CPU)")


def run(args: argparse.Namespace) -> int:
    """Render; returns the exit status."""
    import spacy

    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    try:
        nlp = spacy.load(args.pipeline)
        totals = render_evaluation(nlp, args.data, args.output_dir, limit=args.limit, errors_only=args.errors_only)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(
        f"{args.output_dir / 'entities.html'}: {totals['docs_rendered']} of {totals['docs']} docs "
        f"({totals['docs_with_errors']} with errors); entities {totals['correct']} correct, "
        f"{totals['missed']} missed, {totals['wrong']} wrong"
    )
    return 0
