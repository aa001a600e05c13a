"""Helpers shared by the embedding test files (test_embed, test_novelty, test_diversity_cli)."""

from __future__ import annotations

import os
from pathlib import Path

TEST_CACHE_ENV = "SYNTHWRIGHT_TEST_EMBED_CACHE"


def session_embedding_cache(tmp_path_factory) -> Path:
    """One embedding cache file for the whole test session, so each text is embedded once
    across test files; $SYNTHWRIGHT_TEST_EMBED_CACHE keeps it across sessions (MiniLM is
    deterministic, so a cached vector is the vector)."""
    env = os.environ.get(TEST_CACHE_ENV)
    return Path(env) if env else tmp_path_factory.getbasetemp() / "embeddings.sqlite"
