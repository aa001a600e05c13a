"""First-stage retrieval over a document collection: BM25, dense (MiniLM), and their hybrid.

- `bm25`: bm25s (sparse-matrix BM25, Lucene variant, k1=1.5, b=0.75), English stopwords,
  Snowball stemming when PyStemmer is installed (it is in the `ranking` extra).
- `dense`: an embedder from synthwright.embed (offline MiniLM by default) and an exact
  cosine index; past `ANN_THRESHOLD` documents, the faiss IVF index instead.
- `hybrid`: reciprocal rank fusion, score(d) = sum over systems of 1 / (60 + rank(d)).
  RRF needs no score calibration between systems, which is why it is the usual default.

Documents are {"_id", "title", "text"} rows (BEIR's corpus.jsonl); a document's text for
both systems is "title text". `load_beir(folder)` reads a BEIR folder (corpus.jsonl,
queries.jsonl, qrels/*.tsv).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthwright.errors import UserError, require_module
from synthwright.io.rows import read_jsonl

RANKING_EXTRA = "'synthwright[ranking]'"
METHODS = ("bm25", "dense", "hybrid")
RRF_K = 60
ANN_THRESHOLD = 200_000  # exact search is fast enough below this many documents
Ranking = list[tuple[str, float]]


def load_corpus(path: str | Path) -> dict[str, dict]:
    """{doc_id: {"title", "text"}} from a JSONL file of {_id, title, text} (or a BEIR folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    corpus = {}
    for number, row in enumerate(read_jsonl(path), 1):
        if "_id" not in row or "text" not in row:
            raise UserError(f"{path} row {number} lacks _id or text.", "Each document needs {\"_id\", \"title\", \"text\"}.")
        corpus[str(row["_id"])] = {"title": row.get("title") or "", "text": row["text"] or ""}
    return corpus


@dataclass
class BeirData:
    corpus: dict[str, dict]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # split -> qid -> doc -> grade

    def split(self, name: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
        """(queries, qrels) of one split, e.g. "dev": only the queries that split judges."""
        if name not in self.qrels:
            raise UserError(f"No qrels for split '{name}'.", f"Available: {', '.join(sorted(self.qrels)) or 'none'}.")
        qrels = self.qrels[name]
        return {qid: self.queries[qid] for qid in qrels if qid in self.queries}, qrels


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (query-id, corpus-id, score, with a header row)."""
    qrels: dict[str, dict[str, int]] = {}
    with Path(path).open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for row in reader:
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def load_beir(folder: str | Path) -> BeirData:
    folder = Path(folder)
    if not (folder / "corpus.jsonl").is_file():
        raise UserError(f"'{folder}' is not a BEIR folder (no corpus.jsonl).")
    queries = {str(row["_id"]): row["text"] for row in read_jsonl(folder / "queries.jsonl")}
    qrels = {path.stem: read_qrels(path) for path in sorted((folder / "qrels").glob("*.tsv"))}
    return BeirData(load_corpus(folder), queries, qrels)


def document_text(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('title') or ''} {doc.get('text') or ''}".strip()


def reciprocal_rank_fusion(rankings: Iterable[Sequence[tuple[str, float]]], k: int, rrf_k: int = RRF_K) -> Ranking:
    """Fuse ranked lists of one query: sum of 1/(rrf_k + rank), rank counted from 1."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, (doc, _) in enumerate(ranking, 1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]


class BM25Retriever:
    def __init__(self, doc_ids: Sequence[str], texts: Sequence[str], *, stem: bool = True, k1: float = 1.5, b: float = 0.75):
        self.bm25s = require_module("bm25s", "BM25 retrieval", RANKING_EXTRA)
        self.doc_ids = list(doc_ids)
        self.stemmer = None
        if stem:
            try:
                import Stemmer  # PyStemmer: optional, improves BM25 a little (plurals, tenses)

                self.stemmer = Stemmer.Stemmer("english")
            except ImportError:
                self.stemmer = None
        self.model = self.bm25s.BM25(k1=k1, b=b)
        self.model.index(self._tokenize(texts), show_progress=False)

    def _tokenize(self, texts: Sequence[str]):
        return self.bm25s.tokenize(list(texts), stopwords="en", stemmer=self.stemmer, show_progress=False)

    def search(self, queries: Sequence[str], k: int = 10) -> list[Ranking]:
        k = min(k, len(self.doc_ids))
        # Query tokens as strings: bm25s maps them onto the index vocabulary (unknown ones drop out).
        tokens = self.bm25s.tokenize(list(queries), stopwords="en", stemmer=self.stemmer, return_ids=False, show_progress=False)
        slots, scores = self.model.retrieve(tokens, k=k, show_progress=False, n_threads=0)
        return [[(self.doc_ids[s], float(v)) for s, v in zip(row_slots, row_scores) if v > 0] for row_slots, row_scores in zip(slots, scores)]


class DenseRetriever:
    """Exact cosine search over the corpus's vectors (an IVF index past ANN_THRESHOLD). The
    embedder's content-hash cache makes the corpus cost one encoding per model, ever."""

    def __init__(self, doc_ids: Sequence[str], texts: Sequence[str], *, embedder: Any = "minilm", cache: Any = True,
                 on_progress: Callable[[int], None] | None = None):
        embed = require_module("synthwright.embed", "Dense retrieval", "'synthwright[embed]'")
        self.embedder = embed.load_embedder(embedder, cache=cache) if isinstance(embedder, str) else embedder
        self.doc_ids = list(doc_ids)
        self.slot_of = {doc_id: slot for slot, doc_id in enumerate(self.doc_ids)}
        vectors = self.embedder.embed(list(texts), on_progress=on_progress)
        if len(vectors) > ANN_THRESHOLD:
            self.index = embed.IVFIndex(vectors.shape[1], nlist=embed.index.choose_nlist(len(vectors)))
            self.index.train(vectors)
        else:
            self.index = embed.ExactIndex(vectors.shape[1], capacity=len(vectors))
        self.index.add(vectors)

    def search(self, queries: Sequence[str], k: int = 10) -> list[Ranking]:
        return self.search_vectors(self.embedder.embed(list(queries)), k)

    def search_vectors(self, query_vectors, k: int = 10) -> list[Ranking]:
        """The top k of each query vector (L2-normalised, this embedder's)."""
        distances, slots = self.index.search(query_vectors, min(k, len(self.doc_ids)))
        return [
            [(self.doc_ids[s], float(1.0 - d)) for s, d in zip(row_slots, row_dist) if s >= 0]
            for row_slots, row_dist in zip(slots, distances)
        ]


@dataclass(frozen=True)
class HybridHits:
    """One query's hybrid result: the fused ranking, and the two it was fused from (whose scores
    are features in their own right)."""

    fused: Ranking
    bm25: Ranking
    dense: Ranking

    def ranking(self, method: str) -> Ranking:
        """The ranking of one first stage: bm25, dense or hybrid (the fused one)."""
        if method not in METHODS:
            raise UserError(f"Unknown retrieval method '{method}'.", f"Use one of: {', '.join(METHODS)}.")
        return self.fused if method == "hybrid" else getattr(self, method)


class Retriever:
    """`Retriever(corpus, method="hybrid").search(queries, k)` -> per query [(doc_id, score)], best first.

    corpus: {doc_id: {"title", "text"}} (see load_corpus) or {doc_id: text}. Hybrid fuses the
    top `depth` of each system (default max(k, 1000)), so documents just outside one system's
    top k can still rise by being high in the other."""

    def __init__(self, corpus: Mapping[str, Any], method: str = "hybrid", *, embedder: Any = "minilm", cache: Any = True, stem: bool = True):
        if method not in METHODS:
            raise UserError(f"Unknown retrieval method '{method}'.", f"Use one of: {', '.join(METHODS)}.")
        if not corpus:
            raise UserError("The corpus is empty.")
        self.method = method
        doc_ids = list(corpus)
        texts = [value if isinstance(value, str) else document_text(value) for value in corpus.values()]
        self.bm25 = BM25Retriever(doc_ids, texts, stem=stem) if method in ("bm25", "hybrid") else None
        self.dense = DenseRetriever(doc_ids, texts, embedder=embedder, cache=cache) if method in ("dense", "hybrid") else None

    def search(self, queries: Sequence[str], k: int = 10, depth: int | None = None) -> list[Ranking]:
        if isinstance(queries, str):
            raise UserError("search() takes a list of queries, not one string.", "Wrap it: search([query]).")
        if self.method == "bm25":
            return self.bm25.search(queries, k)
        if self.method == "dense":
            return self.dense.search(queries, k)
        return [hits.fused for hits in self.hybrid(queries, k, depth=depth)]

    def hybrid(self, queries: Sequence[str], k: int = 10, *, depth: int | None = None, keep: int | None = None) -> list[HybridHits]:
        """Per query, the top `k` of BM25 and dense fused by RRF, with both rankings. `depth`:
        how much of each ranking is fused (default max(k, 1000)); `keep`: how much of each is
        returned for its scores (default `depth`)."""
        if self.method != "hybrid":
            raise UserError(f"A {self.method} retriever has no hybrid ranking.", "Build it with method='hybrid'.")
        depth = max(k, depth or 1000)
        reach = max(depth, keep or depth)
        lexical, semantic = self.bm25.search(queries, reach), self.dense.search(queries, reach)
        return [HybridHits(reciprocal_rank_fusion((lex[:depth], sem[:depth]), k), lex, sem) for lex, sem in zip(lexical, semantic)]

    def run(self, queries: Mapping[str, str], k: int = 100, **options: Any) -> dict[str, Ranking]:
        """{query_id: ranking} for {query_id: text}: the shape metrics.evaluate takes."""
        results = self.search(list(queries.values()), k, **options)
        return dict(zip(queries, results))
