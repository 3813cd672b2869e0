"""`hf_ner`: a Hugging Face token-classification model as spaCy's entity
recognizer, writing `doc.ents` and/or `doc.spans[spans_key]` with a score on
each entity (`span._.hf_score`)."""
import warnings
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from .aggregation import Entity, ModelEntities, TokenEntity, aggregate_window, decode_words, merge_overlapping, subword_flags
from .alignment import IGNORE_INDEX, Units, align, strip_span, units_of
from .base import HFComponent, register_factory, token_arrays
from .classify import softmax
from .errors import Errors, HFNerWarning, SpacyHFNerError, Warnings
from .kinds import ComponentKind, ExportCheck, Recipe, Serving
from .payloads import token_classification
from .placement import Placed, resolve_overlaps, snap
from .settings import ModelSettings, Score, validate_keys
from .spans import SCORE_ATTR, scored_span, write_ents, write_span_group
from .tags import bio_labels, detect_scheme, entity_type, from_biluo
from .ty import Annotate, Decoding, ExistingEnts, Scheme, Strategy, Words
from .units import make_infix_units, make_token_units  # noqa: F401  (registered: the config names them)


class NerSettings(ModelSettings):
    """The keys of `hf_ner` (see `HFNer`)."""

    aggregation_strategy: Strategy
    words: Words
    units: Callable
    decoding: Decoding
    ignore_labels: List[str]
    annotate: Annotate
    spans_key: str
    label_map: Dict[str, str]
    threshold: Score
    existing_ents: ExistingEnts

    def check(self, name: str) -> None:
        if self.words == "spacy" and self.aggregation_strategy in ("none", "simple"):
            raise SpacyHFNerError(Errors.E008.format(name=name, strategy=self.aggregation_strategy))
        if self.decoding == "viterbi" and self.words != "spacy":
            raise SpacyHFNerError(Errors.E028.format(name=name, decoding=self.decoding))


def ner_score(
    examples: Iterable[Example], *, annotate: str = "ents", spans_key: str = "hf_ner", **kwargs: Any
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


# export-onnx compares every entity (all of them in doc.spans) in both `words` modes
CHECK_SPANS_KEY = "check"
CHECK_RUNS = {
    run: {"words": words, "aggregation_strategy": strategy, "annotate": "spans", "spans_key": CHECK_SPANS_KEY}
    for run, words, strategy in (("words=spacy first", "spacy", "first"), ("words=model simple", "model", "simple"))
}


def check_predictions(doc: Doc) -> Dict[Any, float]:
    """What export-onnx compares: every entity (start_char, end_char, label) and its score."""
    return {(e.start_char, e.end_char, e.label_): float(e._.hf_score) for e in doc.spans.get(CHECK_SPANS_KEY, [])}


KIND = ComponentKind(
    factory="hf_ner",
    task="token",
    writes="entities -> doc.ents",
    assigns=("doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"),
    score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
    recipe=Recipe("a new IOB2 head is built over the training data's entity types at `initialize`", 500, 3300),
    serving=Serving(route="token-classification", records=token_classification, page="token"),
    export=ExportCheck(runs=CHECK_RUNS, predictions=check_predictions),
    bare_model=True,
)


class HFNer(HFComponent[NerSettings]):
    """Run a Hugging Face token-classification model and write its entities to
    `doc.ents` and/or `doc.spans[spans_key]`, each with a score.

    Settings (config keys; the shared model keys are documented on
    `ModelSettings`):
    aggregation_strategy (str): "none", "simple", "first", "average" or "max",
        with the semantics of transformers' TokenClassificationPipeline.
    words (str): "spacy" labels words made of spaCy's tokens (see `units`);
        "model" finds words as transformers does (its exact entities, then
        snapped to spaCy tokens).
    units (Callable): with `words` = "spacy", which spaCy tokens make one word:
        a registered rule, `spacy-hf-ner.infix_units.v1` or
        `spacy-hf-ner.token_units.v1`.
    decoding (str): with `words` = "spacy", "greedy" labels each word with its
        best label, as transformers does; "viterbi" labels each run of words
        with the best label sequence the tag scheme allows; "auto" (the
        default) is "viterbi" with `words` = "spacy" and transformers' own
        grouping with `words` = "model".
    ignore_labels (List[str]): labels (or entity groups) never written.
    annotate (str): write "ents" (doc.ents), "spans" (the span group
        doc.spans[spans_key], overlapping entities kept, their scores also in
        its attrs["scores"]) or "both".
    spans_key (str): key in doc.spans for annotate "spans"/"both".
    label_map (Dict[str, str]): rename entity labels, e.g. PER -> PERSON.
    threshold (float): entities scoring below it are not written (counted in
        `stats["below_threshold"]`); 0.0 writes every entity.
    existing_ents (str): entities already in doc.ents: "replace" drops them,
        "overwrite" keeps those that don't overlap new ones, "keep" keeps all
        and adds only new ones that don't overlap them. "replace" also replaces
        a span group already at `spans_key` (warning W006).
    scorer (Optional[Callable]): scoring method, default ner_score: ents_p/r/f
        and ents_per_type, and spans_<key>_p/r/f with spans output.
    """

    kind = KIND

    extension = (Span, SCORE_ATTR)
    gold_name = "entities"

    def __init__(self, vocab: Any, name: Optional[str] = None, **settings: Any) -> None:
        super().__init__(vocab, name, **settings)
        # the tag scheme of the model's labels, read on load (`_after_load`)
        self._scheme: Scheme = "bio"

    # -- training ---------------------------------------------------------------

    def _gold_labels(self, examples: Sequence[Example]) -> Optional[List[str]]:
        """The entity types of the examples' gold entities (None: no gold)."""
        gold = [eg for eg in examples if eg.reference.has_annotation("ENT_IOB")]
        return sorted({ent.label_ for eg in gold for ent in eg.reference.ents}) if gold else None

    def _prepare_training(self, examples: Sequence[Example], labels: List[str], given: bool) -> None:
        """Keep a head that knows every entity type; else a new IOB2 head over
        them (always when the labels were `given`)."""
        inverse = self._inverse_label_map()
        wanted = sorted({inverse.get(t, t) for t in labels})
        ignore = set(self.settings.ignore_labels)
        self._prepare_head(
            wanted,
            bio_labels(wanted, outside=self._outside),
            known=lambda head: {entity_type(l) for l in head if l not in ignore},
            keep=not given,
        )

    def _gold_token_targets(self, example: Example) -> np.ndarray:
        """Gold label ids of the predicted doc's tokens in the model's tag scheme
        (-100 where the gold is missing or has a type the head lacks)."""
        label2id = {l: i for i, l in enumerate(self.runtime.id2label)}
        inverse = self._inverse_label_map()
        out = np.full(len(example.predicted), IGNORE_INDEX, dtype=np.int64)
        for i, tag in enumerate(example.get_aligned_ner()):
            if tag is None or tag == "-":
                continue
            if tag != "O":
                tag = tag[:2] + inverse.get(tag[2:], tag[2:])
            out[i] = label2id.get(from_biluo(tag, self._scheme, self._outside), IGNORE_INDEX)
        return out

    def _word_targets(self, example: Example) -> Tuple[Tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """The words (`units`) of the predicted doc and their gold label ids:
        each word takes the gold of its first token."""
        units = self._units(example.predicted)
        return (units.starts, units.ends, units.is_space), self._gold_token_targets(example)[units.first_token]

    @property
    def labels(self) -> List[str]:  # type: ignore[override]  # spaCy's stub: Tuple[str, ...]; spaCy itself accepts any sequence
        """Entity labels the component can write (after `label_map`); empty until
        the model is loaded (spaCy reads labels for `nlp.meta`, which must not load
        a model)."""
        if not self.runtime.is_loaded:
            return []
        types = {entity_type(l) for l in self.runtime.id2label}
        ignore = set(self.settings.ignore_labels)
        mapping = self.settings.label_map
        return sorted({mapping.get(t, t) for t in types if t not in ignore})

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        """Score the examples with the configured scorer."""
        if self.scorer is None:
            return {}
        return self.scorer(examples, annotate=self.settings.annotate, spans_key=self.settings.spans_key, **kwargs)

    # -- prediction -------------------------------------------------------------

    @property
    def _outside(self) -> str:
        """The outside label: "O" unless `ignore_labels` names another one only."""
        ignore = self.settings.ignore_labels
        return "O" if "O" in ignore or not ignore else ignore[0]

    def _after_load(self) -> None:
        runtime = self.runtime
        self._scheme = detect_scheme(runtime.id2label, self.settings.ignore_labels)
        s = self.settings
        if s.words == "model" and s.aggregation_strategy in ("first", "average", "max") and not runtime.word_aware:
            warnings.warn(Warnings.W002.format(name=self.name, model=runtime.model_name), HFNerWarning)

    def _units(self, doc: Doc) -> Units:
        starts, ends, is_space = token_arrays(doc)
        return units_of(self.settings.units(doc.text, starts, ends), starts, ends, is_space)

    def predict(self, docs: Sequence[Doc]) -> List[Sequence[Union[Entity, TokenEntity]]]:
        """The entities of each doc, before they are written.

        With `words` = "model": `Entity` objects in character offsets, exactly as
        transformers' pipeline returns them (same strategy, ignore_labels and
        stride). With `words` = "spacy": `TokenEntity` objects over the doc's tokens.
        """
        self._ensure_loaded()
        texts = [doc.text for doc in docs]
        if self.settings.words == "model":
            return [found.entities for found in self.model_entities(texts)]
        return [self._word_entities(doc, *rows) for doc, rows in zip(docs, self._token_probs(texts))]

    def _word_entities(self, doc: Doc, starts: np.ndarray, ends: np.ndarray, probs: np.ndarray) -> List[TokenEntity]:
        """Entities over the doc's words (`units`), in token indices."""
        if len(doc) == 0:
            return []
        s = self.settings
        units = self._units(doc)
        found = decode_words(
            probs,
            align(starts, ends, units.starts, units.ends, units.is_space),
            units.is_space,
            self.runtime.id2label,
            s.aggregation_strategy,
            self._scheme,
            s.ignore_labels,
            "viterbi" if s.decoding == "auto" else s.decoding,
        )
        return [TokenEntity(e.label, e.score, *units.token_span(e.start, e.end)) for e in found]

    def model_entities(
        self,
        texts: Sequence[str],
        *,
        aggregation_strategy: Optional[str] = None,
        ignore_labels: Optional[Sequence[str]] = None,
        stride: Optional[int] = None,
    ) -> List[ModelEntities]:
        """The entities of each text as transformers' TokenClassificationPipeline
        finds them (the component's settings unless given), in one batched run.

        Unlike the pipeline, a text longer than the window is never truncated:
        it is cut into windows overlapping by `stride` tokens, whose entities are
        merged as the pipeline merges them when given a `stride`.

        RETURNS (List[ModelEntities]): per text, its entities and windows.
        """
        ignore = None if ignore_labels is None else list(ignore_labels)
        given = validate_keys(self.Settings, self.name, aggregation_strategy=aggregation_strategy, ignore_labels=ignore, stride=stride)
        strategy = given.get("aggregation_strategy") or self.settings.aggregation_strategy
        return self.find_model_entities(texts, strategy, given.get("ignore_labels", self.settings.ignore_labels), stride)

    def find_model_entities(
        self, texts: Sequence[str], strategy: str, ignore: Sequence[str], stride: Optional[int]
    ) -> List[ModelEntities]:
        """`model_entities` with every value given and already checked (the
        server's request models check them)."""
        self._ensure_loaded()
        window_stride = None if stride is None else self.runtime.resolve_stride(stride)
        runtime = self.runtime
        results = []
        for text, found in zip(texts, self._logits(texts, window_stride)):
            entities: List[Entity] = []
            for w, (window, logits) in enumerate(found):
                keep = ~window.special
                ids = window.ids[keep]
                starts, ends = window.offsets[keep, 0], window.offsets[keep, 1]
                unknown = ids == runtime.unk_id
                is_subword = subword_flags(runtime.token_lengths[ids], starts, ends, unknown, text, runtime.word_aware)
                entities.extend(
                    aggregate_window(
                        softmax(logits)[keep], starts, ends, is_subword, np.flatnonzero(keep),
                        runtime.id2label, strategy, ignore, window=w,
                    )
                )
            if len(found) > 1:
                entities = merge_overlapping(entities)
            results.append(ModelEntities(entities, [window for window, _ in found]))
        return results

    # -- annotation -------------------------------------------------------------

    def set_annotations(self, docs: Sequence[Doc], predictions: Sequence[Sequence[Union[Entity, TokenEntity]]]) -> None:
        """Write predicted entities to the docs (doc.ents and/or doc.spans)."""
        s = self.settings
        problems: List[str] = []
        reasons: Counter = Counter()
        replaced: Counter = Counter()  # docs whose spans group was replaced, and its spans
        for doc, entities in zip(docs, predictions):
            kept, merged, lost = resolve_overlaps(self._place(doc, entities, reasons, problems))
            self.stats.update(snapped=sum(p.snapped for p in kept), merged=len(merged), conflicts=len(lost))
            for p in lost if s.annotate != "spans" else ():  # with "spans" they are in the group
                reasons["overlap with a higher-scoring entity"] += 1
                problems.append(f"{doc[p.start:p.end].text!r} ({p.label})")
            if s.annotate in ("spans", "both"):
                replaced += write_span_group(doc, s.spans_key, sorted(kept + lost, key=lambda p: (p.start, p.end)), s.existing_ents)
            written = len(kept)
            if s.annotate in ("ents", "both"):
                written, refused = write_ents(doc, [scored_span(doc, p) for p in kept], s.existing_ents)
                self.stats["kept_existing"] += len(refused)
                for span in refused:
                    reasons["overlap with an existing entity (existing_ents='keep')"] += 1
                    problems.append(f"{span.text!r} ({span.label_})")
            self.stats["written"] += written
        self._warn(replaced, reasons, problems)

    def _place(self, doc: Doc, entities: Sequence[Union[Entity, TokenEntity]], reasons: Counter, problems: List[str]) -> List[Placed]:
        """The entities above the threshold with their labels, on token
        boundaries; those that cover no text are counted in `reasons`."""
        s = self.settings
        placed: List[Placed] = []
        tok_arrays = None
        text = ""  # doc.text joins every token: read it once per doc
        for i, ent in enumerate(entities):
            self.stats["predicted"] += 1
            if ent.score < s.threshold:
                self.stats["below_threshold"] += 1
                continue
            label = entity_type(ent.label) if s.aggregation_strategy == "none" else ent.label
            label = s.label_map.get(label, label)
            if isinstance(ent, TokenEntity):
                placed.append(Placed(label, ent.score, ent.start, ent.end, i, False))
                continue
            if tok_arrays is None:
                tok_arrays, text = token_arrays(doc), doc.text
            where = snap(*strip_span(text, ent.start, ent.end), *tok_arrays)
            if where is None:
                self.stats["unplaced"] += 1
                reasons["covers no text"] += 1
                problems.append(f"{text[ent.start:ent.end]!r} ({label}) at {ent.start}")
                continue
            placed.append(Placed(label, ent.score, where[0], where[1], i, where[2]))
        return placed

    def _warn(self, replaced: Counter, reasons: Counter, problems: List[str]) -> None:
        """W006 for replaced span groups, W001 for entities not written."""
        s = self.settings
        if replaced:
            warning = Warnings.W006.format(name=self.name, key=s.spans_key, count=replaced["spans"], docs=replaced["docs"], policy="replace")
            warnings.warn(warning, HFNerWarning)
        if problems:
            count = len(problems)
            hint = f"; annotate='both' keeps overlapping ones in doc.spans['{s.spans_key}']" if s.annotate == "ents" else ""
            reasons_text = ", ".join(f"{n} {r}" for r, n in reasons.items())
            warning = Warnings.W001.format(
                name=self.name, count=count, ies="y" if count == 1 else "ies", reasons=reasons_text,
                examples="; ".join(problems[:3]), hint=hint,
            )
            warnings.warn(warning, HFNerWarning)


make_hf_ner = register_factory(
    HFNer,
    default_config={
        "model": "spacy-hf-ner:en_conll03",
        "aggregation_strategy": "first",
        "words": "spacy",
        "units": {"@misc": "spacy-hf-ner.infix_units.v1"},
        "decoding": "auto",
        "ignore_labels": ["O"],
        "annotate": "ents",
        "spans_key": "hf_ner",
        "label_map": {},
        "threshold": 0.0,
        "existing_ents": "replace",
        "scorer": {"@scorers": "spacy-hf-ner.ner_scorer.v1"},
    },
)
