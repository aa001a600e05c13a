"""Dedup as a pipeline step: semantic (embedding epsilon), exact, MinHash or ROUGE-L.

A stage, because a row is a duplicate only relative to the rows before it. Each dropped row
keeps its text and records in lineage which row it duplicated (by row id) and how close
they were; counters read `dropped_near_duplicate`, `exact_duplicate`, ... by reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from synthwright.core.lineage import Row, meta_of, with_meta
from synthwright.core.step import BatchResult, Stage, StepOptions, register_step


class DedupOptions(StepOptions):
    column: str = Field(description="The text column compared")
    method: Literal["semantic", "exact", "minhash", "rouge_l"] = "semantic"
    epsilon: float = Field(0.1, ge=0.0, le=2.0, description="semantic: cosine distance at or below which rows are duplicates")
    threshold: float | None = Field(None, description="minhash: Jaccard (default 0.8); rouge_l: ROUGE-L F (default 0.7)")
    embedder: str = Field("minilm", description="semantic: embedder spec")
    score_column: str | None = Field(None, description="semantic: keep the best-scored member of each group, not the first")


REASONS = {"semantic": "dropped_near_duplicate", "exact": "exact_duplicate", "minhash": "minhash_near_duplicate", "rouge_l": "rouge_l_near_duplicate"}


@register_step("dedup")
class DedupStage(Stage):
    Options = DedupOptions
    description = "Drop duplicates (semantic epsilon, exact, MinHash or ROUGE-L); each drop names its twin."

    def required_columns(self) -> tuple[str, ...]:
        return (self.options.column,) + ((self.options.score_column,) if self.options.score_column else ())

    def run(self, rows: Iterable[Row]) -> BatchResult:
        rows = list(rows)
        ids = [meta_of(row).get("id", index) for index, row in enumerate(rows)]
        result = BatchResult.for_input(len(rows))
        for position, (row, drop) in enumerate(self._decide(rows)):
            if drop is None:
                result.keep(row)
                continue
            twin = drop.duplicate_of
            twin_id = ids[twin] if isinstance(twin, int) and 0 <= twin < len(ids) else twin
            result.drop(with_meta(row, duplicate_of=twin_id, **{drop.measure: round(float(drop.value), 6)}), REASONS[self.options.method])
        return result

    def _decide(self, rows: list[Row]):
        from synthwright import filters

        o = self.options
        text_key = o.column
        if o.method == "semantic":
            return filters.semantic_dedup(rows, o.epsilon, embedder=o.embedder, text_key=text_key, score_key=o.score_column)
        if o.method == "exact":
            return filters.exact_dedup(rows, text_key=text_key)
        if o.method == "minhash":
            return filters.minhash_dedup(rows, threshold=o.threshold or 0.8, text_key=text_key)
        return filters.rouge_l_filter(rows, threshold=o.threshold or 0.7, text_key=text_key)
