"""IR metrics (nDCG@k, MRR@k, Recall@k, Precision@k) and a paired bootstrap for comparing two systems.

Hand-rolled rather than via ranx: the formulas are a few lines each, and ranx pulls in numba,
ir_datasets and friends (and a first-call JIT compile of several seconds). The definitions
follow trec_eval / pytrec_eval, which BEIR and ranx use, and tests cross-check against ranx
when it is installed:
- nDCG@k: linear gain (rel), log2(rank + 1) discount, ideal from all judged documents.
- MRR@k: 1 / rank of the first relevant document in the top k, else 0.
- Recall@k: relevant documents in the top k / all relevant documents.
Relevant means grade > 0. A query in the qrels with no run counts as 0; a query with no
relevant documents is skipped (it has no defined nDCG or recall).

`run`: {query_id: ranked [(doc_id, score), ...] or {doc_id: score}}; a dict is ranked by
score, ties broken by doc id so results never depend on dict order.
`qrels`: {query_id: {doc_id: grade}}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from synthwright.errors import UserError

DEFAULT_METRICS = ("ndcg@10", "mrr@10", "recall@100")
Run = Mapping[str, Sequence[tuple[str, float]] | Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _ranked_ids(ranking) -> list:
    if isinstance(ranking, Mapping):
        return [doc for doc, _ in sorted(ranking.items(), key=lambda item: (-item[1], str(item[0])))]
    return [entry[0] if isinstance(entry, (tuple, list)) else entry for entry in ranking]


def _parse_metric(name: str) -> tuple[str, int]:
    base, _, cut = name.lower().partition("@")
    if base not in ("ndcg", "mrr", "recall", "precision") or not cut.isdigit() or int(cut) < 1:
        raise UserError(f"Unknown metric '{name}'.", "Use ndcg@K, mrr@K, recall@K or precision@K, e.g. ndcg@10.")
    return base, int(cut)


def _score_query(base: str, k: int, ranked: list, grades: Mapping[str, int]) -> float:
    top = ranked[:k]
    rels = np.array([max(grades.get(doc, 0), 0) for doc in top], dtype=np.float64)
    n_relevant = sum(1 for g in grades.values() if g > 0)
    if base == "ndcg":
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ideal = np.sort(np.array([g for g in grades.values() if g > 0], dtype=np.float64))[::-1][:k]
        return float(rels @ discounts[: len(rels)] / (ideal @ discounts[: len(ideal)]))
    if base == "mrr":
        hits = np.flatnonzero(rels > 0)
        return 1.0 / (hits[0] + 1) if len(hits) else 0.0
    if base == "recall":
        return float((rels > 0).sum() / n_relevant)
    return float((rels > 0).sum() / k)


def per_query(run: Run, qrels: Qrels, metric: str) -> dict[str, float]:
    """{query_id: value} over the queries of `qrels` that have a relevant document."""
    base, k = _parse_metric(metric)
    out = {}
    for qid, grades in qrels.items():
        if not any(g > 0 for g in grades.values()):
            continue
        ranked = _ranked_ids(run.get(qid, ()))
        out[qid] = _score_query(base, k, ranked, grades)
    return out


def evaluate(run: Run, qrels: Qrels, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Mean of each metric over the judged queries: {"ndcg@10": 0.66, ...}."""
    results = {}
    for metric in metrics:
        values = per_query(run, qrels, metric)
        if not values:
            raise UserError("No query in the qrels has a relevant document.", "Check that the qrels file is the right one.")
        results[metric] = float(np.mean(list(values.values())))
    return results


@dataclass(frozen=True)
class PairedBootstrap:
    """Mean of (system B - system A) over queries, its bootstrap interval, and a two-sided p-value."""

    metric: str
    mean_a: float
    mean_b: float
    difference: float
    low: float
    high: float
    p_value: float
    n_queries: int
    confidence: float


def paired_bootstrap(
    run_a: Run,
    run_b: Run,
    qrels: Qrels,
    metric: str = "ndcg@10",
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedBootstrap:
    """Resample queries with replacement, keeping each query's pair of scores together:
    the spread of the mean difference then reflects how much it depends on which queries
    happened to be in the set. Percentile interval; p-value = twice the share of resampled
    differences on the far side of zero (capped at 1)."""
    a, b = per_query(run_a, qrels, metric), per_query(run_b, qrels, metric)
    qids = sorted(a)
    x = np.array([a[q] for q in qids])
    y = np.array([b[q] for q in qids])
    diff = y - x
    n = len(diff)
    if n == 0:
        raise UserError("No judged queries to compare.")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // n)  # bound the (resamples x queries) index matrix
    for start in range(0, n_resamples, chunk):
        count = min(chunk, n_resamples - start)
        means[start : start + count] = diff[rng.integers(0, n, (count, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    observed = diff.mean()
    if observed == 0 and np.all(means == 0):
        p = 1.0
    else:
        far = (means <= 0).mean() if observed > 0 else (means >= 0).mean()
        p = min(1.0, 2 * far)
    return PairedBootstrap(metric, float(x.mean()), float(y.mean()), float(observed), float(low), float(high), float(p), n, confidence)
