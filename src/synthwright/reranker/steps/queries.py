"""`doc_queries` and `rewrite_queries`: the teacher writes a query for each document, or
rewrites one in other words; both go through the query rules of reranker.queries."""

from __future__ import annotations

from pydantic import Field

from synthwright.core.lineage import Row, with_meta
from synthwright.core.step import BatchResult, register_step
from synthwright.recipes.generate_step import GenerateOptions, GenerateStep
from synthwright.reranker.queries import DOC_QUERY_PROMPT, REWRITE_PROMPT, OPTIONAL_PROMPT_COLUMNS, judge_query
from synthwright.reranker.steps.base import DEFAULT_TEACHER


class TeacherQueryOptions(GenerateOptions):
    """`generate` options shared by the steps where the teacher writes a query."""

    model: str = DEFAULT_TEACHER
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(48, ge=1)
    output_column: str = "query"


class DocQueriesOptions(TeacherQueryOptions):
    prompt: str | None = DOC_QUERY_PROMPT
    logprobs: bool = True
    min_logprob: float | None = Field(None, description="Drop queries whose mean token log-probability is below this (InPars)")


@register_step("doc_queries")
class DocQueriesStep(GenerateStep):
    """`generate` with the document-to-query prompt, then the query rules of reranker.queries."""

    Options = DocQueriesOptions
    description = "Ask the teacher for a query each document answers (InPars style); clean it and drop bad ones by reason."

    def required_columns(self) -> tuple[str, ...]:
        # Only rows written under sentence focus have these; the prompt falls back without them.
        return tuple(column for column in super().required_columns() if column not in OPTIONAL_PROMPT_COLUMNS)

    def _child(self, result, row, sample_index, response):
        child = super()._child(result, row, sample_index, response)
        if child is None:
            return None
        column = self.options.output_column
        verdict = judge_query(child[column], row["document"], row.get("style", "question"),
                              logprob=child.get(f"{column}_logprob"), min_logprob=self.options.min_logprob)
        child = {**child, f"{column}_raw": child[column], column: verdict.query, "query_id": child["_meta"]["id"]}
        child = with_meta(child, recipe="doc_queries", source_doc=row["doc_id"], query_style=row.get("style"))
        if verdict.reason is not None:
            result.drop(child, verdict.reason)
            return None
        return child


class RewriteQueriesOptions(TeacherQueryOptions):
    prompt: str | None = REWRITE_PROMPT
    keep_original: bool = Field(True, description="Keep each original query too (both train the student: the same document for both wordings)")


@register_step("rewrite_queries")
class RewriteQueriesStep(GenerateStep):
    """The teacher rewrites each query in other words (a harder query for the same document);
    the result passes the same query rules, and a rewrite that drops them is counted by reason."""

    Options = RewriteQueriesOptions
    description = "Rewrite each generated query in everyday words (harder for lexical and dense matching); same query rules."

    def required_columns(self) -> tuple[str, ...]:
        return tuple(sorted({*super().required_columns(), "query", "document"}))

    def process(self, rows: list[Row]) -> BatchResult:
        result = super().process(rows)
        # A failed rewrite is recorded as the rewrite that failed, not as its original (which is kept).
        result.failed = [({**row, "query_original": row["query"]}, f"rewrite: {reason}") for row, reason in result.failed]
        if self.options.keep_original:  # each original, then its rewrites
            rewrites: dict[str, list[Row]] = {}
            for child in result.kept:
                rewrites.setdefault(child["_meta"]["parents"][0], []).append(child)
            result.kept = [out for row in rows for out in (row, *rewrites.get(row["_meta"]["id"], ()))]
            result.stats.rows_out += len(rows)
        return result

    def _child(self, result, row, sample_index, response):
        child = super()._child(result, row, sample_index, response)
        if child is None:
            return None
        verdict = judge_query(child["query"], row["document"], row.get("style", "question"))
        child = {**child, "query_raw": child["query"], "query": verdict.query, "query_original": row["query"],
                 "query_id": child["_meta"]["id"]}
        child.pop("query_logprob", None)  # the original's, not this text's
        child = with_meta(child, recipe="rewrite_queries", source_doc=row["doc_id"], query_style=row.get("style"))
        if verdict.reason is None and verdict.query.lower() == row["query"].lower():
            verdict = type(verdict)(verdict.query, "unchanged")
        if verdict.reason is not None:
            result.drop(child, verdict.reason)
            return None
        return child
