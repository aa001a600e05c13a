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
`rouge_l` need only the standard library; the filter's index (rouge_index.py) needs numpy
and scipy.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any

from synthwright.errors import UserError, require_module
from synthwright.filters.base import DropInfo, FilterStats

Row = dict[str, Any]
_TOKEN = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence, bit-parallel (Allison-Dix / Hyyrö):
    bit i of `row` tracks the DP row over a; each token of b updates all bits at once."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict[Hashable, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        matched = row & masks.get(token, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(a) - row.bit_count()


def rouge_l(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """ROUGE-L F-measure of two token lists (symmetric)."""
    if not a or not b:
        return 0.0
    return 2.0 * lcs_length(a, b) / (len(a) + len(b))


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
