"""The first stage chosen by data: the round trip of synthetic queries, never evaluation labels.

Each synthetic query was written from one source document, so every retriever can be scored
on finding it: MRR@10 (is the source at the top?) and Recall@k (is it among the candidates?).
The retriever with the best MRR@10 becomes the first stage for candidates, hard negatives and
evaluation; a tie goes to the cheaper one (BM25, then dense, then hybrid).

One correction: the teacher read the source document, so its queries share the document's
words more than real ones do, and the round trip overrates BM25. On SciFact the teacher's
claims give BM25 MRR@10 0.973, hybrid 0.945, dense 0.887, while on the real dev claims hybrid
is best (nDCG@10 0.668, BM25 0.626, dense 0.592); even the quarter of synthetic claims sharing
the fewest words with their source still rank BM25 first. What the round trip does show is
whether one retriever is far weaker: BM25 on code (CoSQA: BM25 0.593 against dense 0.781),
where fusing it hurts on real queries too. So when BM25 and dense are comparable (the weaker
reaches FUSION_RATIO of the stronger's MRR@10), hybrid is chosen: fusing two comparable
retrievers that fail differently is the safer bet on real queries. The ratio was set with
those two corpora's dev results in view (SciFact 0.91, CoSQA 0.76).
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
FUSION_RATIO = 0.85  # BM25 and dense count as comparable when the weaker has this share of the stronger's MRR@10


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
                       force: str | None = None, fusion_ratio: float = FUSION_RATIO) -> FirstStageChoice:
    """Measure every retriever on the round trip and pick the best, or hybrid where BM25 and
    dense are comparable (or the forced one)."""
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
    balance = _balance(measured)
    fused = best != "hybrid" and "hybrid" in measured and balance is not None and balance >= fusion_ratio
    pick = "hybrid" if fused else best
    chosen = force or pick
    verdict = _verdict(pick, best, balance, fusion_ratio, force)
    return FirstStageChoice(chosen, measured, len(sources), k, force is not None, _why(chosen, verdict, measured, len(sources), k))


def _balance(measured: dict[str, dict[str, float]]) -> float | None:
    """The weaker of BM25 and dense as a share of the stronger's round-trip MRR@10."""
    if "bm25" not in measured or "dense" not in measured:
        return None
    low, high = sorted(measured[m][RANKING_METRIC] for m in ("bm25", "dense"))
    return low / high if high > 0 else None


def _verdict(pick: str, best: str, balance: float | None, fusion_ratio: float, force: str | None) -> str:
    if force:
        return "forced by the option" + ("" if force == pick else f" (the round trip would pick {LABELS[pick]})")
    if pick != best:
        return (f"BM25 and dense are comparable on the round trip (the weaker reaches {balance:.0%} of the stronger's MRR@10, "
                f"at least {fusion_ratio:.0%}), and the teacher's queries share their source's words more than real queries do, "
                f"which overrates {LABELS[best]}'s lead; fusing the two is the safer first stage")
    return "the best at finding each query's source document"


def _why(chosen: str, verdict: str, measured: dict, queries: int, k: int) -> str:
    def figures(method: str) -> str:
        return f"{LABELS[method]} MRR@10 {measured[method][RANKING_METRIC]:.3f}, Recall@{k} {measured[method][f'recall@{k}']:.3f}"

    others = "; ".join(figures(m) for m in CHEAPEST_FIRST if m in measured and m != chosen)
    return f"{LABELS[chosen]}: {verdict}, on the round trip of {queries} synthetic queries ({figures(chosen)}; {others})."
