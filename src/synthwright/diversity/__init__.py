"""Diversity of a set of texts: measures (mean pairwise distance, nearest-neighbour distance
quantiles, clusters covering 90% of rows, distinct n-grams) and the analysis for choosing
the dedup epsilon. Needs the `embed` extra: pip install 'synthwright[embed]'.
"""

from synthwright.errors import require_module

require_module("numpy", "synthwright.diversity", "'synthwright[embed]'")

from synthwright.diversity.epsilon import DEFAULT_THRESHOLDS, EpsilonReport, ExamplePair, ThresholdRow, analyse_epsilon, kept_at
from synthwright.diversity.measures import (
    DiversityMeasures,
    cluster_sizes,
    clusters_covering,
    distinct_ngram_ratio,
    diversity_measures,
    mean_pairwise_distance,
    nearest_neighbours,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DiversityMeasures",
    "EpsilonReport",
    "ExamplePair",
    "ThresholdRow",
    "analyse_epsilon",
    "cluster_sizes",
    "clusters_covering",
    "distinct_ngram_ratio",
    "diversity_measures",
    "kept_at",
    "mean_pairwise_distance",
    "nearest_neighbours",
]
