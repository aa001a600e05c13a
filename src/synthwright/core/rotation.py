"""Showing a fixed pool of examples across many prompts: each prompt sees a different window,
and every example is shown about equally often (classify's style texts, the reranker's real
queries)."""

from __future__ import annotations

from collections.abc import Sequence


def rotated_examples(pool: Sequence[str], position: int, per_prompt: int) -> list[str]:
    """The window of `per_prompt` texts of `pool` for prompt (or round) `position`:
    consecutive positions see different texts, and every text is shown about equally often."""
    if not pool or per_prompt <= 0:
        return []
    start = (position * per_prompt) % len(pool)
    return [pool[(start + i) % len(pool)] for i in range(min(per_prompt, len(pool)))]
