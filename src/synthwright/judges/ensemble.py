"""Ensembles: several judges vote; the combined verdict is their (weighted) mean.

Pointwise judges vote with their overall score (rubric scale), pairwise judges with
P(A better). Weights are equal by default, given explicitly (e.g. from `calibrate`, which
weighs each judge by its agreement with humans), or "agreement": each judge weighted by how
well it follows the signal the judges share (see `agreement_weights`: a judge that
contradicts the others counts for nothing; two judges are weighted equally, by symmetry).

An item one member cannot judge fails as a whole, with that member's reason: a combined
score made of fewer judges than the others would not be comparable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from synthwright.errors import UserError
from synthwright.judges.base import Judge, JudgeFailure, PairItem, PairResult, PointItem, PointResult, Progress
from synthwright.judges.stats import cohen_kappa, spearman, to_scale

Weighting = Literal["equal", "agreement"]
ProgressFactory = Callable[[Judge], Progress | None]


@dataclass
class EnsembleOutcome:
    kind: str  # "pointwise" or "pairwise"
    members: dict[str, list]  # judge name -> one PointResult/PairResult/JudgeFailure per item
    combined: list[float | None]  # None where the item failed
    failures: list[str | None]  # the reason an item failed, else None
    weights: dict[str, float] = field(default_factory=dict)

    def member_value(self, name: str, index: int) -> float:
        return _value(self.members[name][index])


def _value(result: PointResult | PairResult) -> float:
    return result.score if isinstance(result, PointResult) else result.p_a


class JudgeEnsemble:
    def __init__(self, judges: list[Judge], weights: dict[str, float] | Weighting | None = None):
        if not judges:
            raise UserError("An ensemble needs at least one judge.")
        names = [j.name for j in judges]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise UserError(f"Two judges are named {duplicates[0]!r}.", "Give each judge its own name (NAME=SPEC on the command line).")
        self.judges = judges
        if isinstance(weights, dict):
            unknown = sorted(set(weights) - set(names))
            if unknown:
                raise UserError(f"Weights name unknown judge(s): {', '.join(unknown)}.", f"The judges are: {', '.join(names)}.")
            if any(w < 0 for w in weights.values()) or sum(weights.get(n, 0.0) for n in names) <= 0:
                raise UserError("Judge weights must be non-negative with a positive sum.")
        elif weights not in (None, "equal", "agreement"):
            raise UserError(f"Unknown weighting {weights!r}.", "Use 'equal', 'agreement' or a mapping of judge name to weight.")
        self.weights = weights or "equal"

    def score(self, items: list[PointItem], progress: ProgressFactory | None = None) -> EnsembleOutcome:
        members = {j.name: j.score(items, progress(j) if progress else None) for j in self.judges}
        return self._combine("pointwise", members, len(items))

    def compare(self, items: list[PairItem], progress: ProgressFactory | None = None) -> EnsembleOutcome:
        members = {j.name: j.compare(items, progress(j) if progress else None) for j in self.judges}
        return self._combine("pairwise", members, len(items))

    def _combine(self, kind: str, members: dict[str, list], n: int) -> EnsembleOutcome:
        failures: list[str | None] = []
        for i in range(n):
            failed = [(name, r.reason) for name, results in members.items() if isinstance(r := results[i], JudgeFailure)]
            failures.append(f"{failed[0][0]}: {failed[0][1]}" if failed else None)
        ok = [i for i in range(n) if failures[i] is None]
        values = {name: [_value(results[i]) for i in ok] for name, results in members.items()}
        weights = self._resolve_weights(values)
        combined: list[float | None] = [None] * n
        for position, i in enumerate(ok):
            combined[i] = combine_values({name: values[name][position] for name in values}, weights)
        return EnsembleOutcome(kind, members, combined, failures, weights)

    def _resolve_weights(self, values: dict[str, list[float]]) -> dict[str, float]:
        names = list(values)
        if isinstance(self.weights, dict):
            raw = {name: self.weights.get(name, 0.0) for name in names}
        elif self.weights == "agreement":
            raw = agreement_weights(values)
        else:
            raw = dict.fromkeys(names, 1.0)
        total = sum(raw.values())
        return {name: w / total for name, w in raw.items()}


def combine_values(values: dict[str, float], weights: dict[str, float]) -> float:
    """Weighted mean over the judges present (weights renormalised over them)."""
    total = sum(weights.get(name, 0.0) for name in values)
    if total <= 0:
        return float(np.mean(list(values.values())))
    return sum(value * weights.get(name, 0.0) for name, value in values.items()) / total


def agreement_weights(values: dict[str, list[float]]) -> dict[str, float]:
    """Each judge's loading on what the judges share: the leading eigenvector of their
    Spearman correlation matrix, floored at 0 (the idea of the spectral meta-learner,
    Parisi et al. 2014: without labels, a judge's agreement with the common signal estimates
    its accuracy). A judge that contradicts the consensus gets 0; two judges are weighted
    equally, by symmetry. Falls back to equal weights when no two judges agree at all."""
    names = list(values)
    k = len(names)
    corr = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            corr[i, j] = corr[j, i] = spearman(values[names[i]], values[names[j]]) or 0.0
    if k < 2 or corr[~np.eye(k, dtype=bool)].max() <= 0:
        return dict.fromkeys(names, 1.0)
    _, vectors = np.linalg.eigh(corr)
    leading = vectors[:, -1]  # eigh sorts eigenvalues ascending
    leading = leading if leading.sum() >= 0 else -leading  # an eigenvector's sign is arbitrary
    return {name: max(0.0, float(w)) for name, w in zip(names, leading)}


def agreement_table(values: dict[str, list[float]], kind: str) -> list[dict]:
    """For every pair of judges: n, Spearman's rho and Cohen's kappa.

    Kappa is on decisions: pointwise scores rounded onto 1-5 with quadratic weights (an
    ordinal scale: 4 vs 5 is a smaller disagreement than 1 vs 5), pairwise winners A/B.
    """
    names = list(values)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            x, y = values[a], values[b]
            if kind == "pointwise":
                kappa = cohen_kappa(to_scale(x), to_scale(y), labels=range(1, 6), weights="quadratic")
            else:
                kappa = cohen_kappa([v > 0.5 for v in x], [v > 0.5 for v in y], labels=[False, True])
            rows.append({
                "a": a, "b": b, "n": len(x), "spearman": spearman(x, y), "kappa": kappa,
                "kappa_weights": "quadratic" if kind == "pointwise" else "none",
            })
    return rows
