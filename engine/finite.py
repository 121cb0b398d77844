"""Refusing non-finite vectors before they are ranked.

A NaN compares false with everything, so a NaN vector does not fail loudly
downstream: its scores drop out of the top-k run while exact ranks would put
it first, and a run could end ``done`` with perfect or empty numbers. The
evaluator checks the vectors once, where they enter the search, and fails the
run in one line instead.
"""

from __future__ import annotations

import numpy as np


class NonFiniteVectorsError(ValueError):
    """Some vectors hold NaN or infinity: the model (or a cache of its states) is broken."""


def require_finite(vectors: np.ndarray, what: str, where: str) -> None:
    """Raise :class:`NonFiniteVectorsError` naming ``where`` and how many of the ``what`` are not finite."""
    bad = int(np.count_nonzero(~np.isfinite(vectors).reshape(len(vectors), -1).all(axis=1))) if len(vectors) else 0
    if bad:
        raise NonFiniteVectorsError(f"{where}: {bad} of {len(vectors)} {what} hold NaN or infinity; check the "
                                    "model's weights (and its frozen-prefix cache, with frozen_cache)")
