"""The index behind `rouge_l_filter`: kept rows as sparse 0/1 rows of (token, occurrence)
features, so one sparse product bounds a batch's ROUGE-L against every kept row, and only
pairs that pass the bound get an exact LCS (see rouge.py for the bound)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from synthwright.errors import require_module
from synthwright.filters.base import DropInfo, FilterStats, row_id, row_text
from synthwright.filters.lcs import rouge_l, tokenize

Row = dict[str, Any]
MERGE_BLOCKS = 8  # kept rows live in sparse blocks; merging keeps the block count small


class _Features:
    """Maps (token, occurrence number) to a column, so 0/1 rows count multiset overlap."""

    def __init__(self):
        self.columns: dict[tuple[str, int], int] = {}

    def matrix(self, token_lists: list[list[str]]):
        sparse = require_module("scipy.sparse", "The ROUGE-L filter", "'synthwright[embed]'")
        indices: list[int] = []
        indptr = [0]
        for tokens in token_lists:
            seen: dict[str, int] = {}
            for token in tokens:
                k = seen.get(token, 0)
                seen[token] = k + 1
                indices.append(self.columns.setdefault((token, k), len(self.columns)))
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.int32)
        return sparse.csr_matrix((data, np.asarray(indices, dtype=np.int64), np.asarray(indptr)), shape=(len(token_lists), max(len(self.columns), 1)))


class RougeLIndex:
    """Kept token lists plus a sparse overlap index over them."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.features = _Features()
        self.tokens: list[list[str]] = []
        self.ids: list[Hashable] = []
        self._blocks: list[Any] = []  # sparse rows of kept texts, in kept order
        self._lengths = np.zeros(0, dtype=np.int64)

    def candidates(self, matrix, lengths: np.ndarray) -> list[np.ndarray]:
        """For each batch row, kept rows whose overlap bound lets ROUGE-L exceed the threshold."""
        found: list[list[np.ndarray]] = [[] for _ in range(matrix.shape[0])]
        offset = 0
        for block in self._blocks:
            block.resize((block.shape[0], matrix.shape[1]))  # new columns cannot match old rows
            overlap = (matrix @ block.T).tocoo()
            kept_rows = overlap.col + offset
            passes = 2.0 * overlap.data > self.threshold * (lengths[overlap.row] + self._lengths[kept_rows])
            for r, c in zip(overlap.row[passes], kept_rows[passes]):
                found[r].append(c)
            offset += block.shape[0]
        return [np.asarray(sorted(c), dtype=np.int64) for c in found]

    def add(self, matrix, token_lists: list[list[str]], ids: list[Hashable]) -> None:
        if not token_lists:
            return
        self.tokens.extend(token_lists)
        self.ids.extend(ids)
        self._lengths = np.concatenate([self._lengths, [len(t) for t in token_lists]])
        self._blocks.append(matrix)
        if len(self._blocks) > MERGE_BLOCKS:
            sparse = require_module("scipy.sparse", "The ROUGE-L filter", "'synthwright[embed]'")
            width = max(b.shape[1] for b in self._blocks)
            for block in self._blocks:
                block.resize((block.shape[0], width))
            self._blocks = [sparse.vstack(self._blocks, format="csr")]


def filter_batch(index: RougeLIndex, batch: list[Row], position: int, text_key: str, id_key: str | None, stats: FilterStats):
    token_lists = [tokenize(row_text(row, position + i, text_key)) for i, row in enumerate(batch)]
    ids = [row_id(row, position + i, id_key) for i, row in enumerate(batch)]
    lengths = np.asarray([len(t) for t in token_lists], dtype=np.int64)
    matrix = index.features.matrix(token_lists)
    against_kept = index.candidates(matrix, lengths)
    # Pairs inside the batch: the same bound on the batch against itself.
    within = (matrix @ matrix.T).tocoo()
    passes = (within.col < within.row) & (2.0 * within.data > index.threshold * (lengths[within.row] + lengths[within.col]))
    earlier: list[list[int]] = [[] for _ in batch]
    for r, c in zip(within.row[passes], within.col[passes]):
        earlier[r].append(int(c))
    keep = np.ones(len(batch), dtype=bool)
    results: list[DropInfo | None] = []
    for i, tokens in enumerate(token_lists):
        scored = [(rouge_l(tokens, index.tokens[k]), index.ids[k]) for k in against_kept[i]]
        scored += [(rouge_l(tokens, token_lists[j]), ids[j]) for j in sorted(earlier[i]) if keep[j]]
        best_score, best_id = max(scored, key=lambda pair: pair[0], default=(0.0, None))
        drop = DropInfo("rouge_l_duplicate", best_id, "rouge_l_f", round(best_score, 4)) if best_score > index.threshold else None
        keep[i] = drop is None
        results.append(drop)
    index.add(matrix[keep], [t for t, k in zip(token_lists, keep) if k], [i for i, k in zip(ids, keep) if k])
    for row, drop in zip(batch, results):
        stats.count(drop)
        yield row, drop
