"""Reranker building blocks: retrieval (BM25, dense, hybrid), pair selection on a budget,
score recovery from pairwise preferences (Thurstone / Bradley-Terry), and IR metrics.

Needs the `ranking` extra: pip install 'synthwright[ranking]' (dense retrieval also needs
the `embed` extra). Submodules import their optional dependencies lazily.
"""

from synthwright.errors import require_module

require_module("numpy", "synthwright.ranking", "'synthwright[ranking]'")

from synthwright.ranking.metrics import PairedBootstrap, evaluate, paired_bootstrap
from synthwright.ranking.pairs import is_connected, select_pairs, select_pairs_many
from synthwright.ranking.retrieval import (
    BeirData,
    Retriever,
    load_beir,
    load_corpus,
    reciprocal_rank_fusion,
)
from synthwright.ranking.scores import RecoveredScores, recover_scores

__all__ = [
    "BeirData",
    "PairedBootstrap",
    "RecoveredScores",
    "Retriever",
    "evaluate",
    "is_connected",
    "load_beir",
    "load_corpus",
    "paired_bootstrap",
    "reciprocal_rank_fusion",
    "recover_scores",
    "select_pairs",
    "select_pairs_many",
]
