"""Tokens, longest common subsequence and ROUGE-L F of token lists: the standard library only.
The ROUGE-L filter (rouge.py) and its index (rouge_index.py) build on these."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence

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
