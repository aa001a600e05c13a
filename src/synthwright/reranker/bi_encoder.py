"""A bi-encoder over a whole corpus: the student (or its base model) as a dense retriever and
as a reranker of any first stage, from one encoding of the corpus.

The corpus is encoded once per model, through the embedding cache (keyed by the model folder's
content and each text's hash), so a second evaluation of the same student, or the untrained
base model whose vectors dense retrieval already made, costs no encoding. Queries are encoded
and scored in blocks: memory holds the corpus's vectors and one block's scores, never a
query x corpus matrix of all queries, and progress is told between blocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from synthwright.core.progress import Phase, ProgressFactory
from synthwright.ranking.retrieval import DenseRetriever, Ranking

QUERY_BLOCK = 128


def embedder_spec(model: str | Path) -> str:
    """The embedder for a model folder: the offline MiniLM's own spec for its folder, so the
    untrained control shares the vectors dense retrieval already cached."""
    from synthwright.embed.local import minilm_path

    return "minilm" if Path(model).resolve() == minilm_path().resolve() else f"st:{Path(model).resolve()}"


class BiEncoderOverCorpus:
    """`search` (exact top k over the corpus) and `score_ids` (a first stage's candidates)."""

    def __init__(self, model: str | Path, texts: Mapping[str, str], *, name: str = "student", progress: ProgressFactory | None = None):
        self.name, self.progress = name, progress
        ids = list(texts)
        with Phase(progress, f"{name}: encode {len(ids)} documents (cached by content)", len(ids), "documents") as phase:
            self.dense = DenseRetriever(ids, [texts[i] for i in ids], embedder=embedder_spec(model), on_progress=phase.advance)
        self._texts = texts

    def _query_blocks(self, queries: Sequence[str], what: str):
        """(start, vectors) per block of queries, with a progress line between blocks."""
        with Phase(self.progress, f"{self.name}: {what} for {len(queries)} queries", len(queries), "queries") as phase:
            for start in range(0, len(queries), QUERY_BLOCK):
                block = list(queries[start : start + QUERY_BLOCK])
                yield start, self.dense.embedder.embed(block)
                phase.advance(len(block))

    def search(self, queries: Sequence[str], k: int = 100) -> list[Ranking]:
        rankings: list[Ranking] = []
        for _, vectors in self._query_blocks(queries, f"exact search (top {k})"):
            rankings += self.dense.search_vectors(vectors, k)
        return rankings

    def score_ids(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[list[float]]:
        """Cosine of each query with each of its candidate documents (by id)."""
        scores: list[list[float]] = []
        for start, vectors in self._query_blocks(queries, "rerank"):
            for vector, docs in zip(vectors, candidates[start : start + len(vectors)]):
                scores.append([float(s) for s in self._doc_vectors(docs) @ vector])
        return scores

    def _doc_vectors(self, docs: Sequence[str]) -> np.ndarray:
        index = self.dense.index
        if hasattr(index, "vectors"):  # exact index: the corpus's vectors, by slot
            return index.vectors()[[self.dense.slot_of[d] for d in docs]]
        return self.dense.embedder.embed([self._texts[d] for d in docs])  # IVF keeps float16 codes: the cache has them exact


def student_scorer(model: str | Path, texts: Mapping[str, str], name: str, progress: ProgressFactory | None = None):
    """A saved student ready to evaluate: a bi-encoder over the whole corpus, or a cross-encoder."""
    from synthwright.reranker.student import StudentReranker, model_folder, saved_kind

    folder = model_folder(Path(model))
    if saved_kind(folder) == "cross":
        return StudentReranker(folder)
    return BiEncoderOverCorpus(folder, texts, name=name, progress=progress)
