"""Choosing epsilon for semantic dedup: where does "near-duplicate" end and "shares surface
features" begin? For a set of texts this computes each row's nearest-neighbour distance,
how many rows dedup would keep at several thresholds, and example pairs just inside each
threshold, so a person can read what each threshold would call a duplicate.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from synthwright.diversity.measures import DiversityMeasures, diversity_measures, nearest_neighbours
from synthwright.embed.base import normalise_rows
from synthwright.filters.novelty import NoveltyGate

DEFAULT_THRESHOLDS = (0.02, 0.05, 0.10, 0.15, 0.20, 0.30, 0.40)


@dataclass
class ThresholdRow:
    threshold: float
    kept: int  # rows a keep-first dedup at this threshold keeps
    dropped: int
    kept_share: float
    rows_with_neighbour_within: int  # rows whose nearest neighbour is this close (either side of a pair)


@dataclass
class ExamplePair:
    distance: float
    id: Hashable
    text: str
    neighbour_id: Hashable
    neighbour_text: str


@dataclass
class EpsilonReport:
    rows: int
    thresholds: list[ThresholdRow]
    examples: dict[str, list[ExamplePair]]  # "0.10" -> pairs with distance in (previous threshold, 0.10]
    measures: DiversityMeasures
    nn_distance: np.ndarray = field(repr=False)
    nn_index: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "thresholds": [asdict(t) for t in self.thresholds],
            "examples": {k: [asdict(p) for p in v] for k, v in self.examples.items()},
            "measures": self.measures.to_dict(),
        }


def kept_at(vectors: np.ndarray, threshold: float) -> int:
    """Rows a keep-first semantic dedup at `threshold` keeps (the real gate, not an estimate)."""
    gate = NoveltyGate(None, threshold)
    return int(gate.admit_vectors(vectors).keep.sum())


def example_pairs(
    nn_distance: np.ndarray, nn_index: np.ndarray, texts: Sequence[str], ids: Sequence[Hashable], low: float, high: float, count: int
) -> list[ExamplePair]:
    """Up to `count` distinct pairs with distance in (low, high], closest to `high` first:
    the borderline cases are the ones that show what the threshold means."""
    in_band = np.flatnonzero((nn_distance > low) & (nn_distance <= high))
    pairs: list[ExamplePair] = []
    seen: set[frozenset[int]] = set()
    for i in in_band[np.argsort(-nn_distance[in_band], kind="stable")]:
        j = int(nn_index[i])
        if frozenset((int(i), j)) in seen:
            continue
        seen.add(frozenset((int(i), j)))
        a, b = sorted((int(i), j))
        pairs.append(ExamplePair(round(float(nn_distance[i]), 4), ids[a], texts[a], ids[b], texts[b]))
        if len(pairs) == count:
            break
    return pairs


def analyse_epsilon(
    vectors: np.ndarray, texts: Sequence[str], ids: Sequence[Hashable] | None = None, *, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    pairs_per_threshold: int = 3, cluster_distance: float = 0.5, seed: int = 0,
) -> EpsilonReport:
    vectors = normalise_rows(vectors)
    ids = list(ids) if ids is not None else list(range(len(texts)))
    thresholds = sorted(float(t) for t in thresholds)
    nn_distance, nn_index = nearest_neighbours(vectors)
    rows = []
    for t in thresholds:
        kept = kept_at(vectors, t)
        rows.append(ThresholdRow(t, kept, len(vectors) - kept, round(kept / max(len(vectors), 1), 4), int(np.count_nonzero(nn_distance <= t))))
    examples = {}
    for low, high in zip([-1.0, *thresholds[:-1]], thresholds):
        examples[f"{high:.2f}"] = example_pairs(nn_distance, nn_index, texts, ids, low, high, pairs_per_threshold)
    measures = diversity_measures(vectors, texts, cluster_distance=cluster_distance, nn_distance=nn_distance, seed=seed)
    return EpsilonReport(len(vectors), rows, examples, measures, nn_distance, nn_index)
