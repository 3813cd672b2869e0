"""`hf_textcat`: a Hugging Face sequence-classification model as spaCy's text
classifier, writing `doc.cats`.

Scores are those of transformers' TextClassificationPipeline (same
`function_to_apply` rule, same `top_k`) for every text that fits in one window.

Long texts (`long_text` = "windows", the default): a text longer than the
model's window is cut into overlapping windows (`stride` tokens of overlap, as
`hf_ner` does), the model's logits of all windows are averaged (mean-pooled),
and the activation is applied once to the pooled logits. Nothing is truncated.
With `long_text` = "truncate_warn" only the first window is classified (what the
pipeline gives with `truncation=True`), with a warning.

Text pairs: set `doc._.hf_text_pair` to a string and the doc's text and that
string are encoded together, `tokenizer(text, text_pair)`, as the pipeline's
`{"text": ..., "text_pair": ...}` input. Pairs are never windowed: if too long,
the doc's text is truncated ("only_first"), with a warning.
"""
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .base import HFComponent, register_factory
from .classify import activate, is_multi_label, pool_logits, resolve_function, top_k_scores
from .errors import HFNerWarning, Warnings
from .kinds import ComponentKind, ExportCheck, Recipe, Serving
from .payloads import text_classification
from .settings import ModelSettings, Positive, Score
from .ty import Function, LongText
from .windows import Window, by_doc

PAIR_ATTR = "hf_text_pair"


class TextcatSettings(ModelSettings):
    """The keys of `hf_textcat` (see `HFTextcat`)."""

    function_to_apply: Function
    top_k: Optional[Positive]
    long_text: LongText
    label_map: Dict[str, str]
    threshold: Score


def textcat_score(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
    """Score doc.cats as spaCy's textcat does: cats_score, cats_micro/macro_p/r/f,
    cats_macro_auc, cats_f_per_type and cats_auc_per_type. The component passes
    `labels` and `multi_label`."""
    return Scorer.score_cats(examples, "cats", **kwargs)


@registry.scorers("spacy-hf-ner.textcat_scorer.v1")
def make_textcat_scorer() -> Callable:
    return textcat_score


def check_predictions(doc: Doc) -> Dict[Any, float]:
    """What export-onnx compares: the top category and its score."""
    if not doc.cats:
        return {}
    top = max(doc.cats, key=lambda label: doc.cats[label])
    return {top: float(doc.cats[top])}


def windowed(textcat: "HFTextcat") -> bool:
    """Whether the component reads all windows of a long text (`long_text`)."""
    return textcat.settings.long_text == "windows"


KIND = ComponentKind(
    factory="hf_textcat",
    task="sequence",
    writes="labels -> doc.cats",
    assigns=("doc.cats",),
    score_weights={
        "cats_score": 1.0, "cats_score_desc": None, "cats_micro_p": None, "cats_micro_r": None,
        "cats_micro_f": None, "cats_macro_p": None, "cats_macro_r": None, "cats_macro_f": None,
        "cats_macro_auc": None, "cats_f_per_type": None,
    },  # fmt: skip
    recipe=Recipe(
        "a new head over the data's labels is built at `initialize` (single-label when every "
        "example has exactly one positive label)", 200, 300,
    ),
    serving=Serving(route="text-classification", records=text_classification, windowed=windowed, page="text"),
    export=ExportCheck(runs={"top category": {}}, predictions=check_predictions),
    bare_model=True,
)


class HFTextcat(HFComponent[TextcatSettings]):
    """Run a Hugging Face sequence-classification model and write its label
    scores to `doc.cats`.

    Settings (config keys; the shared model keys are documented on
    `ModelSettings`):
    function_to_apply (str): "auto" (as transformers' pipeline picks it from the
        model's problem type), "sigmoid", "softmax" or "none".
    top_k (Optional[int]): write only the k best labels; None: all.
    long_text (str): "windows" mean-pools the logits of all windows of a long
        text; "truncate_warn" classifies the first window only, with a warning.
    label_map (Dict[str, str]): rename labels, e.g. POSITIVE -> POS.
    threshold (float): with multi-label scores (sigmoid), the score from which
        a label counts as predicted when scoring (cats_micro/macro_p/r/f), as
        spaCy's textcat_multilabel `threshold`; `spacy find-threshold` tunes it.
        Single-label scoring takes the best label. doc.cats keeps every score.
    scorer (Optional[Callable]): scoring method, default textcat_score.
    """

    kind = KIND

    extension = (Doc, PAIR_ATTR)  # the text pair the doc is classified with
    gold_name = "doc.cats"

    def __init__(self, vocab: Any, name: Optional[str] = None, **settings: Any) -> None:
        super().__init__(vocab, name, **settings)
        # read on load (`_after_load`): the activation and whether labels are
        # scored independently
        self._function: str = "none"
        self._multi_label = False
        # `initialize(multi_label=...)`, read when a new head is made
        self._init_multi_label: Optional[bool] = None

    # -- training ---------------------------------------------------------------

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
        multi_label: Optional[bool] = None,
    ) -> None:
        """See `HFComponent.initialize`. A new head is multi-label (sigmoid)
        unless every example has exactly one positive label (softmax), or as
        `multi_label` says.

        multi_label (Optional[bool]): whether a new head is multi-label.
        """
        self._init_multi_label = multi_label
        super().initialize(get_examples, nlp=nlp, labels=labels)

    def _gold_labels(self, examples: Sequence[Example]) -> Optional[List[str]]:
        """The labels of the examples' `doc.cats` (None: no gold)."""
        gold = [eg.reference.cats for eg in examples if eg.reference.cats]
        return sorted({k for cats in gold for k in cats}) if gold else None

    def _prepare_training(self, examples: Sequence[Example], labels: List[str], given: bool) -> None:
        """Keep a head that has every label; else a new one over them."""
        multi_label = self._init_multi_label
        if multi_label is None:
            gold = [eg.reference.cats for eg in examples if eg.reference.cats]
            multi_label = not all(sum(v >= 0.5 for v in cats.values()) == 1 for cats in gold)
        inverse = self._inverse_label_map()
        wanted = [inverse.get(l, l) for l in labels]
        problem = "multi_label_classification" if multi_label else "single_label_classification"
        self._prepare_head(wanted, wanted, problem_type=problem)

    def _learn(self, examples: List[Example]) -> Optional[float]:
        """The loss of `examples` (see `update`), its gradients accumulated: the
        logits of each doc's windows are mean-pooled (as in prediction), then
        cross entropy (single-label) or binary cross entropy (multi-label)
        against `doc.cats`. None: no windows."""
        windows = self._windows([eg.predicted for eg in examples], warn=False)
        model = self.model
        if not windows or model is None:
            return None
        logits, backprop = model.begin_update(self.torch_inputs(windows))
        index = np.array([w.doc for w in windows], dtype=np.int64)
        loss, d_logits = self.get_loss(examples, (logits, index))
        backprop(d_logits)
        return loss

    def get_loss(self, examples: Iterable[Example], scores: Tuple[Any, np.ndarray], normalizer: int = 0) -> Tuple[float, Any]:
        """Loss and gradient of window logits (windows, labels) pooled per doc by
        `index` (the doc of each window) against the examples' `doc.cats`.
        Labels missing from a doc's gold are not trained. `normalizer` is the
        token components' (unused: the loss is a mean over the docs' labels)."""
        import torch

        logits, index = scores
        examples = list(examples)
        names = self.labels
        gold = np.zeros((len(examples), len(names)), dtype=np.float32)
        known = np.zeros_like(gold, dtype=bool)
        for d, eg in enumerate(examples):
            for j, name in enumerate(names):
                if name in eg.reference.cats:
                    gold[d, j] = float(eg.reference.cats[name])
                    known[d, j] = True
        leaf = logits.detach().float().requires_grad_()
        where = torch.from_numpy(index).to(leaf.device)
        counts = torch.bincount(where, minlength=len(examples)).clamp(min=1).unsqueeze(1)
        pooled = torch.zeros(len(examples), leaf.shape[1], device=leaf.device).index_add(0, where, leaf) / counts
        target = torch.from_numpy(gold).to(leaf.device)
        mask = torch.from_numpy(known).to(leaf.device)
        if self._multi_label:
            per = torch.nn.functional.binary_cross_entropy_with_logits(pooled, target, reduction="none")
            loss = (per * mask).sum() / max(int(known.sum()), 1)
        else:
            rows = torch.from_numpy(known.any(axis=1) & (gold.max(axis=1) > 0)).to(leaf.device)
            if not bool(rows.any()):
                return 0.0, torch.zeros_like(logits)
            loss = torch.nn.functional.cross_entropy(pooled[rows], target[rows].argmax(dim=1))
        loss.backward()
        return float(loss.item()), leaf.grad.to(logits.dtype)

    @property
    def labels(self) -> List[str]:  # type: ignore[override]  # spaCy's stub: Tuple[str, ...]; spaCy itself accepts any sequence
        """The model's labels (after `label_map`), in the model's order; empty
        until the model is loaded."""
        if not self.runtime.is_loaded:
            return []
        mapping = self.settings.label_map
        return [mapping.get(l, l) for l in self.runtime.id2label]

    @property
    def function(self) -> str:
        """The activation applied: "sigmoid", "softmax" or "none" (loads the model)."""
        self._ensure_loaded()
        return self._function

    @property
    def multi_label(self) -> bool:
        """Whether labels are scored independently (loads the model)."""
        self._ensure_loaded()
        return self._multi_label

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        if self.scorer is None:
            return {}
        self._ensure_loaded()
        kwargs.setdefault("labels", self.labels)
        kwargs.setdefault("multi_label", self._multi_label)
        kwargs.setdefault("threshold", self.settings.threshold)
        return self.scorer(examples, **kwargs)

    # -- prediction -------------------------------------------------------------

    def _after_load(self) -> None:
        config = self.runtime.config
        self._function = self.resolve_function(self.settings.function_to_apply)
        self._multi_label = is_multi_label(self._function, getattr(config, "problem_type", None), config.num_labels)

    def predict(self, docs: Sequence[Doc]) -> List[np.ndarray]:
        """The scores of each doc, (labels,) in the model's label order, after the
        activation."""
        return self.scores(*_texts_and_pairs(docs))

    def scores(
        self, texts: Sequence[str], pairs: Sequence[Optional[str]], function: Optional[str] = None
    ) -> List[np.ndarray]:
        """The scores of each text (with its pair, or None), (labels,) in the
        model's label order, after the activation (`function`: a resolved
        "sigmoid", "softmax" or "none"; None: the component's)."""
        self._ensure_loaded()
        windows = self._encode(texts, pairs)
        logits = self.runtime.logits(windows, self.settings.batch_size)
        return [
            activate(pool_logits([logits[i] for i in mine]), function or self._function)
            for mine in by_doc(windows, len(texts))
        ]

    def resolve_function(self, function_to_apply: str) -> str:
        """The activation `function_to_apply` means for this model."""
        self._ensure_loaded()
        config = self.runtime.config
        return resolve_function(function_to_apply, getattr(config, "problem_type", None), int(config.num_labels))

    def _windows(self, docs: Sequence[Doc], warn: bool = True) -> List[Window]:
        """The windows of docs (see `_encode`)."""
        return self._encode(*_texts_and_pairs(docs), warn=warn)

    def _encode(self, texts: Sequence[str], pairs: Sequence[Optional[str]], warn: bool = True) -> List[Window]:
        """The windows to classify, each with the index of its text: all windows
        of a text (`long_text` "windows") or its first, and one window per pair
        (each text with its pair or None)."""
        runtime = self.runtime
        singles = [d for d, pair in enumerate(pairs) if pair is None]
        paired = [d for d, pair in enumerate(pairs) if pair is not None]
        windows: List[Window] = []
        cut_single: List[int] = []
        cut_pair: List[int] = []
        if singles:
            windowed = self.settings.long_text == "windows"
            seen = set()
            for w in runtime.encode([texts[d] for d in singles], self._stride if windowed else 0):
                d = singles[w.doc]
                if d in seen and not windowed:
                    if not cut_single or cut_single[-1] != d:
                        cut_single.append(d)
                    continue
                seen.add(d)
                windows.append(w._replace(doc=d))
        if paired:
            pair_windows, cut = runtime.encode_pairs(
                [texts[d] for d in paired], [str(pairs[d]) for d in paired]
            )
            for w, was_cut in zip(pair_windows, cut):
                windows.append(w._replace(doc=paired[w.doc]))
                if was_cut:
                    cut_pair.append(paired[w.doc])
        if cut_single and warn:
            self._warn_truncated(
                [texts[d] for d in cut_single],
                "`long_text` = 'truncate_warn'",
                "set `long_text` = 'windows' to mean-pool the logits of all windows",
            )
        if cut_pair and warn:
            self._warn_truncated(
                [texts[d] for d in cut_pair],
                "text pairs are not windowed; the doc's text is cut ('only_first')",
                "shorten the text, or classify it without `doc._.hf_text_pair`",
            )
        return windows

    def _warn_truncated(self, texts: List[str], why: str, fix: str) -> None:
        examples = "; ".join(repr(text[:40] + "...") for text in texts[:3])
        warnings.warn(
            Warnings.W004.format(
                name=self.name, count=len(texts), window=self.runtime.window, why=why, examples=examples, fix=fix
            ),
            HFNerWarning,
        )

    # -- annotation -------------------------------------------------------------

    def set_annotations(self, docs: Sequence[Doc], scores: Sequence[np.ndarray]) -> None:
        """Write the scores to doc.cats (highest first; only `top_k` if set).
        Labels the model has are replaced; other labels in doc.cats are kept."""
        labels = self.labels
        for doc, doc_scores in zip(docs, scores):
            for label in labels:
                doc.cats.pop(label, None)
            doc.cats.update(top_k_scores(doc_scores, labels, self.settings.top_k))


make_hf_textcat = register_factory(
    HFTextcat,
    default_config={
        "model": "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        "function_to_apply": "auto",
        "top_k": None,
        "long_text": "windows",
        "label_map": {},
        "threshold": 0.5,
        "scorer": {"@scorers": "spacy-hf-ner.textcat_scorer.v1"},
    },
)


def _texts_and_pairs(docs: Sequence[Doc]) -> Tuple[List[str], List[Optional[str]]]:
    """The docs' texts, and each doc's `doc._.hf_text_pair` (None: no pair)."""
    pairs = [doc._.get(PAIR_ATTR) for doc in docs]
    return [doc.text for doc in docs], [None if p is None else str(p) for p in pairs]
