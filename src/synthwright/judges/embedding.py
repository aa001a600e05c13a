"""A non-LLM second opinion: cosine similarity of sentence embeddings.

It shares no blind spots with a generator LLM, costs a fraction of an LLM judgment, and on
real SciFact pairs MiniLM cosine reranked better than the 1.5B judge (MODELS.md). It judges
relevance only: how close the text (or each of A and B) is to the context.

- pointwise: score = 1 + 4 * clip(cos, 0, 1), on the rubric scale but not calibrated to it;
  calibration against human labels (or its ensemble weight) puts it in its place.
- pairwise: P(A better) = sigmoid((cos_A - cos_B) / temperature). It has no position, so both
  orders agree by construction.

The embedder is anything with `.embed(texts) -> array` (synthwright.embed's embedders) or a
plain callable `texts -> array`; by default the offline MiniLM (`minilm`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Union

import numpy as np

from synthwright.judges.base import Judge, JudgeFailure, PairItem, PairResult, PointItem, PointResult, Progress
from synthwright.judges.rubric import SCALE

EmbedFn = Callable[[Sequence[str]], Any]
EmbedderLike = Union[str, EmbedFn, Any]


class EmbeddingJudge(Judge):
    kinds = ("pointwise", "pairwise")

    def __init__(self, embedder: EmbedderLike = "minilm", *, name: str = "embedding", temperature: float = 0.05):
        super().__init__(name, model=None)
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self._embedder_arg = embedder
        self._embed_fn: EmbedFn | None = None
        self.temperature = temperature

    def preference(self, cos_a: float, cos_b: float) -> float:
        """P(A better) from the two cosines with the context (from this judge's embedder, or
        from a retriever's, as the reranker's pair judging has them)."""
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, (cos_a - cos_b) / self.temperature))))

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._embed_fn is None:
            embedder = self._embedder_arg
            if isinstance(embedder, str):
                from synthwright.embed import load_embedder  # the embed extra, on first use only

                embedder = load_embedder(embedder)
            self._embed_fn = embedder.embed if hasattr(embedder, "embed") else embedder
        vectors = np.asarray(self._embed_fn(texts), dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def describe(self) -> dict[str, Any]:
        embedder = self._embedder_arg
        identity = embedder if isinstance(embedder, str) else getattr(embedder, "identity", type(embedder).__name__)
        return {"kind": "embedding", "embedder": identity, "temperature": self.temperature}

    def _cosines(self, anchors: list[str], texts: list[str]) -> np.ndarray:
        unique = list(dict.fromkeys(anchors + texts))
        vectors = self._embed(unique)
        row = {text: vectors[i] for i, text in enumerate(unique)}
        return np.array([float(row[a] @ row[t]) for a, t in zip(anchors, texts)])

    def score(self, items: list[PointItem], progress: Progress | None = None) -> list[PointResult | JudgeFailure]:
        usable = [i for i, item in enumerate(items) if item.context is not None]
        cosines = self._cosines([items[i].context for i in usable], [items[i].text for i in usable]) if usable else []
        by_index = dict(zip(usable, cosines))
        low, high = SCALE
        results: list[PointResult | JudgeFailure] = []
        for i in range(len(items)):
            if i not in by_index:
                results.append(JudgeFailure("no_context: the embedding judge compares the text with its context"))
                continue
            similarity = by_index[i]
            results.append(PointResult(low + (high - low) * min(1.0, max(0.0, similarity)), reason=f"cosine {similarity:.3f}"))
        return results

    def compare(self, items: list[PairItem], progress: Progress | None = None) -> list[PairResult | JudgeFailure]:
        if not items:
            return []
        contexts = [item.context for item in items]
        cos_a = self._cosines(contexts, [item.a for item in items])
        cos_b = self._cosines(contexts, [item.b for item in items])
        results: list[PairResult | JudgeFailure] = []
        for a, b in zip(cos_a, cos_b):
            p_a = self.preference(a, b)
            # No position: "first wins" is "A wins" in order AB and "B wins" in order BA.
            results.append(PairResult(p_first_ab=p_a, p_first_ba=1.0 - p_a, reason=f"cosine A {a:.3f}, B {b:.3f}"))
        return results
