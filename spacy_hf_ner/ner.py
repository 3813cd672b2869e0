"""`hf_ner`: a Hugging Face token-classification model as spaCy's entity recognizer."""
import warnings
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Literal, Optional, Sequence, Union

import numpy as np
from spacy.language import Language

from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example
from spacy.util import registry
from spacy.vocab import Vocab

from .aggregation import (
    STRATEGIES,
    Entity,
    TokenEntity,
    aggregate_on_tokens,
    aggregate_window,
    aggregate_window_words,
    merge_overlapping,
    subword_flags,
)
from .alignment import Placed, resolve_overlaps, snap, strip_span
from .engine import HFEngine, softmax
from .errors import Errors, HFNerWarning, Warnings
from .pipe import HFPipe, token_arrays
from .training import TrainableMixin
from .tokenscores import merge_windows
from .tags import bio_labels, detect_scheme, entity_type, from_biluo
from .tokenscores import IGNORE_INDEX

SCORE_ATTR = "hf_score"

Strategy = Literal["none", "simple", "first", "average", "max"]


@Language.factory(
    "hf_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_config={
        "model": "spacy-hf-ner:en_conll03",
        "revision": None,
        "aggregation_strategy": "first",
        "words": "spacy",
        "decoding": "greedy",
        "ignore_labels": ["O"],
        "stride": None,
        "max_length": None,
        "batch_size": 64,
        "device": "auto",
        "dtype": "float32",
        "backend": "torch",
        "onnx_file": None,
        "annotate": "ents",
        "spans_key": "hf_ner",
        "label_map": {},
        "threshold": 0.0,
        "existing_ents": "replace",
        "scorer": {"@scorers": "spacy-hf-ner.ner_scorer.v1"},
    },
    default_score_weights={
        "ents_f": 1.0,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "ents_per_type": None,
    },
)
def make_hf_ner(
    nlp: Language,
    name: str,
    model: str,
    revision: Optional[str],
    aggregation_strategy: Strategy,
    words: Literal["spacy", "model"],
    decoding: Literal["greedy", "viterbi"],
    ignore_labels: List[str],
    stride: Optional[int],
    max_length: Optional[int],
    batch_size: int,
    device: str,
    dtype: Literal["float32", "float16", "bfloat16"],
    backend: Literal["torch", "onnx"],
    onnx_file: Optional[str],
    annotate: Literal["ents", "spans", "both"],
    spans_key: str,
    label_map: Dict[str, str],
    threshold: float,
    existing_ents: Literal["replace", "overwrite", "keep"],
    scorer: Optional[Callable],
) -> "HFNer":
    """Create an `hf_ner` component. See `HFNer` for the arguments."""
    return HFNer(
        nlp.vocab,
        name=name,
        model=model,
        revision=revision,
        aggregation_strategy=aggregation_strategy,
        words=words,
        decoding=decoding,
        ignore_labels=ignore_labels,
        stride=stride,
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        backend=backend,
        onnx_file=onnx_file,
        annotate=annotate,
        spans_key=spans_key,
        label_map=label_map,
        threshold=threshold,
        existing_ents=existing_ents,
        scorer=scorer,
    )


def ner_score(
    examples: Iterable[Example],
    *,
    annotate: str = "ents",
    spans_key: str = "hf_ner",
    **kwargs: Any,
) -> Dict[str, Any]:
    """Score entities: ents_p/r/f and ents_per_type (as spaCy's ner), and with
    spans output spans_{key}_p/r/f and per type."""
    examples = list(examples)
    scores: Dict[str, Any] = {}
    if annotate in ("ents", "both"):
        scores.update(get_ner_prf(examples))
    if annotate in ("spans", "both"):
        scores.update(
            Scorer.score_spans(
                examples,
                f"spans_{spans_key}",
                getter=lambda doc, attr: doc.spans.get(spans_key, []),
                has_annotation=lambda doc: spans_key in doc.spans,
                allow_overlap=True,
                **kwargs,
            )
        )
    return scores


@registry.scorers("spacy-hf-ner.ner_scorer.v1")
def make_ner_scorer() -> Callable:
    return ner_score


class HFNer(TrainableMixin, HFPipe):
    """Run a Hugging Face token-classification model and write its entities to
    `doc.ents` and/or `doc.spans[spans_key]`, each with a score.

    The model is loaded on `nlp.initialize()` or on the first doc, so that
    `spacy.load` of a saved pipeline reads the weights saved with it and never
    the hub.
    """

    def __init__(
        self,
        vocab: Vocab,
        name: str = "hf_ner",
        *,
        model: str,
        revision: Optional[str] = None,
        aggregation_strategy: str = "first",
        words: str = "spacy",
        decoding: str = "greedy",
        ignore_labels: Sequence[str] = ("O",),
        stride: Optional[int] = None,
        max_length: Optional[int] = None,
        batch_size: int = 64,
        device: str = "auto",
        dtype: str = "float32",
        backend: str = "torch",
        onnx_file: Optional[str] = None,
        annotate: str = "ents",
        spans_key: str = "hf_ner",
        label_map: Optional[Dict[str, str]] = None,
        threshold: float = 0.0,
        existing_ents: str = "replace",
        scorer: Optional[Callable] = ner_score,
    ) -> None:
        """Initialize the component.

        model (str): Hugging Face hub id or local directory of a token classifier.
        revision (Optional[str]): hub revision (branch, tag or commit).
        aggregation_strategy (str): "none", "simple", "first", "average" or "max",
            with the semantics of transformers' TokenClassificationPipeline.
        words (str): "spacy" aggregates subword scores over spaCy's tokens; "model"
            finds words as transformers does (exact transformers entities, then
            snapped to spaCy tokens).
        decoding (str): with `words` = "spacy", "greedy" labels each word with its
            best label, as transformers does; "viterbi" labels each run of words
            with the best label sequence the tag scheme allows (no entity begins
            with "I-"), which is usually more accurate.
        ignore_labels (Sequence[str]): labels (or entity groups) never written.
        stride (Optional[int]): overlap between windows of a long text, in model
            tokens; None: an eighth of the window.
        max_length (Optional[int]): window length in model tokens; None: the
            model's own limit.
        batch_size (int): windows per forward pass.
        device (str): "auto", "cpu", "cuda", "cuda:N" or "mps".
        dtype (str): "float32", "float16" or "bfloat16" weights (backend "torch").
        backend (str): "torch" runs the transformers model; "onnx" runs an ONNX
            export of it with ONNX Runtime (inference only; `pip install
            spacy-hf-ner[onnx]`).
        onnx_file (Optional[str]): with backend "onnx", the .onnx file inside the
            model, e.g. "onnx/model_q4.onnx"; None: "onnx/model.onnx", else
            "model.onnx".
        annotate (str): write "ents", "spans" or "both".
        spans_key (str): key in doc.spans for annotate "spans"/"both".
        label_map (Optional[Dict[str, str]]): rename entity labels, e.g. PER->PERSON.
        threshold (float): entities scoring below it are not written.
        existing_ents (str): entities already in doc.ents: "replace" drops them,
            "overwrite" keeps those that don't overlap new ones, "keep" keeps all
            and adds only new ones that don't overlap them.
        scorer (Optional[Callable]): scoring method, default ner_score.
        """
        self.vocab = vocab
        self.name = name
        if words == "spacy" and aggregation_strategy in ("none", "simple"):
            raise ValueError(Errors.E008.format(name=name, strategy=aggregation_strategy))
        if decoding not in ("greedy", "viterbi") or (decoding == "viterbi" and words != "spacy"):
            raise ValueError(
                Errors.E009.format(
                    name=name,
                    key="decoding",
                    value=decoding,
                    problem=(
                        "is not a decoding"
                        if decoding not in ("greedy", "viterbi")
                        else "needs `words` = 'spacy' (`words` = 'model' returns transformers' own entities)"
                    ),
                    fix="use 'greedy', or 'viterbi' with `words` = 'spacy'",
                )
            )
        if aggregation_strategy not in STRATEGIES:
            raise ValueError(
                Errors.E009.format(
                    name=name,
                    key="aggregation_strategy",
                    value=aggregation_strategy,
                    problem="is not a strategy",
                    fix=f"use one of {', '.join(STRATEGIES)}",
                )
            )
        for key, value, ok, fix in (
            ("batch_size", batch_size, batch_size >= 1, "use a positive number, e.g. 64"),
            ("threshold", threshold, 0.0 <= threshold <= 1.0, "use a score in [0, 1]"),
            ("stride", stride, stride is None or stride >= 0, "use null or a count >= 0"),
        ):
            if not ok:
                raise ValueError(
                    Errors.E009.format(
                        name=name, key=key, value=value, problem="is out of range", fix=fix
                    )
                )
        self.cfg: Dict[str, Any] = {
            "aggregation_strategy": aggregation_strategy,
            "words": words,
            "decoding": decoding,
            "ignore_labels": list(ignore_labels),
            "stride": stride,
            "batch_size": batch_size,
            "annotate": annotate,
            "spans_key": spans_key,
            "label_map": dict(label_map or {}),
            "threshold": threshold,
            "existing_ents": existing_ents,
        }
        self.engine = HFEngine(
            model,
            revision=revision,
            task="token",
            device=device,
            dtype=dtype,
            backend=backend,
            onnx_file=onnx_file,
            max_length=max_length,
            name=name,
            factory="hf_ner",
        )
        self.scorer = scorer
        self.stats: Counter = Counter()
        if not Span.has_extension(SCORE_ATTR):
            Span.set_extension(SCORE_ATTR, default=None)

    # -- spaCy API ------------------------------------------------------------

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        """Load the model, and prepare it for training when the examples carry
        gold entities (as under `spacy train`).

        A model whose token-classification head already knows every entity type
        of the data (after `label_map`) keeps its head and is fine-tuned as it
        is. Any other model, such as a plain encoder, gets a new IOB2 head over
        the data's entity types (`labels` overrides them), initialized by
        transformers.

        get_examples (Callable[[], Iterable[Example]]): training examples.
        nlp (Language): the pipeline.
        labels (Optional[List[str]]): entity types of a new head, e.g. from
            `[initialize.components.hf_ner.labels]`.
        """
        examples = list(get_examples()) if get_examples is not None else []
        gold = [eg for eg in examples if eg.reference.has_annotation("ENT_IOB")]
        if labels is None and not gold:
            self._ensure_loaded()  # a pretrained model for inference
            return
        inverse = self._inverse_label_map()
        types = labels if labels is not None else sorted(
            {ent.label_ for eg in gold for ent in eg.reference.ents}
        )
        if not types:
            raise ValueError(Errors.E011.format(name=self.name, what="entities"))
        wanted = sorted({inverse.get(t, t) for t in types})
        ignore = set(self.cfg["ignore_labels"])
        self._prepare_head(
            wanted,
            bio_labels(wanted, outside=_outside(ignore)),
            known=lambda head: {entity_type(l) for l in head if l not in ignore},
            keep=labels is None,
        )

    def _gold_token_targets(self, example: Example) -> np.ndarray:
        """Gold label ids of the predicted doc's tokens in the model's tag scheme
        (-100 where the gold is missing or has a type the head lacks)."""
        label2id = {l: i for i, l in enumerate(self.engine.id2label)}
        inverse = self._inverse_label_map()
        outside = _outside(self.cfg["ignore_labels"])
        out = np.full(len(example.predicted), IGNORE_INDEX, dtype=np.int64)
        for i, tag in enumerate(example.get_aligned_ner()):
            if tag is None or tag == "-":
                continue
            if tag != "O":
                tag = tag[:2] + inverse.get(tag[2:], tag[2:])
            out[i] = label2id.get(from_biluo(tag, self._scheme, outside), IGNORE_INDEX)
        return out

    @property
    def labels(self) -> List[str]:
        """Entity labels the component can write (after `label_map`); empty until
        the model is loaded (spaCy reads labels for `nlp.meta`, which must not load
        a model)."""
        if not self.engine.is_loaded:
            return []
        types = {entity_type(l) for l in self.engine.id2label}
        ignore = set(self.cfg["ignore_labels"])
        mapping = self.cfg["label_map"]
        return sorted({mapping.get(t, t) for t in types if t not in ignore})

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        if self.scorer is None:
            return {}
        return self.scorer(
            examples, annotate=self.cfg["annotate"], spans_key=self.cfg["spans_key"], **kwargs
        )

    # -- prediction -------------------------------------------------------------

    def _after_load(self) -> None:
        engine = self.engine
        self._stride = engine.resolve_stride(self.cfg["stride"])
        self._scheme = detect_scheme(engine.id2label, self.cfg["ignore_labels"])
        if (
            self.cfg["words"] == "model"
            and self.cfg["aggregation_strategy"] in ("first", "average", "max")
            and not engine.word_aware
        ):
            warnings.warn(Warnings.W002.format(name=self.name, model=engine.model_name), HFNerWarning)

    def predict(self, docs: Sequence[Doc]) -> List[List[Union[Entity, TokenEntity]]]:
        """The entities of each doc, before they are written.

        With `words` = "model": `Entity` objects in character offsets, exactly as
        transformers' pipeline returns them (same strategy, ignore_labels and
        stride). With `words` = "spacy": `TokenEntity` objects over the doc's tokens.
        """
        self._ensure_loaded()
        engine = self.engine
        results: List[List[Union[Entity, TokenEntity]]] = [[] for _ in docs]
        texts = [doc.text for doc in docs]
        windows = engine.encode(texts, self._stride)
        if not windows:
            return results
        logits = engine.logits(windows, self.cfg["batch_size"])
        per_doc: List[List[int]] = [[] for _ in docs]
        for i, window in enumerate(windows):
            per_doc[window.doc].append(i)
        for d, doc in enumerate(docs):
            mine = [(windows[i], softmax(logits[i])) for i in per_doc[d]]
            if self.cfg["words"] == "model":
                results[d] = list(self._model_words(texts[d], mine))
            else:
                results[d] = list(self._spacy_words(doc, texts[d], mine))
        return results

    def hf_entities(
        self,
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

        Unlike the pipeline, a text longer than the window is never truncated:
        it is cut into windows overlapping by `stride` tokens, whose entities are
        merged as the pipeline merges them when given a `stride`. `label_map` and
        `threshold` are not applied (they belong to the spaCy annotations).

        texts (Sequence[str]): the texts.
        aggregation_strategy (Optional[str]): "none", "simple", "first", "average"
            or "max"; None: the component's.
        ignore_labels (Optional[Sequence[str]]): labels or groups left out; None:
            the component's.
        stride (Optional[int]): window overlap in model tokens; None: the
            component's.
        RETURNS (List[List[Dict[str, Any]]]): one list of entities per text.
        """
        self._ensure_loaded()
        strategy = aggregation_strategy or self.cfg["aggregation_strategy"]
        if strategy not in STRATEGIES:
            raise ValueError(
                Errors.E009.format(
                    name=self.name,
                    key="aggregation_strategy",
                    value=strategy,
                    problem="is not a strategy",
                    fix=f"use one of {', '.join(STRATEGIES)}",
                )
            )
        ignore = list(self.cfg["ignore_labels"] if ignore_labels is None else ignore_labels)
        engine = self.engine
        window_stride = self._stride if stride is None else engine.resolve_stride(stride)
        results: List[List[Dict[str, Any]]] = [[] for _ in texts]
        windows = engine.encode(texts, window_stride)
        if not windows:
            return results
        logits = engine.logits(windows, self.cfg["batch_size"])
        per_text: List[List[int]] = [[] for _ in texts]
        for i, window in enumerate(windows):
            per_text[window.doc].append(i)
        tokenizer = engine.tokenizer
        for t, text in enumerate(texts):
            found: List[Entity] = []
            words: Dict[Any, str] = {}
            for i in per_text[t]:
                window = windows[i]
                keep = ~window.special
                ids = window.ids[keep]
                starts, ends = window.offsets[keep, 0], window.offsets[keep, 1]
                unknown = ids == engine.unk_id
                is_subword = subword_flags(
                    engine.token_lengths[ids], starts, ends, unknown, text, engine.word_aware
                )
                tokens = tokenizer.convert_ids_to_tokens(ids.tolist())
                for r in np.flatnonzero(unknown).tolist():
                    tokens[r] = text[starts[r] : ends[r]]
                for entity, spans in aggregate_window_words(
                    softmax(logits[i])[keep],
                    starts,
                    ends,
                    is_subword,
                    np.flatnonzero(keep),
                    engine.id2label,
                    strategy,
                    ignore,
                ):
                    found.append(entity)
                    words[entity] = _entity_word(tokenizer, tokens, spans, strategy)
            if len(per_text[t]) > 1:
                found = merge_overlapping(found)
            results[t] = [_hf_dict(entity, words[entity], strategy) for entity in found]
        return results

    def _model_words(self, text: str, windows: List[Any]) -> List[Entity]:
        engine = self.engine
        entities: List[Entity] = []
        for window, probs in windows:
            keep = ~window.special
            ids = window.ids[keep]
            starts, ends = window.offsets[keep, 0], window.offsets[keep, 1]
            is_subword = subword_flags(
                engine.token_lengths[ids],
                starts,
                ends,
                ids == engine.unk_id,
                text,
                engine.word_aware,
            )
            entities.extend(
                aggregate_window(
                    probs[keep],
                    starts,
                    ends,
                    is_subword,
                    np.flatnonzero(keep),
                    engine.id2label,
                    self.cfg["aggregation_strategy"],
                    self.cfg["ignore_labels"],
                )
            )
        if len(windows) > 1:
            entities = merge_overlapping(entities)
        return entities

    def _spacy_words(self, doc: Doc, text: str, windows: List[Any]) -> List[TokenEntity]:
        if len(doc) == 0:
            return []
        starts, ends, probs = merge_windows(
            text, [(window.offsets, window.special, probs) for window, probs in windows]
        )
        tok_starts, tok_ends, tok_space = token_arrays(doc)
        return aggregate_on_tokens(
            probs,
            starts,
            ends,
            tok_starts,
            tok_ends,
            tok_space,
            self.engine.id2label,
            self.cfg["aggregation_strategy"],
            self._scheme,
            self.cfg["ignore_labels"],
            self.cfg["decoding"],
        )

    # -- annotation -------------------------------------------------------------

    def set_annotations(
        self, docs: Sequence[Doc], predictions: Sequence[Sequence[Union[Entity, TokenEntity]]]
    ) -> None:
        """Write predicted entities to the docs (doc.ents and/or doc.spans)."""
        cfg = self.cfg
        label_map = cfg["label_map"]
        strip_prefix = cfg["aggregation_strategy"] == "none"
        problems: List[str] = []
        reasons: Counter = Counter()
        for doc, entities in zip(docs, predictions):
            placed: List[Placed] = []
            tok_arrays = None
            text = None  # doc.text joins every token: read it once per doc
            for i, ent in enumerate(entities):
                self.stats["predicted"] += 1
                if ent.score < cfg["threshold"]:
                    self.stats["below_threshold"] += 1
                    continue
                label = entity_type(ent.label) if strip_prefix else ent.label
                label = label_map.get(label, label)
                if isinstance(ent, TokenEntity):
                    placed.append(Placed(label, ent.score, ent.start, ent.end, i, False))
                    continue
                if tok_arrays is None:
                    tok_arrays, text = token_arrays(doc), doc.text
                start, end = strip_span(text, ent.start, ent.end)
                where = snap(start, end, *tok_arrays)
                if where is None:
                    self.stats["unplaced"] += 1
                    reasons["covers no text"] += 1
                    problems.append(f"{text[ent.start:ent.end]!r} ({label}) at {ent.start}")
                    continue
                placed.append(Placed(label, ent.score, where[0], where[1], i, where[2]))
            kept, merged, lost = resolve_overlaps(placed)
            self.stats["snapped"] += sum(p.snapped for p in kept)
            self.stats["merged"] += len(merged)
            self.stats["conflicts"] += len(lost)
            for p in lost:
                reasons["overlap with a higher-scoring entity"] += 1
                problems.append(f"{doc[p.start:p.end].text!r} ({p.label})")
            if cfg["annotate"] in ("spans", "both"):
                group = sorted(kept + lost, key=lambda p: (p.start, p.end))
                doc.spans[cfg["spans_key"]] = SpanGroup(
                    doc,
                    name=cfg["spans_key"],
                    spans=[self._span(doc, p) for p in group],
                    attrs={"scores": [p.score for p in group]},
                )
            if cfg["annotate"] in ("ents", "both"):
                written = self._write_ents(doc, [self._span(doc, p) for p in kept], reasons, problems)
            else:
                written = len(kept)
            self.stats["written"] += written
        if problems:
            count = len(problems)
            hint = (
                f"; annotate='both' keeps overlapping ones in doc.spans['{cfg['spans_key']}']"
                if cfg["annotate"] == "ents"
                else ""
            )
            warnings.warn(
                Warnings.W001.format(
                    name=self.name,
                    count=count,
                    ies="y" if count == 1 else "ies",
                    reasons=", ".join(f"{n} {r}" for r, n in reasons.items()),
                    examples="; ".join(problems[:3]),
                    hint=hint,
                ),
                HFNerWarning,
            )

    def _span(self, doc: Doc, placed: Placed) -> Span:
        span = Span(doc, placed.start, placed.end, label=placed.label)
        span._.set(SCORE_ATTR, placed.score)
        return span

    def _write_ents(self, doc: Doc, spans: List[Span], reasons: Counter, problems: List[str]) -> int:
        """Write spans to doc.ents under the `existing_ents` policy; returns how many
        of them were written."""
        policy = self.cfg["existing_ents"]
        existing = list(doc.ents)
        if policy == "replace" or not existing:
            doc.set_ents(spans, default="outside")
            return len(spans)
        first, second = (existing, spans) if policy == "keep" else (spans, existing)
        taken = np.zeros(len(doc), dtype=bool)
        for span in first:
            taken[span.start : span.end] = True
        final = list(first)
        for span in second:
            if taken[span.start : span.end].any():
                if policy == "keep":
                    self.stats["kept_existing"] += 1
                    reasons["overlap with an existing entity (existing_ents='keep')"] += 1
                    problems.append(f"{span.text!r} ({span.label_})")
                continue
            final.append(span)
        doc.set_ents(sorted(final, key=lambda s: s.start), default="outside")
        return len(spans) if policy == "overwrite" else len(final) - len(existing)


def _entity_word(tokenizer: Any, tokens: List[str], spans: List[Any], strategy: str) -> str:
    """The "word" of an entity as transformers builds it: the token itself for
    strategy "none"; else the group's words joined by the tokenizer, each word
    first joined from its subword tokens (for "simple" every token is a word)."""
    if strategy == "none":
        return tokens[spans[0][0]]
    if strategy == "simple":
        return tokenizer.convert_tokens_to_string([tokens[a] for a, _ in spans])
    return tokenizer.convert_tokens_to_string(
        [tokenizer.convert_tokens_to_string(tokens[a:b]) for a, b in spans]
    )


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
    return {
        "entity_group": entity.label,
        "score": entity.score,
        "word": word,
        "start": entity.start,
        "end": entity.end,
    }


def _outside(ignore_labels: Iterable[str]) -> str:
    """The outside label: "O" unless `ignore_labels` names another one only."""
    ignore = list(ignore_labels)
    return "O" if "O" in ignore or not ignore else ignore[0]
