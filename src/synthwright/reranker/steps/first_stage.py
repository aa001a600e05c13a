"""`first_stage`: measure BM25, dense and hybrid on the round trip of the synthetic queries and
choose the first stage for candidates, hard negatives and evaluation (ranking.first_stage)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field

from synthwright.core.lineage import Row
from synthwright.core.step import BatchResult, Stage, StepOptions, added_option, register_step
from synthwright.ranking.first_stage import FUSION_RATIO
from synthwright.reranker.corpus import corpus_fingerprint
from synthwright.reranker.steps.base import ReadsCorpus, write_json_report


class FirstStageOptions(StepOptions):
    corpus: str
    retriever: Literal["auto", "bm25", "dense", "hybrid"] = Field("auto", description="auto: the best on the round trip of the synthetic queries; or force one (still measured and reported)")
    k: int = Field(20, ge=1, description="Recall@k of the round trip: is the source document among the top k?")
    query_column: str = "query"
    fusion_ratio: float = added_option(FUSION_RATIO, gt=0, le=1.0, description="auto: choose hybrid where the weaker of BM25 and dense reaches this share of the stronger's round-trip MRR@10 (1 = only the measured best)")
    output: str = Field("first_stage.json", description="The measurements and the choice, with why (inside the run folder)")


@register_step("first_stage")
class FirstStageStage(ReadsCorpus, Stage):
    Options = FirstStageOptions
    description = "Choose the first stage (BM25, dense or hybrid) by the round trip of the synthetic queries, never by evaluation labels; adds column first_stage."

    version = 2  # 2: hybrid where BM25 and dense are comparable on the round trip (ranking.first_stage)

    def fingerprint_extra(self) -> dict[str, Any]:
        return corpus_fingerprint(self._spec())

    def run(self, rows: Iterable[Row]) -> BatchResult:
        from synthwright.ranking.first_stage import choose_first_stage
        from synthwright.reranker.corpus import first_stage_runs

        o = self.options
        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        queries = {row["_meta"]["id"]: row[o.query_column] for row in rows}
        runs = first_stage_runs(self._spec(), queries, depth=max(o.k, 100), keep=max(o.k, 10), progress=self.context.request_progress)
        choice = choose_first_stage(runs, {row["_meta"]["id"]: row["doc_id"] for row in rows}, k=o.k,
                                    force=None if o.retriever == "auto" else o.retriever, fusion_ratio=o.fusion_ratio)
        write_json_report(self.context.output_path(o.output), choice.to_dict())
        for row in rows:
            result.keep({**row, "first_stage": choice.chosen})
        return result
