"""`hf_tagger`: a Hugging Face token-classification model as spaCy's tagger."""
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Literal, Optional, Sequence, Tuple

import numpy as np
from spacy.attrs import IS_SPACE, POS, TAG
from spacy.language import Language
from spacy.parts_of_speech import IDS as POS_IDS

from spacy.scorer import Scorer
from spacy.tokens import Doc, Token
from spacy.training import Example
from spacy.util import registry
from spacy.vocab import Vocab

from .aggregation import WORD_STRATEGIES
from .engine import HFEngine, softmax
from .errors import Errors
from .pipe import HFPipe, token_arrays
from .training import TrainableMixin
from .tokenscores import IGNORE_INDEX, NO_LABEL, merge_windows, token_scores

SCORE_ATTR = "hf_tag_score"

# the 17 tags of Universal Dependencies v2
UPOS_TAGS: Tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
# what token.pos can hold: UPOS plus spaCy's SPACE (and the older CONJ, EOL)
POS_VALUES = frozenset(k for k in POS_IDS if k)

TagStrategy = Literal["first", "average", "max"]


@Language.factory(
    "hf_tagger",
    assigns=["token.pos", "token.tag"],
    default_config={
        "model": "vblagoje/bert-english-uncased-finetuned-pos",
        "revision": None,
        "aggregation_strategy": "first",
        "attr": "auto",
        "overwrite": True,
        "label_map": {},
        "stride": None,
        "max_length": None,
        "batch_size": 64,
        "device": "auto",
        "dtype": "float32",
        "backend": "torch",
        "onnx_file": None,
        "scorer": {"@scorers": "spacy-hf-ner.tagger_scorer.v1"},
    },
    default_score_weights={"pos_acc": 1.0, "tag_acc": 0.0},
)
def make_hf_tagger(
    nlp: Language,
    name: str,
    model: str,
    revision: Optional[str],
    aggregation_strategy: TagStrategy,
    attr: Literal["auto", "pos", "tag"],
    overwrite: bool,
    label_map: Dict[str, str],
    stride: Optional[int],
    max_length: Optional[int],
    batch_size: int,
    device: str,
    dtype: Literal["float32", "float16", "bfloat16"],
    backend: Literal["torch", "onnx"],
    onnx_file: Optional[str],
    scorer: Optional[Callable],
) -> "HFTagger":
    """Create an `hf_tagger` component. See `HFTagger` for the arguments."""
    return HFTagger(
        nlp.vocab,
        name=name,
        model=model,
        revision=revision,
        aggregation_strategy=aggregation_strategy,
        attr=attr,
        overwrite=overwrite,
        label_map=label_map,
        stride=stride,
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        backend=backend,
        onnx_file=onnx_file,
        scorer=scorer,
    )


def tagger_score(examples: Iterable[Example], *, attr: str = "pos", **kwargs: Any) -> Dict[str, Any]:
    """Score the written attribute: pos_acc (attr "pos") or tag_acc (attr "tag"),
    as spaCy's tagger and morphologizer score them."""
    return Scorer.score_token_attr(examples, attr, **kwargs)


@registry.scorers("spacy-hf-ner.tagger_scorer.v1")
def make_tagger_scorer() -> Callable:
    return tagger_score


class HFTagger(TrainableMixin, HFPipe):
    """Run a Hugging Face token-classification model whose labels are tags (UPOS
    or a fine-grained tag set) and write one label per spaCy token to `token.pos`
    or `token.tag`, with its score in `token._.hf_tag_score`.

    The model is loaded on `nlp.initialize()` or on the first doc, so that
    `spacy.load` of a saved pipeline reads the weights saved with it and never
    the hub.
    """

    def __init__(
        self,
        vocab: Vocab,
        name: str = "hf_tagger",
        *,
        model: str,
        revision: Optional[str] = None,
        aggregation_strategy: str = "first",
        attr: str = "auto",
        overwrite: bool = True,
        label_map: Optional[Dict[str, str]] = None,
        stride: Optional[int] = None,
        max_length: Optional[int] = None,
        batch_size: int = 64,
        device: str = "auto",
        dtype: str = "float32",
        backend: str = "torch",
        onnx_file: Optional[str] = None,
        scorer: Optional[Callable] = tagger_score,
    ) -> None:
        """Initialize the component.

        model (str): Hugging Face hub id or local directory of a token classifier
            whose labels are tags.
        revision (Optional[str]): hub revision (branch, tag or commit).
        aggregation_strategy (str): how the scores of the model tokens of one spaCy
            token are pooled: "first", "average" or "max", as transformers pools
            subwords into words.
        attr (str): "pos" writes token.pos_, "tag" token.tag_; "auto" picks "pos"
            when every label (after `label_map`) is a Universal POS tag, else "tag".
        overwrite (bool): False sets only tokens whose attribute is still empty.
        label_map (Optional[Dict[str, str]]): rename labels, e.g. {"CONJ": "CCONJ"}.
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
        scorer (Optional[Callable]): scoring method, default tagger_score.
        """
        self.vocab = vocab
        self.name = name
        if aggregation_strategy not in WORD_STRATEGIES:
            raise ValueError(
                Errors.E009.format(
                    name=name,
                    key="aggregation_strategy",
                    value=aggregation_strategy,
                    problem="is not a strategy that pools subwords per token",
                    fix=f"use one of {', '.join(WORD_STRATEGIES)}",
                )
            )
        if attr not in ("auto", "pos", "tag"):
            raise ValueError(
                Errors.E009.format(
                    name=name, key="attr", value=attr, problem="is not an attribute",
                    fix="use 'auto', 'pos' or 'tag'",
                )
            )
        for key, value, ok, fix in (
            ("batch_size", batch_size, batch_size >= 1, "use a positive number, e.g. 64"),
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
            "attr": attr,
            "overwrite": bool(overwrite),
            "label_map": dict(label_map or {}),
            "stride": stride,
            "batch_size": batch_size,
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
            factory="hf_tagger",
        )
        self.scorer = scorer
        self.stats: Counter = Counter()
        self._attr: Optional[str] = None
        if not Token.has_extension(SCORE_ATTR):
            Token.set_extension(SCORE_ATTR, default=None)

    # -- spaCy API ------------------------------------------------------------

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        """Load the model, and prepare it for training when the examples carry
        gold tags (as under `spacy train`): `token.pos_` when `attr` is "pos" or
        "auto" and the data has POS, else `token.tag_`.

        A model whose head already has every label of the data keeps it; any
        other model, such as a plain encoder, gets a new head over the data's
        labels (`labels` overrides them).

        get_examples (Callable[[], Iterable[Example]]): training examples.
        nlp (Language): the pipeline.
        labels (Optional[List[str]]): the labels of a new head.
        """
        examples = list(get_examples()) if get_examples is not None else []
        gold_attr = self._gold_attr(examples)
        if labels is None and gold_attr is None:
            self._ensure_loaded()  # a pretrained model for inference
            return
        inverse = self._inverse_label_map()
        if labels is None:
            labels = sorted(
                {getattr(t, f"{gold_attr}_") for eg in examples for t in eg.reference} - {"", "SPACE"}
            )
        if not labels:
            raise ValueError(Errors.E011.format(name=self.name, what="tags"))
        wanted = sorted({inverse.get(l, l) for l in labels})
        self._prepare_head(wanted, wanted)

    def _gold_attr(self, examples: Sequence[Example]) -> Optional[str]:
        """The attribute the examples' gold can train: "pos" or "tag" (None: no
        gold)."""
        attr = self.cfg["attr"]
        for candidate in ("pos", "tag"):
            if attr not in ("auto", candidate):
                continue
            if any(eg.reference.has_annotation(candidate.upper()) for eg in examples):
                return candidate
        return None

    def _gold_token_targets(self, example: Example) -> np.ndarray:
        """Gold label ids of the predicted doc's tokens (-100 where the gold is
        missing or not a label of the head)."""
        label2id = {l: i for i, l in enumerate(self.engine.id2label)}
        inverse = self._inverse_label_map()
        values = example.get_aligned(self.attr.upper(), as_string=True)
        return np.array(
            [label2id.get(inverse.get(v, v), IGNORE_INDEX) if v else IGNORE_INDEX for v in values],
            dtype=np.int64,
        )

    @property
    def labels(self) -> List[str]:
        """Tags the component can write (after `label_map`); empty until the model
        is loaded (spaCy reads labels for `nlp.meta`, which must not load a model)."""
        if not self.engine.is_loaded:
            return []
        return sorted(set(self._labels))

    @property
    def attr(self) -> str:
        """The attribute written, "pos" or "tag" ("auto" is resolved on load)."""
        self._ensure_loaded()
        return self._attr  # type: ignore[return-value]

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        if self.scorer is None:
            return {}
        return self.scorer(examples, attr=self.attr, **kwargs)

    # -- prediction -------------------------------------------------------------

    def _after_load(self) -> None:
        engine = self.engine
        self._stride = engine.resolve_stride(self.cfg["stride"])
        label_map = self.cfg["label_map"]
        self._labels = [label_map.get(l, l) for l in engine.id2label]
        not_pos = [l for l in dict.fromkeys(self._labels) if l not in POS_VALUES]
        attr = self.cfg["attr"]
        if attr == "auto":
            attr = "tag" if not_pos else "pos"
        elif attr == "pos" and not_pos:
            shown = ", ".join(repr(l) for l in not_pos[:5])
            more = f" and {len(not_pos) - 5} more" if len(not_pos) > 5 else ""
            raise ValueError(
                Errors.E009.format(
                    name=self.name,
                    key="attr",
                    value=attr,
                    problem=(
                        f"writes token.pos_, which holds only Universal POS tags, but "
                        f"the labels of model '{engine.model_name}' include {shown}{more}"
                    ),
                    fix=(
                        "set `attr` = 'tag' (or 'auto') to write the labels to token.tag_, "
                        "or map them to Universal POS tags with `label_map`"
                    ),
                )
            )
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
        engine = self.engine
        results = [_empty(len(doc)) for doc in docs]
        texts = [doc.text for doc in docs]
        windows = engine.encode(texts, self._stride)
        if not windows:
            return results
        logits = engine.logits(windows, self.cfg["batch_size"])
        per_doc: List[List[int]] = [[] for _ in docs]
        for i, window in enumerate(windows):
            per_doc[window.doc].append(i)
        for d, doc in enumerate(docs):
            if len(doc) == 0:
                continue
            mine = [(windows[i].offsets, windows[i].special, softmax(logits[i])) for i in per_doc[d]]
            starts, ends, probs = merge_windows(texts[d], mine)
            tok_starts, tok_ends, tok_space = token_arrays(doc)
            results[d] = token_scores(
                probs, starts, ends, tok_starts, tok_ends, tok_space, self.cfg["aggregation_strategy"]
            )
        return results

    # -- annotation -------------------------------------------------------------

    def set_annotations(
        self, docs: Sequence[Doc], predictions: Sequence[Tuple[np.ndarray, np.ndarray]]
    ) -> None:
        """Write the predicted tags to token.pos or token.tag, and their scores to
        token._.hf_tag_score. Whitespace tokens get pos SPACE (attr "pos")."""
        self._ensure_loaded()
        attr_id = POS if self._attr == "pos" else TAG
        overwrite = self.cfg["overwrite"]
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
            doc.from_array([attr_id], current.reshape(-1, 1))
            score_list = scores.tolist()
            for i in np.flatnonzero(writable & (ids != NO_LABEL)).tolist():
                doc[i]._.set(SCORE_ATTR, float(score_list[i]))


def _empty(n: int) -> Tuple[np.ndarray, np.ndarray]:
    return np.full(n, NO_LABEL, dtype=np.int64), np.full(n, np.nan, dtype=np.float32)
