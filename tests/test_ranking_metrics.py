"""IR metrics and the paired bootstrap, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthwright.errors import UserError
from synthwright.ranking import evaluate, paired_bootstrap
from synthwright.ranking.metrics import per_query

QRELS = {"q1": {"d1": 1, "d3": 1}, "q2": {"d9": 2, "d8": 1}, "q3": {"d5": 0}}
RUN = {
    "q1": [("d2", 3.0), ("d1", 2.0), ("d4", 1.5), ("d3", 1.0)],  # relevant at ranks 2 and 4
    "q2": {"d8": 0.9, "d9": 0.5, "d7": 0.1},  # a dict: ranked by score -> d8, d9, d7
    "q3": [("d5", 1.0)],  # no relevant documents: skipped
}


def test_ndcg_mrr_recall_by_hand():
    values = evaluate(RUN, QRELS, ["ndcg@10", "mrr@10", "recall@1", "recall@100", "precision@2", "ndcg@1"])
    q1_ndcg = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    q2_ndcg = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))  # linear gain, ideal = d9 then d8
    assert values["ndcg@10"] == pytest.approx((q1_ndcg + q2_ndcg) / 2)
    assert values["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)
    assert values["recall@1"] == pytest.approx((0 + 0.5) / 2)
    assert values["recall@100"] == pytest.approx(1.0)
    assert values["precision@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert values["ndcg@1"] == pytest.approx((0 + 1 / 2) / 2)


def test_missing_run_counts_zero_and_cutoff_applies():
    assert per_query({}, QRELS, "ndcg@10") == {"q1": 0.0, "q2": 0.0}
    deep = {"q1": [(f"x{i}", 1.0) for i in range(10)] + [("d1", 0.5)]}
    assert per_query(deep, {"q1": {"d1": 1}}, "mrr@10") == {"q1": 0.0}
    assert per_query(deep, {"q1": {"d1": 1}}, "recall@11") == {"q1": 1.0}


def test_bad_metric_name():
    with pytest.raises(UserError, match="Unknown metric"):
        evaluate(RUN, QRELS, ["map"])


def test_paired_bootstrap_interval():
    qrels = {f"q{i}": {"good": 1} for i in range(200)}
    rng = np.random.default_rng(1)
    # System A finds the relevant doc at rank 1 or 2; B finds it at rank 1 more often.
    run_a = {q: [("good", 1.0)] if rng.random() < 0.5 else [("bad", 1.0), ("good", 0.5)] for q in qrels}
    run_b = {q: [("good", 1.0)] if rng.random() < 0.8 else [("bad", 1.0), ("good", 0.5)] for q in qrels}
    result = paired_bootstrap(run_a, run_b, qrels, "mrr@10", n_resamples=4000, seed=3)
    assert result.n_queries == 200
    assert result.difference == pytest.approx(result.mean_b - result.mean_a)
    assert result.low < result.difference < result.high
    assert result.low > 0 and result.p_value < 0.01  # a real improvement
    same = paired_bootstrap(run_a, run_a, qrels, "mrr@10", n_resamples=500)
    assert same.difference == same.low == same.high == 0.0 and same.p_value == 1.0
    # The interval width is about 2 * 1.96 * sd(diff) / sqrt(n).
    diffs = np.array([per_query(run_b, qrels, "mrr@10")[q] - per_query(run_a, qrels, "mrr@10")[q] for q in qrels])
    expected = 2 * 1.96 * diffs.std() / np.sqrt(len(diffs))
    assert result.high - result.low == pytest.approx(expected, rel=0.15)


@pytest.mark.slow  # ranx compiles with numba on first use: about 2 minutes on 2 busy cores
def test_agrees_with_ranx_when_installed():
    ranx = pytest.importorskip("ranx", reason="ranx is only a cross-check: pip install ranx")
    rng = np.random.default_rng(0)
    qrels = {f"q{i}": {f"d{j}": int(rng.integers(1, 3)) for j in rng.choice(50, 4, replace=False)} for i in range(30)}
    run = {q: {f"d{j}": float(s) for j, s in enumerate(rng.random(50))} for q in qrels}
    ours = evaluate(run, qrels, ["ndcg@10", "mrr@10", "recall@20"])
    theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), ["ndcg@10", "mrr@10", "recall@20"])
    for metric in ours:
        assert ours[metric] == pytest.approx(theirs[metric], abs=1e-9), metric
