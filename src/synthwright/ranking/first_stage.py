"""The first stage chosen by data: the round trip of synthetic queries, never evaluation labels.

Each synthetic query was written from one source document, so every retriever can be scored
on finding it: MRR@10 (is the source at the top?) and Recall@k (is it among the candidates?).
The retriever with the best MRR@10 becomes the first stage for candidates, hard negatives and
evaluation; a tie goes to the cheaper one (BM25, then dense, then hybrid). On CoSQA dense
beats hybrid (BM25 is weak on code and fusing it hurts); on SciFact hybrid wins.

Caveat, said in the report: the teacher read the source document, so its queries share the
document's words more than real ones do, which favours BM25 a little.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from synthwright.errors import UserError
from synthwright.ranking.metrics import evaluate
from synthwright.ranking.retrieval import METHODS, Ranking

CHEAPEST_FIRST = ("bm25", "dense", "hybrid")
LABELS = {"bm25": "BM25", "dense": "dense", "hybrid": "hybrid"}
RANKING_METRIC = "mrr@10"


@dataclass
class FirstStageChoice:
    chosen: str
    measured: dict[str, dict[str, float]]  # method -> {"mrr@10", "recall@k"}
    queries: int
    k: int
    forced: bool
    why: str

    def to_dict(self) -> dict:
        return asdict(self)


def round_trip(runs: Mapping[str, Mapping[str, Ranking]], sources: Mapping[str, str], k: int = 20) -> dict[str, dict[str, float]]:
    """Per retriever, MRR@10 and Recall@k of each synthetic query's source document."""
    qrels = {qid: {doc: 1} for qid, doc in sources.items()}
    return {method: evaluate(run, qrels, (RANKING_METRIC, f"recall@{k}")) for method, run in runs.items()}


def choose_first_stage(runs: Mapping[str, Mapping[str, Ranking]], sources: Mapping[str, str], *, k: int = 20,
                       force: str | None = None) -> FirstStageChoice:
    """Measure every retriever on the round trip and pick the best (or the forced one)."""
    if not sources:
        raise UserError("No synthetic query to measure the first stages on.", "Generate queries first (the queries step kept none).")
    if force is not None and force not in METHODS:
        raise UserError(f"Unknown first stage '{force}'.", f"Use auto or one of: {', '.join(METHODS)}.")
    measured = round_trip(runs, sources, k)

    def merit(method: str) -> tuple:
        scores = measured[method]
        # Rounded: a difference in the fourth decimal is noise, and then the cheaper one wins.
        return round(scores[RANKING_METRIC], 3), round(scores[f"recall@{k}"], 3), -CHEAPEST_FIRST.index(method)

    best = max(measured, key=merit)
    chosen = force or best
    return FirstStageChoice(chosen, measured, len(sources), k, force is not None, _why(chosen, best, measured, len(sources), k, force))


def _why(chosen: str, best: str, measured: dict, queries: int, k: int, force: str | None) -> str:
    def figures(method: str) -> str:
        return f"{LABELS[method]} MRR@10 {measured[method][RANKING_METRIC]:.3f}, Recall@{k} {measured[method][f'recall@{k}']:.3f}"

    others = "; ".join(figures(m) for m in CHEAPEST_FIRST if m in measured and m != chosen)
    if force:
        verdict = "forced by the option" + ("" if force == best else f" (the round trip would pick {LABELS[best]})")
    else:
        verdict = "the best at finding each query's source document"
    return f"{LABELS[chosen]}: {verdict}, on the round trip of {queries} synthetic queries ({figures(chosen)}; {others})."
