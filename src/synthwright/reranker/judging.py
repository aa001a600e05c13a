"""Ensemble pairwise judging for one batch of synthetic queries, on a budget.

Per query, a connected comparison graph (ranking.pairs.select_pairs: the source document
against every candidate, rank neighbours, a few random pairs). Every pair is judged by the
cheap members, which cost nothing next to an LLM call:

- `bm25`: P(a > b) = sigmoid(z_a - z_b), z = the query's BM25 scores standardised over its graph;
- `embedding`: P(a > b) = sigmoid((cos_a - cos_b) / 0.05), the retriever's MiniLM cosine, judged by
  judges.EmbeddingJudge from those cosines.

An LLM member `likelihood:MODEL` scores each document of a chosen pair instead, by how
likely the model finds the query after reading it (reranker/teacher.py), P(a > b) =
sigmoid(log P(q | a) - log P(q | b)): Bradley-Terry with the likelihoods as strengths. A
document in several chosen pairs of a query is scored once, and there is no order to average.

LLM judgments (both orders, order-averaged) go where they are worth most: a share of the
budget to anchor pairs (the source against a bottom candidate: the answer is known, so the
LLM's reliability can be measured), the rest to the pairs on which the cheap members
disagree most or are least sure. The budget is per batch (`llm_pairs_per_query` x rows), so
batches are independent and resume cleanly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from synthwright.core.lineage import Row
from synthwright.judges.base import PairItem, PairResult
from synthwright.judges.embedding import EmbeddingJudge
from synthwright.judges.members import BM25, EMBEDDING, LIKELIHOOD, Member, parse_members
from synthwright.judges.prompts import PairwisePrompt
from synthwright.ranking.pairs import select_pairs
from synthwright.reranker.queries import JUDGE_CONTEXT_LABELS, JUDGE_INSTRUCTIONS
from synthwright.reranker.teacher import query_likelihoods


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


def _standardise(values: Sequence[float]) -> list[float]:
    arr = np.asarray(values, dtype=float)
    sd = arr.std()
    return ((arr - arr.mean()) / sd).tolist() if sd > 0 else [0.0] * len(arr)


def graph_for(row: Row, options, seed: int) -> list[dict[str, Any]]:
    """The query's comparisons with the cheap members' verdicts; anchor pairs marked."""
    kinds = {member.kind: member for member in parse_members(options.judges)}
    embedding = EmbeddingJudge(name=kinds[EMBEDDING].name) if EMBEDDING in kinds else None
    source, candidates = row["doc_id"], list(row["candidates"])
    nodes = [source, *candidates]
    bm25 = dict(zip(nodes, _standardise(row["bm25"])))
    dense = dict(zip(nodes, row["dense"]))
    pairs = select_pairs(candidates, source, budget=options.pairs_per_query, n_random=options.n_random, seed=seed)
    # The bottom of the candidates the graph kept: a tight budget drops the retrieved list's tail,
    # and anchors among dropped candidates would never be judged (no reliability measured).
    named = {doc for pair in pairs for doc in pair}
    kept = [doc for doc in candidates if doc in named]
    bottom = set(kept[len(kept) - max(1, len(kept) // 3):])
    comparisons = []
    for a, b in pairs:
        by: dict[str, float] = {}
        if BM25 in kinds:
            by[kinds[BM25].name] = _sigmoid(bm25[a] - bm25[b])
        if embedding is not None and dense[a] and dense[b]:  # 0.0 = outside the dense top list
            by[embedding.name] = embedding.preference(dense[a], dense[b])
        anchor = a == source and b in bottom
        comparisons.append({"a": a, "b": b, "by": by, "anchor": anchor})
    return comparisons


def _disagreement(comparison: Mapping[str, Any]) -> float:
    values = list(comparison["by"].values())
    if not values:
        return 2.0  # nobody cheap could judge it: the LLM is the only opinion
    spread = max(values) - min(values)
    uncertainty = 0.5 - abs(float(np.mean(values)) - 0.5)
    return spread + uncertainty


def stochastic_round(value: float, rng) -> int:
    """floor(value), plus one with probability equal to the fraction. A budget of 0.04 pairs
    per query over 64-row batches is 2.56 a batch: rounding would spend 3 in every batch (17%
    over), and 0.2 of 2 anchors would round to none, so the LLM's reliability would never be
    measured. This way each batch decides on its own (resumable) and the totals come out right
    on average."""
    whole = math.floor(value)
    return whole + (rng.random() < value - whole)


def choose_for_llm(graphs: Sequence[tuple[Row, list[dict]]], budget: int, anchor_share: float, rng) -> list[tuple[Row, dict]]:
    """Up to `budget` (row, comparison) pairs for the LLM: anchors first, then disagreement."""
    if budget <= 0:
        return []
    anchors = [(row, c) for row, cs in graphs for c in cs if c["anchor"]]
    others = [(row, c) for row, cs in graphs for c in cs if not c["anchor"]]
    rng.shuffle(anchors)
    n_anchor = min(len(anchors), stochastic_round(budget * anchor_share, rng))
    others.sort(key=lambda rc: -_disagreement(rc[1]))
    chosen = anchors[:n_anchor] + others[: budget - n_anchor]
    return chosen[:budget]


def judge_batch(rows: list[Row], options, context, step_name: str, texts: Mapping[str, str]):
    """Rows with a `comparisons` column, and the LLM usage of the batch."""
    graphs = [(row, graph_for(row, options, context.seed_for(step_name, row["query_id"]))) for row in rows]
    batch_key = rows[0]["query_id"] if rows else ""  # seeds this batch's draws, so a resumed run makes the same ones
    budget = stochastic_round(options.llm_pairs_per_query * len(rows), context.rng(step_name, "budget", batch_key))
    usage = []
    for member in parse_members(options.judges):
        if not member.uses_llm:
            continue
        chosen = choose_for_llm(graphs, budget, options.anchor_share, context.rng(step_name, member.spec, batch_key))
        judge = _judge_by_likelihood if member.kind == LIKELIHOOD else _judge_pairwise
        usage.append(judge(chosen, member, options, context, step_name, texts))
    return [{**row, "comparisons": comparisons} for row, comparisons in graphs], usage


def _judge_pairwise(chosen: Sequence[tuple[Row, dict]], member: Member, options, context, step_name: str, texts: Mapping[str, str]):
    """Ask the LLM about each chosen pair, both orders (one prompt per query style). Returns the usage."""
    from synthwright.judges.pairwise import PairwiseJudge
    from synthwright.llm.usage import UsageTotals

    name, usage = member.name, UsageTotals()
    for style in sorted({row.get("style", "question") for row, _ in chosen}):
        subset = [(row, c) for row, c in chosen if row.get("style", "question") == style]
        judge = PairwiseJudge(member.target, _prompt(options, style), name=name, max_chars=options.max_chars, context=context, step_name=step_name)
        items = [PairItem(context=row["query"], a=texts[c["a"]], b=texts[c["b"]]) for row, c in subset]
        progress = context.request_progress(f"{name}: {len(items)} pairs, both orders")
        for (row, comparison), verdict in zip(subset, judge.compare(items, progress)):
            if isinstance(verdict, PairResult):
                comparison["by"][name] = verdict.p_a
                comparison.setdefault("first", {})[name] = (verdict.p_first_ab + verdict.p_first_ba) / 2
        usage.absorb(judge.usage)
    return usage


def _judge_by_likelihood(chosen: Sequence[tuple[Row, dict]], member: Member, options, context, step_name: str, texts: Mapping[str, str]):
    """Score each (query, document) the chosen pairs name once, then give every pair its
    P(a > b); a pair with a failed score is left to the other members. Returns the usage."""
    name, model = member.name, member.target
    rows = {row["query_id"]: row for row, _ in chosen}
    keys = list(dict.fromkeys((row["query_id"], doc) for row, c in chosen for doc in (c["a"], c["b"])))
    items = [(rows[qid]["query"], texts[doc], rows[qid].get("style", "question")) for qid, doc in keys]
    progress = context.request_progress(f"{name}: {len(keys)} documents for {len(chosen)} pairs")
    values, usage = query_likelihoods(model, items, max_chars=options.max_chars, context=context, step_name=step_name, progress=progress)
    scores = dict(zip(keys, values))
    for row, comparison in chosen:
        a, b = scores[(row["query_id"], comparison["a"])], scores[(row["query_id"], comparison["b"])]
        if a is not None and b is not None:
            comparison["by"][name] = _sigmoid(a - b)
    return usage


def _prompt(options, style: str) -> PairwisePrompt:
    return PairwisePrompt(instruction=options.instruction or JUDGE_INSTRUCTIONS.get(style, JUDGE_INSTRUCTIONS["question"]),
                          context_label=JUDGE_CONTEXT_LABELS.get(style, "Query"))
