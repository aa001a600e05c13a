"""`candidates`: first-stage retrieval per query (hybrid, or the first_stage step's choice), with
BM25's and dense's scores and the round-trip check. Candidates are where the hard negatives
come from, so they come from the retriever the student will rerank."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from synthwright.core.lineage import Row
from synthwright.core.step import BatchResult, RowStep, StepOptions, register_step
from synthwright.errors import UserError
from synthwright.reranker.corpus import corpus_fingerprint, shared_retriever
from synthwright.reranker.steps.base import ReadsCorpus


class CandidatesOptions(StepOptions):
    corpus: str
    k: int = Field(10, ge=1, description="Candidates kept per query (ranked by hybrid retrieval)")
    roundtrip_k: int | None = Field(20, ge=1, description="Drop a query whose source document is not in the top roundtrip_k (null: keep all)")
    query_column: str = "query"
    retriever: Literal["chosen", "bm25", "dense", "hybrid"] = Field("hybrid", description="The ranking candidates come from: chosen = the first_stage step's choice (rows carry it), or one forced")


@register_step("candidates")
class CandidatesStep(ReadsCorpus, RowStep):
    Options = CandidatesOptions
    description = "First-stage retrieval (hybrid BM25 + MiniLM by RRF, or the chosen one) per query: candidates, component scores, and the round-trip check."
    input_columns = ("doc_id",)
    default_batch_size = 256

    def required_columns(self) -> tuple[str, ...]:
        return ("doc_id", self.options.query_column)

    def output_columns(self) -> tuple[str, ...]:
        return ("candidates", "source_rank", "bm25", "dense")

    def fingerprint_extra(self) -> dict[str, Any]:
        return corpus_fingerprint(self._spec())

    def process(self, rows: list[Row]) -> BatchResult:
        o = self.options
        depth = max(o.k, o.roundtrip_k or 0, 100)
        found = shared_retriever(self._spec()).hybrid([row[o.query_column] for row in rows], depth, depth=depth)
        result = BatchResult.for_input(len(rows))
        for row, hits in zip(rows, found):
            method = row.get("first_stage") if o.retriever == "chosen" else o.retriever
            if method is None:
                raise UserError("retriever: chosen needs rows from a first_stage step (they carry the choice).",
                                "Put a first_stage step before this one, or force a retriever: hybrid, dense or bm25.")
            fused, lex, sem = [doc for doc, _ in hits.ranking(method)], hits.bm25, hits.dense
            rank = fused.index(row["doc_id"]) + 1 if row["doc_id"] in fused else None
            if o.roundtrip_k and (rank is None or rank > o.roundtrip_k):
                result.drop({**row, "source_rank": rank}, "not_round_trip")
                continue
            candidates = [doc for doc in fused if doc != row["doc_id"]][: o.k]
            bm25, dense = dict(lex), dict(sem)
            nodes = [row["doc_id"], *candidates]
            result.keep({**row, "candidates": candidates, "source_rank": rank,
                         "bm25": [bm25.get(d, 0.0) for d in nodes], "dense": [dense.get(d, 0.0) for d in nodes]})
        return result
