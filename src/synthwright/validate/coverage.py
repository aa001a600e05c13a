"""Does the synthetic set cover the real one? Two views on embeddings:

- k-NN precision / recall / density / coverage (Naeem et al., 2020, "Reliable Fidelity and
  Diversity Metrics for Generative Models"): each real row gets a ball reaching its k-th
  nearest real neighbour. Precision: share of synthetic rows inside some real ball (are
  they realistic?). Recall: share of real rows inside some synthetic row's own k-NN ball
  (is the real variety produced?). Density: average number of real balls a synthetic row
  falls in, over k (about 1 for the same distribution; robust to real outliers). Coverage:
  share of real balls that hold at least one synthetic row (about 1 - 2^-k, ~0.97 at k=5,
  for the same distribution; a missing topic cluster shows as its share missing).
- A classifier two-sample test: logistic regression tries to tell synthetic from real;
  its cross-validated ROC AUC is 0.5 when it cannot, 1.0 when the sets are disjoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from synthwright.errors import UserError, require_module

MAX_ROWS = 5000  # pairwise distances are quadratic: larger sets use a seeded sample


@dataclass
class Coverage:
    k: int
    real_rows: int
    synthetic_rows: int
    precision: float
    recall: float
    density: float
    coverage: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TwoSampleTest:
    auc: float
    fold_aucs: list[float]
    folds: int
    # Out-of-fold P(synthetic) of every row: real rows first, then synthetic, as given.
    p_synthetic: np.ndarray = field(repr=False)

    @property
    def auc_std(self) -> float:
        return float(np.std(self.fold_aucs))

    def to_dict(self) -> dict:
        return {"auc": self.auc, "auc_std": self.auc_std, "fold_aucs": self.fold_aucs, "folds": self.folds}


def _sample(vectors: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(vectors) <= limit:
        return vectors
    return vectors[np.sort(np.random.default_rng(seed).choice(len(vectors), size=limit, replace=False))]


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between all rows of a and b (float64 for stable small radii)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def _kth_radius(within: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest *other* row (column 0 after sort is itself)."""
    return np.sort(within, axis=1)[:, k]


def knn_coverage(real: np.ndarray, synthetic: np.ndarray, k: int = 5, *, max_rows: int = MAX_ROWS, seed: int = 0) -> Coverage:
    """Naeem et al. precision, recall, density and coverage of `synthetic` against `real`."""
    real, synthetic = _sample(np.asarray(real), max_rows, seed), _sample(np.asarray(synthetic), max_rows, seed + 1)
    if min(len(real), len(synthetic)) <= k:
        raise UserError(f"k-NN coverage with k={k} needs more than {k} rows on each side (real {len(real)}, synthetic {len(synthetic)}).",
                        "Give more rows, or lower k.")
    real_radius = _kth_radius(_distances(real, real), k)
    synth_radius = _kth_radius(_distances(synthetic, synthetic), k)
    cross = _distances(real, synthetic)  # real x synthetic
    in_real_ball = cross <= real_radius[:, None]  # synthetic row j inside real row i's ball
    return Coverage(
        k=k, real_rows=len(real), synthetic_rows=len(synthetic),
        precision=float(in_real_ball.any(axis=0).mean()),
        recall=float((cross <= synth_radius[None, :]).any(axis=1).mean()),
        density=float(in_real_ball.sum(axis=0).mean() / k),
        coverage=float((cross.min(axis=1) <= real_radius).mean()),
    )


def two_sample_auc(real: np.ndarray, synthetic: np.ndarray, *, folds: int = 5, seed: int = 0) -> TwoSampleTest:
    """Cross-validated ROC AUC of a logistic regression telling synthetic (1) from real (0).

    Stratified folds keep the class ratio in each fold; predictions are out-of-fold, so a
    classifier that memorises rows gets no credit. Class weights are balanced so unequal
    set sizes do not push every prediction to the larger class.
    """
    require_module("sklearn", "The classifier two-sample test", "'synthwright[validate]'")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    x = np.vstack([np.asarray(real, np.float32), np.asarray(synthetic, np.float32)])
    y = np.r_[np.zeros(len(real), int), np.ones(len(synthetic), int)]
    folds = min(folds, len(real), len(synthetic))
    if folds < 2:
        raise UserError("The two-sample test needs at least 2 rows on each side.")
    p = np.zeros(len(y))
    fold_aucs = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(x[train], y[train])
        p[test] = model.predict_proba(x[test])[:, 1]
        fold_aucs.append(float(roc_auc_score(y[test], p[test])))
    return TwoSampleTest(auc=float(roc_auc_score(y, p)), fold_aucs=fold_aucs, folds=folds, p_synthetic=p)
