"""Pure sequence-classification logic: pooling window logits, the activation,
and which labels are kept (numpy only, no spaCy, no torch).

The rules follow transformers' TextClassificationPipeline:

- `function_to_apply` "auto" picks "none" for `problem_type` "regression",
  "sigmoid" for `problem_type` "multi_label_classification" or a single output,
  else "softmax".
- Scores are sorted from highest to lowest (ties keep label order) and `top_k`
  keeps the first k; None keeps all.

Long texts: the logits of a text's windows are averaged (mean-pooled) first and
the activation is applied once to the pooled logits.
"""
from typing import Dict, Optional, Sequence

import numpy as np


def resolve_function(function_to_apply: str, problem_type: Optional[str], num_labels: int) -> str:
    """The activation that `function_to_apply` means for a model with this
    `problem_type` and number of outputs: "sigmoid", "softmax" or "none"."""
    if function_to_apply in ("sigmoid", "softmax", "none"):
        return function_to_apply
    if function_to_apply != "auto":
        raise ValueError(f"unknown function_to_apply {function_to_apply!r}")
    if problem_type == "regression":
        return "none"
    if problem_type == "multi_label_classification" or num_labels == 1:
        return "sigmoid"
    return "softmax"


def is_multi_label(function: str, problem_type: Optional[str], num_labels: int) -> bool:
    """Whether the scores are independent per label (for scoring): "sigmoid" yes,
    "softmax" no, "none" as the model's own ("auto") activation says."""
    if function == "none":
        function = resolve_function("auto", problem_type, num_labels)
    return function == "sigmoid"


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """As transformers computes it."""
    return np.asarray(1.0 / (1.0 + np.exp(-logits)))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis, as transformers computes it."""
    maxes = np.max(logits, axis=-1, keepdims=True)
    shifted = np.exp(logits - maxes)
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))


def pool_logits(window_logits: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of the windows' (labels,) logits; one window is returned as is."""
    if len(window_logits) == 0:
        raise ValueError("no windows to pool")
    if len(window_logits) == 1:
        return np.asarray(window_logits[0], dtype=np.float32)
    return np.asarray(np.mean(np.stack(window_logits), axis=0), dtype=np.float32)


def activate(logits: np.ndarray, function: str) -> np.ndarray:
    """Apply a resolved activation ("sigmoid", "softmax" or "none")."""
    if function == "sigmoid":
        return sigmoid(logits)
    if function == "softmax":
        return softmax(logits)
    if function == "none":
        return logits
    raise ValueError(f"unresolved function {function!r}")


def top_k_scores(scores: np.ndarray, labels: Sequence[str], top_k: Optional[int]) -> Dict[str, float]:
    """Labels and scores, highest first (stable for ties), the first `top_k` of
    them (None: all)."""
    order = sorted(range(len(labels)), key=lambda i: float(scores[i]), reverse=True)
    if top_k is not None:
        order = order[:top_k]
    return {labels[i]: float(scores[i]) for i in order}
