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
from typing import Any, Callable, Dict, Iterable, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
from spacy.language import Language

from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.util import registry
from spacy.vocab import Vocab

from .classify import FUNCTIONS, activate, is_multi_label, pool_logits, resolve_function, top_k_scores
from .engine import HFEngine, Window
from .errors import Errors, HFNerWarning
from .pipe import HFPipe
from .training import TrainableMixin

PAIR_ATTR = "hf_text_pair"
LONG_TEXT = ("windows", "truncate_warn")

Function = Literal["auto", "sigmoid", "softmax", "none"]

_W_TRUNCATED = (
    "[{name}] {count} doc(s) were longer than the model's window of {window} tokens "
    "and were truncated ({why}). Examples: {examples}. Fix: {fix}."
)


@Language.factory(
    "hf_textcat",
    assigns=["doc.cats"],
    default_config={
        "model": "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        "revision": None,
        "function_to_apply": "auto",
        "top_k": None,
        "long_text": "windows",
        "stride": None,
        "max_length": None,
        "batch_size": 64,
        "device": "auto",
        "dtype": "float32",
        "backend": "torch",
        "onnx_file": None,
        "label_map": {},
        "scorer": {"@scorers": "spacy-hf-ner.textcat_scorer.v1"},
    },
    default_score_weights={
        "cats_score": 1.0,
        "cats_score_desc": None,
        "cats_micro_p": None,
        "cats_micro_r": None,
        "cats_micro_f": None,
        "cats_macro_p": None,
        "cats_macro_r": None,
        "cats_macro_f": None,
        "cats_macro_auc": None,
        "cats_f_per_type": None,
    },
)
def make_hf_textcat(
    nlp: Language,
    name: str,
    model: str,
    revision: Optional[str],
    function_to_apply: Function,
    top_k: Optional[int],
    long_text: Literal["windows", "truncate_warn"],
    stride: Optional[int],
    max_length: Optional[int],
    batch_size: int,
    device: str,
    dtype: Literal["float32", "float16", "bfloat16"],
    backend: Literal["torch", "onnx"],
    onnx_file: Optional[str],
    label_map: Dict[str, str],
    scorer: Optional[Callable],
) -> "HFTextcat":
    """Create an `hf_textcat` component. See `HFTextcat` for the arguments."""
    return HFTextcat(
        nlp.vocab,
        name=name,
        model=model,
        revision=revision,
        function_to_apply=function_to_apply,
        top_k=top_k,
        long_text=long_text,
        stride=stride,
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        backend=backend,
        onnx_file=onnx_file,
        label_map=label_map,
        scorer=scorer,
    )


def textcat_score(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
    """Score doc.cats as spaCy's textcat does: cats_score, cats_micro/macro_p/r/f,
    cats_macro_auc, cats_f_per_type and cats_auc_per_type. The component passes
    `labels` and `multi_label`."""
    return Scorer.score_cats(examples, "cats", **kwargs)


@registry.scorers("spacy-hf-ner.textcat_scorer.v1")
def make_textcat_scorer() -> Callable:
    return textcat_score


class HFTextcat(TrainableMixin, HFPipe):
    """Run a Hugging Face sequence-classification model and write its label
    scores to `doc.cats`.

    The model is loaded on `nlp.initialize()` or on the first doc, so that
    `spacy.load` of a saved pipeline reads the weights saved with it and never
    the hub.
    """

    def __init__(
        self,
        vocab: Vocab,
        name: str = "hf_textcat",
        *,
        model: str,
        revision: Optional[str] = None,
        function_to_apply: str = "auto",
        top_k: Optional[int] = None,
        long_text: str = "windows",
        stride: Optional[int] = None,
        max_length: Optional[int] = None,
        batch_size: int = 64,
        device: str = "auto",
        dtype: str = "float32",
        backend: str = "torch",
        onnx_file: Optional[str] = None,
        label_map: Optional[Dict[str, str]] = None,
        scorer: Optional[Callable] = textcat_score,
    ) -> None:
        """Initialize the component.

        model (str): Hugging Face hub id or local directory of a sequence classifier.
        revision (Optional[str]): hub revision (branch, tag or commit).
        function_to_apply (str): "sigmoid", "softmax" or "none" (raw logits);
            "auto" follows transformers: sigmoid for multi-label models or a single
            output, none for regression, else softmax.
        top_k (Optional[int]): write only the k highest-scoring labels; None: all.
        long_text (str): "windows" mean-pools the logits of overlapping windows;
            "truncate_warn" classifies the first window only, with a warning.
        stride (Optional[int]): overlap between windows, in model tokens; None: an
            eighth of the window.
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
        label_map (Optional[Dict[str, str]]): rename labels, e.g. POSITIVE->POS.
        scorer (Optional[Callable]): scoring method, default textcat_score.
        """
        self.vocab = vocab
        self.name = name
        for key, value, ok, fix in (
            (
                "function_to_apply",
                function_to_apply,
                function_to_apply in FUNCTIONS,
                f"use one of {', '.join(FUNCTIONS)}",
            ),
            ("long_text", long_text, long_text in LONG_TEXT, f"use one of {', '.join(LONG_TEXT)}"),
            ("top_k", top_k, top_k is None or top_k >= 1, "use null (all labels) or a count >= 1"),
            ("batch_size", batch_size, batch_size >= 1, "use a positive number, e.g. 64"),
            ("stride", stride, stride is None or stride >= 0, "use null or a count >= 0"),
        ):
            if not ok:
                raise ValueError(
                    Errors.E009.format(
                        name=name, key=key, value=value, problem="is not allowed", fix=fix
                    )
                )
        self.cfg: Dict[str, Any] = {
            "function_to_apply": function_to_apply,
            "top_k": top_k,
            "long_text": long_text,
            "stride": stride,
            "batch_size": batch_size,
            "label_map": dict(label_map or {}),
        }
        self.engine = HFEngine(
            model,
            revision=revision,
            task="sequence",
            device=device,
            dtype=dtype,
            backend=backend,
            onnx_file=onnx_file,
            max_length=max_length,
            name=name,
            factory="hf_textcat",
        )
        self.scorer = scorer
        if not Doc.has_extension(PAIR_ATTR):
            Doc.set_extension(PAIR_ATTR, default=None)

    # -- spaCy API ------------------------------------------------------------

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
        multi_label: Optional[bool] = None,
    ) -> None:
        """Load the model, and prepare it for training when the examples carry
        `doc.cats` (as under `spacy train`).

        A model whose head already has every label of the data keeps it; any
        other model, such as a plain encoder, gets a new head over the data's
        labels (`labels` overrides them): multi-label (sigmoid) unless every
        example has exactly one positive label (softmax), or as `multi_label`
        says.

        get_examples (Callable[[], Iterable[Example]]): training examples.
        nlp (Language): the pipeline.
        labels (Optional[List[str]]): the labels of a new head.
        multi_label (Optional[bool]): whether the new head is multi-label.
        """
        examples = list(get_examples()) if get_examples is not None else []
        gold = [eg.reference.cats for eg in examples if eg.reference.cats]
        if labels is None and not gold:
            self._ensure_loaded()  # a pretrained model for inference
            return
        labels = labels if labels is not None else sorted({k for cats in gold for k in cats})
        if not labels:
            raise ValueError(Errors.E011.format(name=self.name, what="doc.cats"))
        if multi_label is None:
            multi_label = not all(sum(v >= 0.5 for v in cats.values()) == 1 for cats in gold)
        inverse = self._inverse_label_map()
        wanted = [inverse.get(l, l) for l in labels]
        problem = "multi_label_classification" if multi_label else "single_label_classification"
        self._prepare_head(wanted, wanted, problem_type=problem)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Any] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples: the logits of each doc's windows are
        mean-pooled (as in prediction), then cross entropy (single-label) or
        binary cross entropy (multi-label) against `doc.cats`. The model's own
        dropout applies; `drop` is unused.

        RETURNS (Dict[str, float]): the losses, with this component's added.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "HFTextcat.update")
        self._check_trainable("update")
        self._ensure_loaded()
        windows = self._windows([eg.predicted for eg in examples], warn=False)
        if not windows:
            return losses
        logits, backprop = self.model.begin_update(self.engine.torch_inputs(windows))
        index = np.array([w.doc for w in windows], dtype=np.int64)
        loss, d_logits = self.get_loss(examples, (logits, index))
        backprop(d_logits)
        if sgd not in (None, False):
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: Tuple[Any, np.ndarray]) -> Tuple[float, Any]:
        """Loss and gradient of window logits (windows, labels) pooled per doc by
        `index` (the doc of each window) against the examples' `doc.cats`.
        Labels missing from a doc's gold are not trained."""
        import torch

        logits, index = scores
        examples = list(examples)
        label_map = self.cfg["label_map"]
        names = [label_map.get(l, l) for l in self.engine.id2label]
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
    def labels(self) -> List[str]:
        """The model's labels (after `label_map`), in the model's order; empty
        until the model is loaded."""
        if not self.engine.is_loaded:
            return []
        mapping = self.cfg["label_map"]
        return [mapping.get(l, l) for l in self.engine.id2label]

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
        return self.scorer(examples, **kwargs)

    # -- prediction -------------------------------------------------------------

    def _after_load(self) -> None:
        engine = self.engine
        self._stride = engine.resolve_stride(self.cfg["stride"])
        config = engine.config
        problem_type = getattr(config, "problem_type", None)
        n_labels = int(config.num_labels)
        self._function = resolve_function(self.cfg["function_to_apply"], problem_type, n_labels)
        self._multi_label = is_multi_label(self._function, problem_type, n_labels)

    def predict(self, docs: Sequence[Doc]) -> List[np.ndarray]:
        """The scores of each doc, (labels,) in the model's label order, after the
        activation."""
        self._ensure_loaded()
        engine = self.engine
        windows = self._windows(docs)
        logits = engine.logits(windows, self.cfg["batch_size"])
        per_doc: List[List[np.ndarray]] = [[] for _ in docs]
        for w, row in zip(windows, logits):
            per_doc[w.doc].append(row)
        return [activate(pool_logits(rows), self._function) for rows in per_doc]

    def hf_scores(
        self,
        inputs: Sequence[Union[str, Tuple[str, str]]],
        *,
        function_to_apply: Optional[str] = None,
        top_k: Optional[int] = None,
    ) -> List[List[Dict[str, Any]]]:
        """The scores of each input as transformers' TextClassificationPipeline
        returns them with `top_k` given (the Hugging Face Inference API's
        payload): `{"label", "score"}` dicts, highest first, in one batched run.

        inputs (Sequence[Union[str, Tuple[str, str]]]): texts, or (text,
            text_pair) tuples encoded together like the pipeline's
            `{"text": ..., "text_pair": ...}`.
        function_to_apply (Optional[str]): "sigmoid", "softmax", "none" or
            "auto"; None: the component's.
        top_k (Optional[int]): the k best labels; None: all.
        RETURNS (List[List[Dict[str, Any]]]): one list of labels per input.
        """
        self._ensure_loaded()
        function = self._function
        if function_to_apply is not None:
            if function_to_apply not in FUNCTIONS:
                raise ValueError(
                    Errors.E009.format(
                        name=self.name,
                        key="function_to_apply",
                        value=function_to_apply,
                        problem="is not allowed",
                        fix=f"use one of {', '.join(FUNCTIONS)}",
                    )
                )
            config = self.engine.config
            function = resolve_function(
                function_to_apply, getattr(config, "problem_type", None), int(config.num_labels)
            )
        if top_k is not None and top_k < 1:
            raise ValueError(
                Errors.E009.format(
                    name=self.name, key="top_k", value=top_k, problem="is not allowed",
                    fix="use null (all labels) or a count >= 1",
                )
            )
        texts = [item if isinstance(item, str) else item[0] for item in inputs]
        pairs = [None if isinstance(item, str) else item[1] for item in inputs]
        windows = self._encode(texts, pairs)
        logits = self.engine.logits(windows, self.cfg["batch_size"])
        per_input: List[List[np.ndarray]] = [[] for _ in texts]
        for w, row in zip(windows, logits):
            per_input[w.doc].append(row)
        labels = self.labels
        return [
            [
                {"label": label, "score": score}
                for label, score in top_k_scores(activate(pool_logits(rows), function), labels, top_k).items()
            ]
            for rows in per_input
        ]

    def _windows(self, docs: Sequence[Doc], warn: bool = True) -> List[Window]:
        """The windows to classify, each with the index of its doc: all windows
        of a text (`long_text` "windows") or its first, and one window per pair."""
        pairs = [doc._.get(PAIR_ATTR) for doc in docs]
        return self._encode(
            [doc.text for doc in docs], [None if p is None else str(p) for p in pairs], warn
        )

    def _encode(self, texts: Sequence[str], pairs: Sequence[Optional[str]], warn: bool = True) -> List[Window]:
        """The windows of texts, each text with its pair or None (see `_windows`)."""
        engine = self.engine
        singles = [d for d, pair in enumerate(pairs) if pair is None]
        paired = [d for d, pair in enumerate(pairs) if pair is not None]
        windows: List[Window] = []
        cut_single: List[int] = []
        cut_pair: List[int] = []
        if singles:
            windowed = self.cfg["long_text"] == "windows"
            seen = set()
            for w in engine.encode([texts[d] for d in singles], self._stride if windowed else 0):
                d = singles[w.doc]
                if d in seen and not windowed:
                    if not cut_single or cut_single[-1] != d:
                        cut_single.append(d)
                    continue
                seen.add(d)
                windows.append(w._replace(doc=d))
        if paired:
            pair_windows, cut = engine.encode_pairs(
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
            _W_TRUNCATED.format(
                name=self.name, count=len(texts), window=self.engine.window, why=why, examples=examples, fix=fix
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
            doc.cats.update(top_k_scores(doc_scores, labels, self.cfg["top_k"]))
