"""From pairwise judgments to continuous relevance labels.

Each synthetic query comes with its source document (a known positive) and retrieved
candidates. Several ensemble members judged pairs of them (P(a more relevant than b)).

1. Reliability without human labels. For anchor pairs (the source document against a
   candidate from the bottom of the retrieved list, almost always a true negative) the
   right answer is known: the source wins. A member's accuracy there (how often it picks
   the right side) is its reliability, and its weight is the log-odds of that accuracy, the
   optimal weight for independent voters (a member at chance weighs 0). With a human
   calibration sample the accuracy comes from real labels instead (`member_accuracy` on
   those comparisons). Caveat: the bottom of the retrieved list is bottom for BM25 and
   MiniLM by construction, so their anchor accuracy flatters them.
2. Combination. Members speak on different scales: Qwen-1.5B's order-averaged P(a) stays
   within 0.45-0.55 even when it picks the right side 92% of the time (SciFact anchors),
   while MiniLM's sigmoid gives 0.02 or 0.98. So each member's logits are divided by their
   root mean square over everything it judged (unit scale), multiplied by its weight, and
   averaged over the members that voted on the pair.
3. Thurstone (Case V) fit per query over the combined soft preferences (ranking.scores).
4. Label in [0, 1] = Phi(s_doc - s_ref), where s_ref is halfway between the source document's
   score and the median candidate's. The source scores high; a candidate the judges rate as
   good as the source (a likely false negative) scores high too instead of being trained as
   a negative; a typical candidate scores low.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

EPS = 1e-4


def logit(p: float) -> float:
    p = min(1 - EPS, max(EPS, p))
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class MemberReliability:
    name: str
    anchor_pairs: int
    accuracy: float | None  # None when the member judged no anchor pair
    weight: float
    first_wins: float | None = None  # position bias (LLM members only): P(first shown wins)
    scale: float = 1.0  # root mean square of the member's logits: its own confidence scale

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def member_accuracy(comparisons: Iterable[Mapping], member: str, truth: Mapping[tuple[str, str, str], float]) -> tuple[int, float | None]:
    """How often one member picks the right side on comparisons whose answer is known (a tie
    counts half). truth: {(query_id, a, b): 1.0 when a is the better document, 0.0 when b is}.
    The side, not the probability: a well-ordered but timid member is still reliable."""
    hits, n = 0.0, 0
    for c in comparisons:
        known = truth.get((c["query_id"], c["a"], c["b"]))
        p = (c.get("by") or {}).get(member)
        if known is None or p is None:
            continue
        hits += 0.5 if p == 0.5 else float((p > 0.5) == (known == 1.0))
        n += 1
    return n, (hits / n if n else None)


def reliability_weight(accuracy: float | None, n: int, *, prior_pairs: float = 4.0) -> float:
    """Log-odds weight, with the accuracy shrunk towards 0.65 by `prior_pairs` pseudo-pairs so
    that a member measured on three pairs neither dominates nor vanishes."""
    if accuracy is None:
        accuracy, n = 0.65, 0
    shrunk = (accuracy * n + 0.65 * prior_pairs) / (n + prior_pairs)
    return max(0.0, logit(min(shrunk, 0.99)))


def anchor_truth(rows: Sequence[Mapping]) -> dict[tuple[str, str, str], float]:
    """Known answers from the anchor pairs recorded by the judging step."""
    truth = {}
    for row in rows:
        for c in row.get("comparisons") or ():
            if c.get("anchor"):
                truth[(row["query_id"], c["a"], c["b"])] = 1.0 if c["a"] == row["doc_id"] else 0.0
    return truth


def estimate_reliability(rows: Sequence[Mapping], members: Sequence[str], truth: Mapping | None = None) -> dict[str, MemberReliability]:
    truth = anchor_truth(rows) if truth is None else truth
    flat = [{**c, "query_id": row["query_id"]} for row in rows for c in row.get("comparisons") or ()]
    out = {}
    for member in members:
        n, accuracy = member_accuracy(flat, member, truth)
        out[member] = MemberReliability(member, n, accuracy, reliability_weight(accuracy, n), _first_wins(flat, member), _scale(flat, member))
    return out


def _scale(comparisons: Sequence[Mapping], member: str) -> float:
    values = [logit(c["by"][member]) for c in comparisons if (c.get("by") or {}).get(member) is not None]
    rms = float(np.sqrt(np.mean(np.square(values)))) if values else 1.0
    return rms if rms > 1e-6 else 1.0


def _first_wins(comparisons: Sequence[Mapping], member: str) -> float | None:
    values = [c["first"][member] for c in comparisons if (c.get("first") or {}).get(member) is not None]
    return float(np.mean(values)) if values else None


def combine(by: Mapping[str, float], weights: Mapping[str, float], scales: Mapping[str, float] | None = None) -> float | None:
    """P(a better than b) from the members' votes: the mean over the weighted voters of
    weight x logit / scale; None when no weighted member voted."""
    # Rows read back from Parquet name every member in `by`, with None where it did not judge.
    votes = {m: p for m, p in by.items() if p is not None and weights.get(m, 0.0) > 0}
    if not votes:
        return None
    scales = scales or {}
    return sigmoid(sum(weights[m] * logit(p) / scales.get(m, 1.0) for m, p in votes.items()) / len(votes))


@dataclass
class QueryScores:
    query_id: str
    scores: dict[str, float]  # doc_id -> Thurstone score
    std: dict[str, float]
    labels: dict[str, float] = field(default_factory=dict)  # doc_id -> label in [0, 1]


def recover_labels(rows: Sequence[Mapping], weights: Mapping[str, float], *, model: str = "thurstone", prior_std: float = 3.0,
                   scales: Mapping[str, float] | None = None) -> list[QueryScores]:
    """Fit every query's graph in one call (groups = query ids) and turn scores into labels."""
    from synthwright.ranking.scores import recover_scores

    a, b, p, groups = [], [], [], []
    for row in rows:
        for c in row.get("comparisons") or ():
            combined = combine(c.get("by") or {}, weights, scales)
            if combined is not None:
                a.append(c["a"]), b.append(c["b"]), p.append(combined), groups.append(row["query_id"])
    if not a:
        return []
    fit = recover_scores(a, b, p, groups=groups, model=model, prior_std=prior_std)
    per_query: dict[str, QueryScores] = {}
    for g, item, s, sd in zip(fit.group.tolist(), fit.item.tolist(), fit.scores, fit.std):
        entry = per_query.setdefault(g, QueryScores(g, {}, {}))
        entry.scores[item], entry.std[item] = float(s), float(sd)
    sources = {row["query_id"]: row["doc_id"] for row in rows}
    for entry in per_query.values():
        entry.labels = scores_to_labels(entry.scores, sources.get(entry.query_id))
    return list(per_query.values())


def scores_to_labels(scores: Mapping[str, float], source: str | None) -> dict[str, float]:
    from scipy.stats import norm

    others = [s for doc, s in scores.items() if doc != source]
    if not others:
        return {doc: 1.0 for doc in scores}
    median = float(np.median(others))
    reference = (scores[source] + median) / 2 if source in scores else median
    return {doc: float(norm.cdf(s - reference)) for doc, s in scores.items()}
