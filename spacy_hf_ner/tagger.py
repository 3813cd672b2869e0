"""`hf_tagger`: a Hugging Face token-classification model as spaCy's tagger,
writing one label per spaCy token to `token.pos` or `token.tag` with its score
in `token._.hf_tag_score`."""
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from spacy.attrs import IS_SPACE, POS, TAG
from spacy.parts_of_speech import IDS as POS_IDS
from spacy.scorer import Scorer
from spacy.tokens import Doc, Token
from spacy.training import Example
from spacy.util import registry

from .alignment import IGNORE_INDEX, NO_LABEL, token_scores
from .base import HFComponent, register_factory, token_arrays
from .errors import Errors, SpacyHFNerError
from .kinds import ComponentKind, ExportCheck, Recipe, Serving
from .payloads import tag_records
from .settings import ModelSettings
from .ty import TagAttr, WordStrategy

SCORE_ATTR = "hf_tag_score"

# the 17 tags of Universal Dependencies v2
UPOS_TAGS: Tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
# what token.pos can hold: UPOS plus spaCy's SPACE (and the older CONJ, EOL)
POS_VALUES = frozenset(k for k in POS_IDS if k)


class TaggerSettings(ModelSettings):
    """The keys of `hf_tagger` (see `HFTagger`)."""

    aggregation_strategy: WordStrategy
    attr: TagAttr
    overwrite: bool
    label_map: Dict[str, str]


def tagger_score(examples: Iterable[Example], *, attr: str = "pos", **kwargs: Any) -> Dict[str, Any]:
    """Score the written attribute: pos_acc (attr "pos") or tag_acc (attr "tag"),
    as spaCy's tagger and morphologizer score them."""
    return Scorer.score_token_attr(examples, attr, **kwargs)


@registry.scorers("spacy-hf-ner.tagger_scorer.v1")
def make_tagger_scorer() -> Callable:
    return tagger_score


def check_predictions(doc: Doc) -> Dict[Any, float]:
    """What export-onnx compares: each token's (index, pos, tag) and its score."""
    return {(t.i, t.pos_, t.tag_): float(t._.get(SCORE_ATTR) or 0.0) for t in doc}


KIND = ComponentKind(
    factory="hf_tagger",
    task="token",
    writes="tags -> token.pos_ or token.tag_",
    assigns=("token.pos", "token.tag"),
    score_weights={"pos_acc": 1.0, "tag_acc": None},
    recipe=Recipe("a new head over the data's tags is built at `initialize`", 500, 600),
    serving=Serving(route="token-classification", records=tag_records),
    export=ExportCheck(runs={"tags": {}}, predictions=check_predictions),
)


class HFTagger(HFComponent[TaggerSettings]):
    """Run a Hugging Face token-classification model whose labels are tags (UPOS
    or a fine-grained tag set) and write one label per spaCy token to `token.pos`
    or `token.tag`, with its score in `token._.hf_tag_score`.

    Settings (config keys; the shared model keys are documented on
    `ModelSettings`):
    aggregation_strategy (str): how the scores of the model tokens of one spaCy
        token are pooled: "first", "average" or "max", as transformers pools
        subwords into words.
    attr (str): "pos" writes token.pos_, "tag" token.tag_; "auto" picks "pos"
        when every label (after `label_map`) is a Universal POS tag, else "tag".
    overwrite (bool): False sets only tokens whose attribute is still empty.
    label_map (Dict[str, str]): rename labels, e.g. {"CONJ": "CCONJ"}.
    scorer (Optional[Callable]): scoring method, default tagger_score.
    """

    kind = KIND

    extension = (Token, SCORE_ATTR)
    gold_name = "tags"

    def __init__(self, vocab: Any, name: Optional[str] = None, **settings: Any) -> None:
        super().__init__(vocab, name, **settings)
        # read on load (`_after_load`): the attribute written ("pos" or "tag"),
        # and the value written for each of the model's labels
        self._attr: Optional[str] = None
        self._values = np.zeros(0, dtype=np.uint64)

    # -- training ---------------------------------------------------------------

    def _gold_labels(self, examples: Sequence[Example]) -> Optional[List[str]]:
        """The tags of the examples' gold: `token.pos_` when `attr` is "pos" or
        "auto" and the data has POS, else `token.tag_` (None: no gold)."""
        attr = self._gold_attr(examples)
        if attr is None:
            return None
        return sorted({getattr(t, f"{attr}_") for eg in examples for t in eg.reference} - {"", "SPACE"})

    def _prepare_training(self, examples: Sequence[Example], labels: List[str], given: bool) -> None:
        """Keep a head that has every tag; else a new one over them."""
        inverse = self._inverse_label_map()
        wanted = sorted({inverse.get(l, l) for l in labels})
        self._prepare_head(wanted, wanted)

    def _gold_attr(self, examples: Sequence[Example]) -> Optional[str]:
        """The attribute the examples' gold can train: "pos" or "tag" (None: no
        gold)."""
        attr = self.settings.attr
        for candidate in ("pos", "tag"):
            if attr not in ("auto", candidate):
                continue
            if any(eg.reference.has_annotation(candidate.upper()) for eg in examples):
                return candidate
        return None

    def _word_targets(self, example: Example) -> Tuple[Tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """The predicted doc's tokens and their gold label ids (-100 where the
        gold is missing or not a label of the head)."""
        label2id = {l: i for i, l in enumerate(self.runtime.id2label)}
        inverse = self._inverse_label_map()
        values = example.get_aligned(self.attr.upper(), as_string=True)
        targets = np.array(
            [label2id.get(inverse.get(v, v), IGNORE_INDEX) if v else IGNORE_INDEX for v in values],
            dtype=np.int64,
        )
        return token_arrays(example.predicted), targets

    @property
    def labels(self) -> List[str]:  # type: ignore[override]  # spaCy's stub: Tuple[str, ...]; spaCy itself accepts any sequence
        """Tags the component can write (after `label_map`); empty until the model
        is loaded (spaCy reads labels for `nlp.meta`, which must not load a model)."""
        if not self.runtime.is_loaded:
            return []
        return sorted(set(self._labels))

    @property
    def attr(self) -> str:
        """The attribute written, "pos" or "tag" ("auto" is resolved on load)."""
        self._ensure_loaded()
        assert self._attr is not None, "set by _after_load"
        return self._attr

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        if self.scorer is None:
            return {}
        return self.scorer(examples, attr=self.attr, **kwargs)

    # -- prediction -------------------------------------------------------------

    def _after_load(self) -> None:
        runtime = self.runtime
        label_map = self.settings.label_map
        self._labels = [label_map.get(l, l) for l in runtime.id2label]
        not_pos = [l for l in dict.fromkeys(self._labels) if l not in POS_VALUES]
        attr = self.settings.attr
        if attr == "auto":
            attr = "tag" if not_pos else "pos"
        elif attr == "pos" and not_pos:
            shown = ", ".join(repr(l) for l in not_pos[:5])
            more = f" and {len(not_pos) - 5} more" if len(not_pos) > 5 else ""
            raise SpacyHFNerError(Errors.E027.format(name=self.name, model=runtime.model_name, shown=shown + more))
        self._attr = attr
        # the value stored in the token for each label id
        if attr == "pos":
            self._values = np.array([int(POS_IDS[l]) for l in self._labels], dtype=np.uint64)
        else:
            self._values = np.array(
                [self.vocab.strings.add(l) for l in self._labels], dtype=np.uint64
            )

    def predict(self, docs: Sequence[Doc]) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Per doc, a label id (into the model's id2label; -1 for none) and a score
        for each spaCy token, before they are written."""
        self._ensure_loaded()
        texts = [doc.text for doc in docs]
        strategy = self.settings.aggregation_strategy
        return [
            token_scores(probs, starts, ends, *token_arrays(doc), strategy)
            for doc, (starts, ends, probs) in zip(docs, self._token_probs(texts))
        ]

    # -- annotation -------------------------------------------------------------

    def set_annotations(
        self, docs: Sequence[Doc], predictions: Sequence[Tuple[np.ndarray, np.ndarray]]
    ) -> None:
        """Write the predicted tags to token.pos or token.tag, and their scores to
        token._.hf_tag_score. Whitespace tokens get pos SPACE (attr "pos")."""
        self._ensure_loaded()
        attr_id = POS if self._attr == "pos" else TAG
        overwrite = self.settings.overwrite
        for doc, (ids, scores) in zip(docs, predictions):
            if len(doc) == 0:
                continue
            current = doc.to_array([attr_id]).astype(np.uint64)
            new = current.copy()
            has = ids != NO_LABEL
            new[has] = self._values[ids[has]]
            if self._attr == "pos":
                space = ~has & doc.to_array([IS_SPACE]).astype(bool)
                new[space] = int(POS_IDS["SPACE"])
                has = has | space
            writable = has if overwrite else has & (current == 0)
            self.stats["tokens"] += len(doc)
            self.stats["written"] += int(writable.sum())
            self.stats["kept_existing"] += int((has & ~writable).sum())
            self.stats["untagged"] += int((~has).sum())
            if not writable.any():
                continue
            current[writable] = new[writable]
            doc.from_array([attr_id], current.reshape(-1, 1))  # type: ignore[arg-type]  # spaCy's stub: thinc's Ints2d; any uint64 array is read
            score_list = scores.tolist()
            for i in np.flatnonzero(writable & (ids != NO_LABEL)).tolist():
                doc[i]._.set(SCORE_ATTR, float(score_list[i]))


make_hf_tagger = register_factory(
    HFTagger,
    default_config={
        "model": "vblagoje/bert-english-uncased-finetuned-pos",
        "aggregation_strategy": "first",
        "attr": "auto",
        "overwrite": True,
        "label_map": {},
        "scorer": {"@scorers": "spacy-hf-ner.tagger_scorer.v1"},
    },
)
