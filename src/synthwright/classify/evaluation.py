"""Scoring classifiers on real labelled rows, and comparing them fairly.

Every system predicts the same rows; accuracy and macro-F1 come with a paired bootstrap of
the difference between two systems (rows resampled together, so the interval reflects which
rows happened to be in the set, not two independent noises). Cost is seconds per 1,000
predictions on this machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def macro_f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Macro-F1 along the last axis (labels), over the labels present in the truth or the
    predictions (as scikit-learn does): a label absent from both is not a zero."""
    denominator = 2 * tp + fp + fn
    present = denominator > 0
    f1 = np.where(present, 2 * tp / np.where(present, denominator, 1), 0.0)
    return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def confusion(truth: Sequence[int], predicted: Sequence[int], n_labels: int) -> np.ndarray:
    """counts[true, predicted]."""
    matrix = np.zeros((n_labels, n_labels), dtype=int)
    np.add.at(matrix, (np.asarray(truth), np.asarray(predicted)), 1)
    return matrix


def scores(truth: Sequence[int], predicted: Sequence[int], n_labels: int) -> dict[str, Any]:
    matrix = confusion(truth, predicted, n_labels)
    tp = np.diag(matrix).astype(float)
    return {
        "accuracy": float(tp.sum() / max(1, matrix.sum())),
        "macro_f1": float(macro_f1_from_counts(tp, matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp)),
        "confusion": matrix.tolist(),
        "rows": int(matrix.sum()),
    }


@dataclass(frozen=True)
class PairedGain:
    """B minus A on the same rows: the observed difference and its bootstrap interval."""

    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def __str__(self) -> str:
        return f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def _resampled_macro_f1(truth: np.ndarray, predicted: np.ndarray, picks: np.ndarray, n_labels: int) -> np.ndarray:
    """Macro-F1 of each resample (rows of `picks`), from per-label counts."""
    t, p = truth[picks], predicted[picks]
    labels = np.arange(n_labels)[:, None, None]
    tp = ((t == labels) & (p == labels)).sum(axis=2).T
    fp = ((t != labels) & (p == labels)).sum(axis=2).T
    fn = ((t == labels) & (p != labels)).sum(axis=2).T
    return macro_f1_from_counts(tp, fp, fn)


def paired_gain(truth: Sequence[int], predicted_a: Sequence[int], predicted_b: Sequence[int], n_labels: int, *,
                metric: str = "accuracy", resamples: int = 4000, confidence: float = 0.95, seed: int = 0) -> PairedGain:
    """Paired bootstrap of metric(B) - metric(A): percentile interval, two-sided p-value."""
    truth, a, b = np.asarray(truth), np.asarray(predicted_a), np.asarray(predicted_b)
    n = len(truth)
    rng = np.random.default_rng(seed)
    differences = []
    chunk = max(1, 400_000 // max(1, n))
    for start in range(0, resamples, chunk):
        picks = rng.integers(0, n, (min(chunk, resamples - start), n))
        if metric == "accuracy":
            differences.append((b[picks] == truth[picks]).mean(axis=1) - (a[picks] == truth[picks]).mean(axis=1))
        else:
            differences.append(_resampled_macro_f1(truth, b, picks, n_labels) - _resampled_macro_f1(truth, a, picks, n_labels))
    diffs = np.concatenate(differences)
    observed_a = scores(truth, a, n_labels)[metric]
    observed_b = scores(truth, b, n_labels)[metric]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    observed = observed_b - observed_a
    far = (diffs <= 0).mean() if observed > 0 else (diffs >= 0).mean()
    p_value = 1.0 if observed == 0 else min(1.0, 2 * float(far))
    return PairedGain(metric, observed_a, observed_b, observed, float(low), float(high), p_value, n)


@dataclass
class SystemResult:
    """One system's predictions on the evaluation rows (or the sample it ran on)."""

    name: str
    kind: str  # student, teacher, zero-shot, real-label
    positions: list[int]  # which evaluation rows it predicted
    predicted: list[int]
    seconds_per_1000: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "rows": len(self.positions), "seconds_per_1000": self.seconds_per_1000,
                "note": self.note, **self.metrics}


def compare_on_shared_rows(truth: Sequence[int], a: SystemResult, b: SystemResult, n_labels: int, seed: int = 0) -> dict[str, Any] | None:
    """B against A on the rows both predicted: accuracy and macro-F1 gains with intervals
    (None when they share no row)."""
    shared = sorted(set(a.positions) & set(b.positions))
    if not shared:
        return None
    where_a = {p: i for i, p in enumerate(a.positions)}
    where_b = {p: i for i, p in enumerate(b.positions)}
    t = [truth[p] for p in shared]
    pa = [a.predicted[where_a[p]] for p in shared]
    pb = [b.predicted[where_b[p]] for p in shared]
    return {
        "a": a.name, "b": b.name, "rows": len(shared),
        "accuracy": paired_gain(t, pa, pb, n_labels, seed=seed).to_dict(),
        "macro_f1": paired_gain(t, pa, pb, n_labels, metric="macro_f1", seed=seed).to_dict(),
    }
