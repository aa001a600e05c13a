"""`query_register`: do the synthetic queries read like the real ones? The two-sample AUC (a
classifier telling synthetic from real on MiniLM embeddings: 0.5 = indistinguishable, the lower
the better) and k-NN coverage of the synthetic queries against the style sample (validate)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from synthwright.core.lineage import Row
from synthwright.core.step import StepOptions, StepStats, register_step
from synthwright.reranker.steps.base import PassThroughStage, write_json_report

MIN_ROWS = 3  # fewer on either side and there is nothing to test


class RegisterOptions(StepOptions):
    style_examples: str = Field(description="The style sample: real queries of the register (the same file as the corpus step's style_examples); all of it is the reference")
    query_column: str = "query"
    embedder: str = "minilm"
    k: int = Field(5, ge=1, description="k of the k-NN coverage (lowered for tiny samples)")
    output: str = "register.json"


@register_step("query_register")
class QueryRegisterStage(PassThroughStage):
    Options = RegisterOptions
    description = "Check the synthetic queries' register against real ones: two-sample AUC and k-NN coverage; rows pass through."

    def fingerprint_extra(self) -> dict[str, Any]:
        from synthwright.reranker.style import read_style_queries

        return {"style_examples": read_style_queries(self.context.resolve(self.options.style_examples))}

    def write_output(self, rows: list[Row], stats: StepStats) -> None:
        from synthwright.reranker.style import read_style_queries

        real = read_style_queries(self.context.resolve(self.options.style_examples))
        synthetic = [row[self.options.query_column] for row in rows]
        write_json_report(self.context.output_path(self.options.output), register_check(real, synthetic, self.options.embedder,
                                                                                        self.options.k, self.context.run_seed))


def register_check(real: list[str], synthetic: list[str], embedder: str = "minilm", k: int = 5, seed: int = 0) -> dict[str, Any]:
    """Two-sample AUC and coverage of `synthetic` against `real`, with a few examples of each."""
    report: dict[str, Any] = {"real": len(real), "synthetic": len(synthetic), "real_examples": real[:5], "synthetic_examples": synthetic[:5]}
    if min(len(real), len(synthetic)) < MIN_ROWS:
        return {**report, "note": f"too few queries to compare (at least {MIN_ROWS} on each side)"}
    from synthwright.embed import load_embedder
    from synthwright.validate import knn_coverage, two_sample_auc

    model = load_embedder(embedder)
    real_vectors, synthetic_vectors = model.embed(real), model.embed(synthetic)
    test = two_sample_auc(real_vectors, synthetic_vectors, seed=seed)
    coverage = knn_coverage(real_vectors, synthetic_vectors, k=min(k, min(len(real), len(synthetic)) - 1), seed=seed)
    return {**report, "two_sample_auc": test.to_dict(), "coverage": coverage.to_dict()}
