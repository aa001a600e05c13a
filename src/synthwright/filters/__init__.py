"""Filters: keep or drop rows, always with a reason.

- `text_rules`: cheap text rules as a pipeline step (core dependencies only).
- `novelty`, `semantic`: the novelty gate and semantic dedup over embeddings.
- `lexical`, `rouge`: exact-after-normalisation, MinHash-LSH and ROUGE-L (Self-Instruct) dedup.

Each dedup function takes an iterable of row dicts and yields (row, DropInfo | None) in
input order, streaming; pass a FilterStats to collect counts that add up. The embedding
and lexical filters need the `embed` extra (pip install 'synthwright[embed]'); they are
imported on first use, so importing this package stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from synthwright.errors import MissingDependency

_EXPORTS = {
    "DropInfo": "base", "FilterStats": "base",
    "AdmitResult": "novelty", "FillResult": "novelty", "GateStats": "novelty", "NoveltyGate": "novelty",
    "semantic_dedup": "semantic",
    "exact_dedup": "lexical", "minhash_dedup": "lexical", "normalise_text": "lexical",
    "rouge_l_filter": "rouge", "rouge_l": "lcs", "lcs_length": "lcs", "tokenize": "lcs",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'synthwright.filters' has no attribute '{name}'")
    try:
        module = importlib.import_module(f"synthwright.filters.{_EXPORTS[name]}")
    except ModuleNotFoundError as exc:
        if exc.name in ("numpy", "scipy"):
            raise MissingDependency(f"synthwright.filters.{name}", "'synthwright[embed]'") from exc
        raise
    return getattr(module, name)
