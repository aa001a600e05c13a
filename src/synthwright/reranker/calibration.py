"""A small human calibration sample for the judging ensemble.

Anchor pairs (labels.py) measure each member without human labels, but they flatter BM25 and
MiniLM: the bottom of the hybrid list is the bottom for them by construction. The method's
answer is a small human-labelled sample. Here that is a few real training queries with their
qrels (at most 50, never the evaluation queries): per query, a relevant document against the
highest-ranked non-relevant one (hard: the retriever's own mistake) and against a random
non-relevant one from further down (medium). Every member judges every pair (the LLM in both
orders), the right side is known, and each member's accuracy there gives its weight.

The rows have the judged rows' shape (source = the relevant document, candidates = the two
non-relevant ones), so `judging.judge_batch` and `labels.estimate_reliability` serve as they are.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synthwright.core.lineage import Row

MAX_QUERIES = 50
MEDIUM_RANKS = (5, 30)  # where the medium negative is drawn from (1-based hybrid ranks)


@dataclass
class CalibrationOptions:
    """What judge_batch reads from its options, set so that every pair is judged by every member."""

    judges: Sequence[str]
    max_chars: int = 450
    instruction: str | None = None
    pairs_per_query: int = 2
    llm_pairs_per_query: float = 2.0
    anchor_share: float = 1.0
    n_random: int = 0


def calibration_rows(queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], retriever, *, style: str, seed: int,
                     depth: int = 100, score_depth: int = 1000) -> list[Row]:
    """One row per query that has a relevant document and two non-relevant ones to set it against.

    Member scores come from the top `score_depth`, not `depth`: a member abstains on a document
    it did not score, and a relevant document outside MiniLM's top 100 is exactly its miss."""
    ids = list(queries)
    found = retriever.hybrid([queries[q] for q in ids], depth, depth=depth, keep=score_depth)
    rows = []
    for qid, hits in zip(ids, found):
        fused, lex, sem = [doc for doc, _ in hits.fused], hits.bm25, hits.dense
        relevant = [doc for doc, grade in qrels[qid].items() if grade > 0]
        negatives = [doc for doc in fused if doc not in qrels[qid]]
        if not relevant or len(negatives) < 2:
            continue
        # The relevant document the retriever ranks best (it is the one a reranker must lift).
        positive = min(relevant, key=lambda doc: fused.index(doc) if doc in fused else len(fused))
        low, high = MEDIUM_RANKS
        pool = [doc for doc in negatives[1:] if low <= fused.index(doc) + 1 <= high] or negatives[1:]
        medium = random.Random(f"{seed}:{qid}").choice(pool)
        nodes = [positive, negatives[0], medium]
        bm25, dense = dict(lex), dict(sem)
        rows.append({"query_id": qid, "query": queries[qid], "doc_id": positive, "candidates": nodes[1:], "style": style,
                     "bm25": [bm25.get(d, 0.0) for d in nodes], "dense": [dense.get(d, 0.0) for d in nodes]})
    return rows


def known_answers(rows: Sequence[Row]) -> dict[tuple[str, str, str], float]:
    """{(query_id, a, b): 1.0 when a is the relevant document, 0.0 when b is}."""
    truth = {}
    for row in rows:
        for c in row.get("comparisons") or ():
            if row["doc_id"] in (c["a"], c["b"]):
                truth[(row["query_id"], c["a"], c["b"])] = 1.0 if c["a"] == row["doc_id"] else 0.0
    return truth


def calibrate_members(rows: Sequence[Row], members: Sequence[str]) -> dict[str, Any]:
    """Each member's accuracy and weight on the judged calibration rows, per pair kind too."""
    from synthwright.reranker.labels import estimate_reliability, member_accuracy

    truth = known_answers(rows)
    reliability = estimate_reliability(rows, members, truth)
    kinds = {"hard": [], "medium": []}
    for row in rows:
        hard = row["candidates"][0]
        for c in row.get("comparisons") or ():
            kinds["hard" if hard in (c["a"], c["b"]) else "medium"].append({**c, "query_id": row["query_id"]})
    report = {"queries": len(rows), "pairs": len(truth), "members": {}}
    for member, r in reliability.items():
        by_kind = {kind: member_accuracy(cs, member, truth)[1] for kind, cs in kinds.items()}
        report["members"][member] = {**r.to_dict(), "accuracy_hard": by_kind["hard"], "accuracy_medium": by_kind["medium"]}
    return report
