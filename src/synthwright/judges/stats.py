"""Agreement statistics and bootstrap intervals (scipy for the rank correlations).

Cohen's kappa is written out here because scipy has none and it is four lines of numpy; it
is checked against scikit-learn in the tests.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from synthwright.errors import require_module

JUDGE_EXTRA = "'synthwright[judge]'  (or: pip install scipy)"


def _stats():
    return require_module("scipy.stats", "Judge agreement statistics", JUDGE_EXTRA)


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho; None when it is undefined (fewer than 3 items, or a constant input)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(_stats().spearmanr(x, y).statistic)


def kendall(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (handles ties); None when undefined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(_stats().kendalltau(x, y).statistic)


def cohen_kappa(a: Sequence, b: Sequence, labels: Sequence | None = None, weights: str | None = None) -> float | None:
    """Cohen's kappa between two raters; `weights="quadratic"` for ordinal scales (labels in
    scale order). None when undefined (both raters always give the same single label)."""
    if weights not in (None, "linear", "quadratic"):
        raise ValueError("weights must be None, 'linear' or 'quadratic'")
    labels = list(labels) if labels is not None else sorted(set(a) | set(b))
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    observed = np.zeros((k, k))
    for x, y in zip(a, b):
        observed[index[x], index[y]] += 1
    n = observed.sum()
    if n == 0:
        return None
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    i, j = np.indices((k, k))
    # Disagreement weights: 0 on the diagonal; for ordinal scales, growing with distance.
    distance = np.abs(i - j) / max(k - 1, 1)
    disagreement = {None: (i != j).astype(float), "linear": distance, "quadratic": distance**2}[weights]
    denominator = (disagreement * expected).sum()
    if denominator == 0:
        return None
    return float(1.0 - (disagreement * observed).sum() / denominator)


def to_scale(scores: Sequence[float], low: int = 1, high: int = 5) -> list[int]:
    """Round continuous scores onto an integer scale (for kappa)."""
    return [int(min(high, max(low, math.floor(s + 0.5)))) for s in scores]


@dataclass(frozen=True)
class Estimate:
    """A statistic with a bootstrap percentile interval (None where undefined)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}

    def __str__(self) -> str:
        if self.value is None:
            return "n/a"
        if self.low is None:
            return f"{self.value:.3f}"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap(
    statistic: Callable[[np.ndarray], float | None],
    n: int,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """`statistic(indices)` on all n items, with a percentile interval from resampling the
    items with replacement. Resamples where the statistic is undefined are left out."""
    if n == 0:
        return Estimate(None, n=0)
    value = statistic(np.arange(n))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        result = statistic(rng.integers(0, n, size=n))
        if result is not None and math.isfinite(result):
            draws.append(result)
    if value is None or len(draws) < max(10, resamples // 10):
        return Estimate(_finite(value) if value is not None else None, n=n)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return Estimate(float(value), float(low), float(high), n)
