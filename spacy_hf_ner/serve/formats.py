"""What the server answers besides the Inference API's records (those are
`spacy_hf_ner.payloads`, named by each kind): spaCy's Doc JSON with entity
scores, and displaCy HTML for the page.
"""
import html
import re
from typing import Any, Dict, Optional, Sequence

from spacy import displacy
from spacy.tokens import Doc

from ..spans import entity_records

# displaCy's entity template with the score in a tooltip (`title`)
TPL_ENT_SCORED = """
<mark class="entity" title="{title}" style="background: {bg}; padding: 0.45em 0.6em; margin: 0 0.25em; line-height: 1; border-radius: 0.35em;">
    {text}
    <span style="font-size: 0.8em; font-weight: bold; line-height: 1; border-radius: 0.35em; vertical-align: middle; margin-left: 0.5rem">{label}{kb_link}</span>
</mark>
"""


def doc_json(doc: Doc) -> Dict[str, Any]:
    """`Doc.to_json()` (tokens with pos/tag/dep/head, sents, cats) with each
    entity's text and score."""
    data = doc.to_json()
    data["ents"] = entity_records(doc)
    data.setdefault("cats", {})
    return data


def render_entities(text: str, entities: Sequence[Dict[str, Any]]) -> str:
    """displaCy's entity view of character-offset entities, each with its score
    in a tooltip. Labels are HTML-escaped (displaCy escapes only the text), so a
    model's label cannot inject markup into the page."""
    ents = [
        {
            "start": e["start"],
            "end": e["end"],
            "label": html.escape(e["label"], quote=True),  # displaCy inserts labels as they are
            "params": {
                "title": html.escape(
                    f"{e['label']} {e['score']:.3f}" if e.get("score") is not None else e["label"], quote=True
                )
            },
        }
        for e in sorted(entities, key=lambda e: (e["start"], -e["end"]))
    ]
    ents = [e for i, e in enumerate(ents) if i == 0 or e["start"] >= ents[i - 1]["end"]]
    return displacy.render(
        {"text": text, "ents": ents, "title": None},
        style="ent",
        manual=True,
        page=False,
        options={"template": TPL_ENT_SCORED},
    )


def render_dependencies(doc: Doc) -> Optional[str]:
    """displaCy's dependency view of each sentence, or None without a parse;
    tags and arc labels HTML-escaped."""
    if not doc.has_annotation("DEP"):
        return None
    options = {"compact": True, "distance": DEP_DISTANCE}
    svgs = []
    for sent in doc.sents:
        parsed = displacy.parse_deps(sent, options)
        for word in parsed["words"]:  # displaCy escapes only the word's text
            for key in ("tag", "lemma"):
                if word.get(key) is not None:
                    word[key] = html.escape(word[key], quote=True)
        for arc in parsed["arcs"]:
            arc["label"] = html.escape(arc["label"], quote=True)
        svgs.append(_fit(displacy.render(parsed, style="dep", manual=True, page=False, options=options)))
    return "\n".join(svgs)


# pixels per word of the dependency view (displaCy's compact default is 150)
DEP_DISTANCE = 100
_SVG_HEAD = re.compile(r'<svg\b[^>]*\bwidth="([\d.]+)" height="([\d.]+)"[^>]*>')
_PATH = re.compile(r'<path\b[^>]*\bd="([^"]*)"')
_NUMBER_PAIR = re.compile(r"(-?[\d.]+)\s*,\s*(-?[\d.]+)")


def _fit(svg: str) -> str:
    """A displaCy dependency SVG cropped to its arcs and scaled to the width
    of its container. displaCy leaves room above the arcs for arcs three times
    as high as compact mode draws them (`distance / 2` per level instead of
    `/ 6`), and sets a fixed pixel width; the crop moves the top of the
    viewBox to the highest arc (less a margin for its label), and the SVG
    shrinks to fit its container, never grows."""
    head = _SVG_HEAD.search(svg)
    if head is None:
        return svg
    width, height = float(head.group(1)), float(head.group(2))
    ys = [float(y) for d in _PATH.findall(svg) for _, y in _NUMBER_PAIR.findall(d)]
    top = max(0.0, min(ys) - 24) if ys else 0.0
    shown = height - top
    new_head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" class="displacy" '
        f'viewBox="0 {top:.1f} {width:.1f} {shown:.1f}" width="{width:.0f}" height="{shown:.0f}" '
        f'preserveAspectRatio="xMinYMin meet" '
        f'style="max-width: 100%; height: auto; color: #000000; background: #ffffff; font-family: Arial">'
    )
    return svg[: head.start()] + new_head + svg[head.end() :]
