"""Diversity measures of a set of texts and their embeddings. Mode collapse shows as a small
mean pairwise distance, small nearest-neighbour distances, few clusters covering most rows
and a low distinct n-gram ratio. The validation report reuses these to compare a synthetic
set with real data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from synthwright.embed.base import normalise_rows
from synthwright.embed.index import AutoIndex, ExactIndex
from synthwright.errors import require_module
from synthwright.filters.lcs import tokenize

QUANTILES = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90)
# Pairwise work is quadratic: above these sizes the measure runs on a seeded sample.
MAX_PAIRWISE_ROWS = 5000
MAX_CLUSTER_ROWS = 4000
MAX_EXACT_NN_ROWS = 50_000


@dataclass
class DiversityMeasures:
    rows: int
    mean_pairwise_distance: float
    nn_distance_quantiles: dict[str, float]
    cluster_distance: float
    clusters: int
    clusters_for_90pct: int
    distinct_ngrams: dict[str, float]
    pairwise_rows: int  # rows the mean pairwise distance used (a seeded sample past 5,000)
    cluster_rows: int  # rows the clusters were built from (a seeded sample past 4,000)

    def to_dict(self) -> dict:
        return asdict(self)


def _sample(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def mean_pairwise_distance(vectors: np.ndarray, max_rows: int = MAX_PAIRWISE_ROWS, seed: int = 0) -> float:
    """Mean cosine distance over all distinct pairs (of a seeded sample past `max_rows`).
    For unit vectors the sum of all similarities is |sum of vectors|^2, so it is O(n)."""
    vectors = normalise_rows(vectors)[_sample(len(vectors), max_rows, seed)]
    n = len(vectors)
    if n < 2:
        return float("nan")
    total = np.sum(vectors.sum(axis=0, dtype=np.float64) ** 2)
    self_sims = np.sum(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
    return float(1.0 - (total - self_sims) / (n * (n - 1)))


def nearest_neighbours(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest other row and the cosine distance to it (exact up to 50,000 rows,
    approximate beyond). A row with an exact copy has distance 0 to it."""
    vectors = normalise_rows(vectors)
    n = len(vectors)
    if n < 2:
        return np.full(n, np.inf, dtype=np.float32), np.full(n, -1, dtype=np.int64)
    index = ExactIndex(vectors.shape[1], capacity=n) if n <= MAX_EXACT_NN_ROWS else AutoIndex(vectors.shape[1])
    index.add(vectors)
    distances, slots = index.search(vectors, k=2)
    # The first hit is usually the row itself; with exact copies it may be the copy instead.
    is_self = slots[:, 0] == np.arange(n)
    nn = np.where(is_self, slots[:, 1], slots[:, 0])
    distance = np.where(is_self, distances[:, 1], distances[:, 0])
    return np.maximum(distance, 0.0).astype(np.float32), nn.astype(np.int64)


def cluster_sizes(vectors: np.ndarray, distance: float = 0.5, max_rows: int = MAX_CLUSTER_ROWS, seed: int = 0) -> np.ndarray:
    """Sizes (largest first) of average-linkage clusters whose members are on average within
    `distance` of each other, on a seeded sample past `max_rows`."""
    hierarchy = require_module("scipy.cluster.hierarchy", "Diversity clusters", "'synthwright[embed]'")
    vectors = normalise_rows(vectors)[_sample(len(vectors), max_rows, seed)]
    if len(vectors) < 2:
        return np.ones(len(vectors), dtype=np.int64)
    tree = hierarchy.linkage(vectors.astype(np.float64), method="average", metric="cosine")
    labels = hierarchy.fcluster(tree, t=distance, criterion="distance")
    return np.sort(np.bincount(labels)[1:])[::-1]


def clusters_covering(sizes: np.ndarray, share: float = 0.9) -> int:
    """How many of the largest clusters it takes to cover `share` of the rows."""
    if not len(sizes):
        return 0
    covered = np.cumsum(sizes) / sizes.sum()
    return int(np.searchsorted(covered, share - 1e-12) + 1)


def distinct_ngram_ratio(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / all n-grams over the set (distinct-n of Li et al., 2016)."""
    total = 0
    distinct: set[tuple[str, ...]] = set()
    for text in texts:
        tokens = tokenize(text)
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        distinct.update(grams)
    return len(distinct) / total if total else float("nan")


def diversity_measures(
    vectors: np.ndarray, texts: Sequence[str] | None = None, *, cluster_distance: float = 0.5, nn_distance: np.ndarray | None = None, seed: int = 0,
) -> DiversityMeasures:
    """All measures at once. Pass `nn_distance` when already computed (nearest_neighbours)."""
    vectors = normalise_rows(vectors)
    if nn_distance is None:
        nn_distance = nearest_neighbours(vectors)[0]
    finite = nn_distance[np.isfinite(nn_distance)]
    quantiles = {f"p{round(q * 100):02d}": round(float(np.quantile(finite, q)), 4) for q in QUANTILES} if len(finite) else {}
    sizes = cluster_sizes(vectors, cluster_distance, seed=seed)
    return DiversityMeasures(
        rows=len(vectors),
        mean_pairwise_distance=round(mean_pairwise_distance(vectors, seed=seed), 4),
        nn_distance_quantiles=quantiles,
        cluster_distance=cluster_distance,
        clusters=len(sizes),
        clusters_for_90pct=clusters_covering(sizes, 0.9),
        distinct_ngrams={f"distinct-{n}": round(distinct_ngram_ratio(texts, n), 4) for n in (1, 2, 3)} if texts is not None else {},
        pairwise_rows=min(len(vectors), MAX_PAIRWISE_ROWS),
        cluster_rows=min(len(vectors), MAX_CLUSTER_ROWS),
    )
