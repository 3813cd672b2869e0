"""Writing scored entity spans to a `Doc` (`doc.ents` and span groups) under an
`existing_ents` policy. The overlap rules themselves are pure and live in
`placement.py`; this module is the spaCy side of them."""
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span, SpanGroup

from .placement import Placed, merge_existing
from .ty import ExistingEnts

SCORE_ATTR = "hf_score"


def scored_span(doc: Doc, placed: Placed) -> Span:
    """A span over `placed`'s tokens with its label and `span._.hf_score`."""
    span = Span(doc, placed.start, placed.end, label=placed.label)
    span._.set(SCORE_ATTR, placed.score)
    return span


def entity_records(doc: Doc) -> List[Dict[str, Any]]:
    """`doc.ents` as plain records, as the server's `/doc` and the bulk
    annotator's rows give them: start and end (Python character offsets),
    label, text, and score (`span._.hf_score` as a float; None where no
    component registered or set it)."""
    scored = Span.has_extension(SCORE_ATTR)
    records = []
    for ent in doc.ents:
        score = ent._.get(SCORE_ATTR) if scored else None
        records.append(
            {
                "start": ent.start_char,
                "end": ent.end_char,
                "label": ent.label_,
                "text": ent.text,
                "score": None if score is None else float(score),
            }
        )
    return records


def write_span_group(doc: Doc, key: str, placed: Sequence[Placed], policy: ExistingEnts) -> Counter:
    """Write spans with their scores (`attrs["scores"]`, as spaCy's spancat) to
    `doc.spans[key]`; a group already there is treated as `policy` says.
    RETURNS (Counter): what "replace" dropped, {"docs": 1, "spans": n}, or empty."""
    spans = [scored_span(doc, p) for p in placed]
    scores: List[Optional[float]] = [p.score for p in placed]
    old = doc.spans.get(key)
    dropped: Counter = Counter()
    if old is not None and len(old):
        if policy == "replace":
            dropped.update(docs=1, spans=len(old))
        else:
            old_scores = list(old.attrs.get("scores") or [None] * len(old))
            keep_old, keep_new = merge_existing([(x.start, x.end) for x in old], [(x.start, x.end) for x in spans], policy)
            pairs = [(old[i], old_scores[i]) for i in keep_old] + [(spans[i], scores[i]) for i in keep_new]
            pairs.sort(key=lambda pair: (pair[0].start, pair[0].end))
            spans, scores = [x for x, _ in pairs], [y for _, y in pairs]
    doc.spans[key] = SpanGroup(doc, name=key, spans=spans, attrs={"scores": scores})
    return dropped


def write_ents(doc: Doc, spans: Sequence[Span], policy: ExistingEnts) -> Tuple[int, List[Span]]:
    """Write spans to `doc.ents` next to the entities already there, as `policy`
    says. RETURNS (Tuple[int, List[Span]]): how many were written, and the new
    spans refused because they overlap kept entities ("keep")."""
    existing = list(doc.ents)
    old, new = merge_existing([(e.start, e.end) for e in existing], [(e.start, e.end) for e in spans], policy)
    refused = [spans[i] for i in sorted(set(range(len(spans))) - set(new))]
    doc.set_ents(sorted([existing[i] for i in old] + [spans[i] for i in new], key=lambda s: s.start), default="outside")
    return len(new), refused
