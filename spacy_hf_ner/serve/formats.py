"""What the server answers: the Hugging Face Inference API's payloads (as
transformers' pipelines return them), spaCy's Doc JSON with entity scores, and
displaCy HTML for the page.

The components compute (`HFNer.model_entities`, `HFTextcat.scores`); this
module only shapes their results.
"""
import html
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from spacy import displacy
from spacy.tokens import Doc

from ..aggregation import Entity
from ..ner import HFNer
from ..settings import validate_keys
from ..spans import entity_records
from ..textcat import HFTextcat
from ..windows import Window

# displaCy's entity template with the score in a tooltip (`title`)
TPL_ENT_SCORED = """
<mark class="entity" title="{title}" style="background: {bg}; padding: 0.45em 0.6em; margin: 0 0.25em; line-height: 1; border-radius: 0.35em;">
    {text}
    <span style="font-size: 0.8em; font-weight: bold; line-height: 1; border-radius: 0.35em; vertical-align: middle; margin-left: 0.5rem">{label}{kb_link}</span>
</mark>
"""


def token_classification(
    ner: HFNer,
    texts: Sequence[str],
    *,
    aggregation_strategy: Optional[str] = None,
    ignore_labels: Optional[Sequence[str]] = None,
    stride: Optional[int] = None,
) -> List[List[Dict[str, Any]]]:
    """The entities of each text as transformers' TokenClassificationPipeline
    returns them (the Hugging Face Inference API's payload): dicts with
    "entity_group", "score", "word", "start", "end" ("entity" and "index"
    instead of "entity_group" for strategy "none"), in one batched run.

    A text longer than the window is never truncated (see
    `HFNer.model_entities`). `label_map` and `threshold` are not applied (they
    belong to the spaCy annotations).
    """
    strategy = aggregation_strategy or ner.settings.aggregation_strategy
    found = ner.model_entities(texts, aggregation_strategy=strategy, ignore_labels=ignore_labels, stride=stride)
    tokenizer = ner.engine.tokenizer
    out = []
    for text, (entities, windows) in zip(texts, found):
        tokens: Dict[int, List[str]] = {}
        rows = []
        for entity in entities:
            if entity.window not in tokens:
                tokens[entity.window] = _window_tokens(ner, text, windows[entity.window])
            rows.append(_hf_dict(entity, _entity_word(tokenizer, tokens[entity.window], entity, strategy), strategy))
        out.append(rows)
    return out


def _window_tokens(ner: HFNer, text: str, window: Window) -> List[str]:
    """The strings of a window's non-special tokens, as transformers shows
    them: the vocabulary entry, or the text itself for the unknown token."""
    keep = ~window.special
    ids = window.ids[keep]
    tokens = ner.engine.tokenizer.convert_ids_to_tokens(ids.tolist())
    starts, ends = window.offsets[keep, 0], window.offsets[keep, 1]
    for r in (ids == ner.engine.unk_id).nonzero()[0].tolist():
        tokens[r] = text[starts[r] : ends[r]]
    return tokens


def _entity_word(tokenizer: Any, tokens: List[str], entity: Entity, strategy: str) -> str:
    """The "word" of an entity as transformers builds it: the token itself for
    strategy "none"; else the group's words joined by the tokenizer, each word
    first joined from its subword tokens (for "simple" every token is a word)."""
    if strategy == "none":
        return tokens[entity.words[0][0]]
    if strategy == "simple":
        return tokenizer.convert_tokens_to_string([tokens[a] for a, _ in entity.words])
    return tokenizer.convert_tokens_to_string([tokenizer.convert_tokens_to_string(tokens[a:b]) for a, b in entity.words])


def _hf_dict(entity: Entity, word: str, strategy: str) -> Dict[str, Any]:
    """An entity in the pipeline's (and Inference API's) dict format."""
    if strategy == "none":
        return {
            "entity": entity.label,
            "score": entity.score,
            "index": entity.index,
            "word": word,
            "start": entity.start,
            "end": entity.end,
        }
    return {"entity_group": entity.label, "score": entity.score, "word": word, "start": entity.start, "end": entity.end}


def text_classification(
    textcat: HFTextcat,
    inputs: Sequence[Union[str, Tuple[str, str]]],
    *,
    function_to_apply: Optional[str] = None,
    top_k: Optional[int] = None,
) -> List[List[Dict[str, Any]]]:
    """The scores of each input as transformers' TextClassificationPipeline
    returns them with `top_k` given (the Hugging Face Inference API's
    payload): `{"label", "score"}` dicts, highest first, in one batched run.

    inputs: texts, or (text, text_pair) tuples encoded together like the
        pipeline's `{"text": ..., "text_pair": ...}`.
    function_to_apply: "sigmoid", "softmax", "none" or "auto"; None: the
        component's. top_k: the k best labels; None: all.
    """
    from ..classify import top_k_scores

    validate_keys(textcat.Settings, textcat.name, function_to_apply=function_to_apply, top_k=top_k)
    function = None if function_to_apply is None else textcat.resolve_function(function_to_apply)
    texts = [item if isinstance(item, str) else item[0] for item in inputs]
    pairs = [None if isinstance(item, str) else item[1] for item in inputs]
    labels = textcat.labels
    return [
        [{"label": label, "score": score} for label, score in top_k_scores(scores, labels, top_k).items()]
        for scores in textcat.scores(texts, pairs, function)
    ]


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
