"""Retrieval: BM25, dense MiniLM and their RRF hybrid, on a tiny corpus; loaders."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("bm25s", reason="retrieval needs the ranking extra: pip install 'synthwright[ranking]'")

from synthwright.errors import UserError
from synthwright.ranking.retrieval import (
    Retriever,
    load_beir,
    load_corpus,
    reciprocal_rank_fusion,
)
from tests.embed_helpers import session_embedding_cache

CORPUS = {
    "cats": {"title": "Cats", "text": "Domestic cats sleep most of the day and hunt mice at night."},
    "dogs": {"title": "Dogs", "text": "Dogs are loyal companions that enjoy long walks."},
    "python": {"title": "Python", "text": "Python is a programming language with dynamic typing."},
    "rust": {"title": "Rust", "text": "Rust is a systems programming language focused on memory safety."},
    "bread": {"title": "Baking", "text": "Bread rises because yeast ferments the sugars in dough."},
}


@pytest.fixture(scope="module")
def embed_cache(tmp_path_factory):
    return session_embedding_cache(tmp_path_factory)


def test_bm25_ranks_the_matching_document_first_with_stemming():
    results = Retriever(CORPUS, "bm25").search(["hunting mouse cat", "programming languages memory"], k=3)
    assert results[0][0][0] == "cats"  # "hunting"/"hunt", "cat"/"cats" meet only when stemmed
    assert results[1][0][0] == "rust"
    assert all(score > 0 for ranking in results for _, score in ranking)
    assert Retriever(CORPUS, "bm25").search(["zebra"], k=3) == [[]]  # no matching term: nothing


def test_dense_and_hybrid_find_paraphrases(embed_cache):
    dense = Retriever(CORPUS, "dense", cache=embed_cache)
    (ranking,) = dense.search(["which pet is a faithful friend on walks"], k=5)
    assert ranking[0][0] == "dogs" and len(ranking) == 5
    assert ranking[0][1] > ranking[-1][1]  # cosine similarity, best first
    hybrid = Retriever(CORPUS, "hybrid", cache=embed_cache)
    run = hybrid.run({"q": "how does yeast make dough rise"}, k=2)
    assert next(doc for doc, _ in run["q"]) == "bread" and len(run["q"]) == 2


def test_reciprocal_rank_fusion_by_hand():
    fused = reciprocal_rank_fusion([[("a", 9), ("b", 8)], [("b", 0.9), ("c", 0.8)]], k=3)
    assert [doc for doc, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1][1] == pytest.approx(1 / 61)


def test_loaders(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": k, **v}) for k, v in CORPUS.items()) + "\n")
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "cat naps"}) + "\n" + json.dumps({"_id": "2", "text": "x"}) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\tcats\t1\n")
    data = load_beir(tmp_path)
    assert set(data.corpus) == set(CORPUS) and data.corpus["cats"]["title"] == "Cats"
    queries, qrels = data.split("test")
    assert queries == {"1": "cat naps"} and qrels == {"1": {"cats": 1}}
    assert load_corpus(tmp_path / "corpus.jsonl") == data.corpus
    with pytest.raises(UserError, match="No qrels for split"):
        data.split("dev")
    with pytest.raises(UserError, match="Unknown retrieval method"):
        Retriever(CORPUS, "splade")
