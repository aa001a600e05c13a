"""Retrieval baselines on real data: BEIR SciFact dev (150 expert-written claims).

Reference figures (nDCG@10): BM25 0.626, MiniLM dense 0.592, hybrid RRF 0.666 (Recall@100
0.927). Embedding the 5,183 abstracts takes a few minutes on 2 cores the first time; set
$SYNTHWRIGHT_TEST_EMBED_CACHE to keep the vectors between sessions (else the default cache).
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("bm25s", reason="retrieval needs the ranking extra: pip install 'synthwright[ranking]'")

from synthwright.ranking import evaluate, paired_bootstrap
from synthwright.ranking.retrieval import Retriever, load_beir
from tests.embed_helpers import TEST_CACHE_ENV


@pytest.mark.slow
def test_scifact_dev_baselines(shared_data):
    data = load_beir(shared_data / "scifact")
    queries, qrels = data.split("dev")
    assert len(queries) == 150 and len(data.corpus) == 5183
    cache = os.environ.get(TEST_CACHE_ENV) or True
    runs = {method: Retriever(data.corpus, method, cache=cache).run(queries, k=100) for method in ("bm25", "dense", "hybrid")}
    scores = {method: evaluate(run, qrels) for method, run in runs.items()}
    for method, values in scores.items():
        print(method, {name: round(value, 3) for name, value in values.items()})
    assert 0.60 <= scores["bm25"]["ndcg@10"] <= 0.65
    assert 0.56 <= scores["dense"]["ndcg@10"] <= 0.62
    assert 0.64 <= scores["hybrid"]["ndcg@10"] <= 0.69
    assert scores["hybrid"]["recall@100"] >= 0.90
    gain = paired_bootstrap(runs["bm25"], runs["hybrid"], qrels, "ndcg@10", n_resamples=5000)
    print("hybrid - bm25", gain)
    assert gain.low < gain.difference < gain.high
