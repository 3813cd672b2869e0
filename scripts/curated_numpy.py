"""Let spacy-curated-transformers 0.3.1's `curated_transformer` train under
NumPy >= 2.4 (for the comparison in `scripts/curated_twin.py`).

Its update keeps the loss in a one-element array (`xp.full(1, loss)`) and ends
with `float(cum_loss)`, which NumPy 2.4 refuses ("TypeError: only
0-dimensional arrays can be converted to Python scalars"): every training step
of a pipeline with a curated transformer fails, frozen or not. This patch
makes that array 0-dimensional for the duration of `_create_backprops` (the
only place it is built); nothing else changes. Loaded by `spacy train --code
scripts/curated_numpy.py` (spaCy imports the file before training).
"""
from typing import Any

from spacy_curated_transformers.pipeline.transformer import CuratedTransformer

_original = CuratedTransformer._create_backprops


class _Xp:
    """The array module, with `full(1, value)` giving a 0-dimensional array."""

    def __init__(self, xp: Any) -> None:
        self._xp = xp

    def full(self, shape: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if shape == 1:
            return self._xp.asarray(value, dtype="float32")
        return self._xp.full(shape, value, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)


def _create_backprops(self: Any, docs: Any, losses: Any, *, sgd: Any = None) -> Any:
    ops = self.model.ops
    xp = ops.xp
    ops.xp = _Xp(xp)
    try:
        return _original(self, docs, losses, sgd=sgd)
    finally:
        del ops.xp  # the class attribute (numpy) again


if not getattr(CuratedTransformer._create_backprops, "numpy_patch", False):
    _create_backprops.numpy_patch = True  # type: ignore[attr-defined]
    CuratedTransformer._create_backprops = _create_backprops
