"""The Hugging Face Inference API's records, as transformers' pipelines return
them: what each kind's `Serving.records` gives for its route.

The components compute (`HFNer.find_model_entities`, `HFTextcat.scores`, the
tagger's annotations); this module only shapes their results. Parameters
arrive checked (the server's request models validate them), so nothing is
validated again here. No spaCy import: components are reached through the
pipeline `nlp` they are given with.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .aggregation import Entity
from .errors import Errors, SpacyHFNerError
from .windows import Window


def token_classification(
    nlp: Any,
    name: str,
    texts: Sequence[str],
    *,
    aggregation_strategy: Optional[str] = None,
    ignore_labels: Optional[Sequence[str]] = None,
    stride: Optional[int] = None,
) -> List[List[Dict[str, Any]]]:
    """The entities of each text as transformers' TokenClassificationPipeline
    returns them (the Inference API's payload) from the `hf_ner` component
    `name`: dicts with "entity_group", "score", "word", "start", "end" ("entity"
    and "index" instead of "entity_group" for strategy "none"), in one batched
    run. A text longer than the window is never truncated (see
    `HFNer.model_entities`). `label_map` and `threshold` are not applied (they
    belong to the spaCy annotations).
    """
    ner = nlp.get_pipe(name)
    strategy = aggregation_strategy or ner.settings.aggregation_strategy
    ignore = ner.settings.ignore_labels if ignore_labels is None else list(ignore_labels)
    found = ner.find_model_entities(texts, strategy, ignore, stride)
    tokenizer = ner.runtime.tokenizer
    out = []
    for text, (entities, windows) in zip(texts, found):
        tokens: Dict[int, List[str]] = {}
        rows = []
        for entity in entities:
            if entity.window not in tokens:
                tokens[entity.window] = _window_tokens(ner.runtime, text, windows[entity.window])
            rows.append(_hf_dict(entity, _entity_word(tokenizer, tokens[entity.window], entity, strategy), strategy))
        out.append(rows)
    return out


def _window_tokens(runtime: Any, text: str, window: Window) -> List[str]:
    """The strings of a window's non-special tokens, as transformers shows
    them: the vocabulary entry, or the text itself for the unknown token."""
    keep = ~window.special
    ids = window.ids[keep]
    tokens = runtime.tokenizer.convert_ids_to_tokens(ids.tolist())
    starts, ends = window.offsets[keep, 0], window.offsets[keep, 1]
    for r in (ids == runtime.unk_id).nonzero()[0].tolist():
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
    nlp: Any,
    name: str,
    inputs: Sequence[Union[str, Tuple[str, str]]],
    *,
    function_to_apply: Optional[str] = None,
    top_k: Optional[int] = None,
) -> List[List[Dict[str, Any]]]:
    """The scores of each input as transformers' TextClassificationPipeline
    returns them with `top_k` given (the Inference API's payload) from the
    `hf_textcat` component `name`: `{"label", "score"}` dicts, highest first, in
    one batched run.

    inputs: texts, or (text, text_pair) tuples encoded together like the
        pipeline's `{"text": ..., "text_pair": ...}`.
    function_to_apply: "sigmoid", "softmax", "none" or "auto"; None: the
        component's. top_k: the k best labels; None: all.
    """
    from .classify import top_k_scores

    textcat = nlp.get_pipe(name)
    function = None if function_to_apply is None else textcat.resolve_function(function_to_apply)
    texts = [item if isinstance(item, str) else item[0] for item in inputs]
    pairs = [None if isinstance(item, str) else item[1] for item in inputs]
    labels = textcat.labels
    return [
        [{"label": label, "score": score} for label, score in top_k_scores(scores, labels, top_k).items()]
        for scores in textcat.scores(texts, pairs, function)
    ]


def tag_records(
    nlp: Any, name: str, texts: Sequence[str], *, ignore_labels: Optional[Sequence[str]] = None, **fixed: Any
) -> List[List[Dict[str, Any]]]:
    """The tags of each text from the `hf_tagger` component `name`, on the
    token-classification route: one record per tagged spaCy token,
    `{"entity_group": tag, "score", "word", "start", "end"}` (the tag as the
    component writes it, `label_map` applied), tags in `ignore_labels` left
    out. The tagger pools subwords with its own `aggregation_strategy` and
    windows with its own `stride`, so a request may not set them (`fixed`:
    E127 for one given)."""
    for key, value in fixed.items():
        if value is not None:
            raise SpacyHFNerError(Errors.E127.format(key=key, value=value, name=name, factory="hf_tagger"))
    tagger = nlp.get_pipe(name)
    ignore = set(ignore_labels or ())
    docs = list(tagger.pipe(nlp.make_doc(text) for text in texts))
    attr = f"{tagger.attr}_"
    return [
        [
            {"entity_group": tag, "score": float(token._.hf_tag_score), "word": token.text, "start": token.idx,
             "end": token.idx + len(token)}
            for token in doc
            if token._.hf_tag_score is not None and (tag := getattr(token, attr)) and tag not in ignore
        ]
        for doc in docs
    ]
