"""ROUGE-L near-duplicate filter: Self-Instruct's rule (drop a new instruction whose ROUGE-L
F-measure with any kept one exceeds 0.7), computed fast.

ROUGE-L F between token lists a and b is 2*LCS(a, b) / (len(a) + len(b)). Two bounds prune
almost every pair before an LCS is computed:
- LCS <= the multiset overlap of tokens. Counting the k-th occurrence of a token as its own
  feature turns that overlap into a dot product of 0/1 vectors, so one sparse matrix
  product bounds a whole batch against every kept row;
- only pairs whose bound passes get an exact LCS, by a bit-parallel algorithm (one big
  integer operation per token instead of a row of the dynamic-programming table).

Tokens are lower-cased runs of letters and digits, like rouge-score's tokenizer but
Unicode-aware (rouge-score drops non-ASCII letters entirely). `tokenize`, `lcs_length` and
`rouge_l` (lcs.py) need only the standard library; the filter's index (rouge_index.py) needs
numpy and scipy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from synthwright.errors import UserError, require_module
from synthwright.filters.base import DropInfo, FilterStats

Row = dict[str, Any]


def rouge_l_filter(
    rows: Iterable[Row], *, threshold: float = 0.7, text_key: str = "text", id_key: str | None = None, batch_size: int = 256,
    stats: FilterStats | None = None,
) -> Iterator[tuple[Row, DropInfo | None]]:
    """Drop each row whose ROUGE-L F with a kept row is above `threshold` (Self-Instruct: 0.7).
    The first row of a group is kept; a dropped row names the kept row it matches best."""
    if not 0 <= threshold < 1:
        raise UserError(f"The ROUGE-L threshold must be in [0, 1), got {threshold}.", "Self-Instruct uses 0.7.")
    for module in ("numpy", "scipy.sparse"):
        require_module(module, "The ROUGE-L filter", "'synthwright[embed]'")
    from synthwright.filters.rouge_index import RougeLIndex, filter_batch

    stats = stats if stats is not None else FilterStats()
    index = RougeLIndex(threshold)
    position = 0
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            yield from filter_batch(index, batch, position, text_key, id_key, stats)
            position += len(batch)
            batch = []
    if batch:
        yield from filter_batch(index, batch, position, text_key, id_key, stats)
