"""`pair_judge` and `calibrate_judges`: an ensemble judges pairs of documents per query, on
the synthetic queries and on a small human-labelled sample that measures each member."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from synthwright.core.lineage import Row
from synthwright.core.step import BatchResult, RowStep, StepOptions, StepStats, register_step
from synthwright.errors import UserError
from synthwright.judges.members import EMBEDDING, LIKELIHOOD, parse_member, parse_members
from synthwright.reranker.corpus import corpus_fingerprint, corpus_texts, open_corpus, shared_retriever
from synthwright.reranker.queries import JUDGE_INSTRUCTIONS
from synthwright.reranker.steps.base import DEFAULT_TEACHER, PassThroughStage, ReadsCorpus, Style, write_json_report
from synthwright.reranker.teacher import LIKELIHOOD_FINGERPRINT, likelihood_unsupported


def likelihood_fingerprint(judges: list[str]) -> dict[str, Any]:
    """The likelihood prompt, for steps with a `likelihood:` member only (pairwise runs keep theirs)."""
    return {"likelihood": LIKELIHOOD_FINGERPRINT} if any(m.kind == LIKELIHOOD for m in parse_members(judges)) else {}


def checked_judges(judges: list[str]) -> list[str]:
    """Each member parses; the embedding member is the retriever's MiniLM; a `likelihood:MODEL`
    member needs a model that gives the prompt's log-probabilities."""
    for spec in judges:
        member = parse_member(spec)
        if member.kind == EMBEDDING and member.target != "minilm":
            raise ValueError(f"judge '{spec}': the embedding member uses the candidates' MiniLM scores: write `embedding`")
        problem = likelihood_unsupported(member.target) if member.kind == LIKELIHOOD else None
        if problem:
            raise ValueError(f"judge '{spec}': {problem}: use likelihood:llamacpp:MODEL, or '{member.target}' as a pairwise member")
    return judges


class PairJudgeOptions(StepOptions):
    corpus: str
    judges: list[str] = Field(["bm25", "embedding", DEFAULT_TEACHER], min_length=1,
                              description="Members: bm25, embedding (MiniLM cosine), LLM model specs (pairwise, both orders) "
                                          "and likelihood:MODEL (query likelihood, llamacpp: models)")
    pairs_per_query: int = Field(16, ge=1, description="Comparison graph size per query (cheap members judge all)")
    llm_pairs_per_query: float = Field(2.0, ge=0.0, description="LLM judgments per query on average (each asked in both orders)")
    anchor_share: float = Field(0.2, ge=0.0, le=1.0, description="Share of the LLM budget spent on anchor pairs (source vs a bottom candidate) to measure its reliability")
    max_chars: int = Field(450, ge=50, description="Document characters an LLM judge reads (cost is prompt length)")
    instruction: str | None = Field(None, description="Pairwise question for the LLM (default fits the query style)")
    n_random: int = Field(2, ge=0)

    @field_validator("judges")
    @classmethod
    def _judges(cls, judges: list[str]) -> list[str]:
        return checked_judges(judges)


@register_step("pair_judge")
class PairJudgeStep(ReadsCorpus, RowStep):
    Options = PairJudgeOptions
    description = "Select a connected comparison graph per query on a budget; judge it with an ensemble (cheap members everywhere, the LLM where they disagree)."
    input_columns = ("query_id", "query", "doc_id", "candidates", "bm25", "dense")
    default_batch_size = 64

    def output_columns(self) -> tuple[str, ...]:
        return ("comparisons",)

    version = 2  # 2: the LLM budget per batch is drawn (stochastic rounding), not rounded

    def fingerprint_extra(self) -> dict[str, Any]:
        return {**corpus_fingerprint(self._spec()), "instructions": JUDGE_INSTRUCTIONS, **likelihood_fingerprint(self.options.judges)}

    def process(self, rows: list[Row]) -> BatchResult:
        from synthwright.reranker.judging import judge_batch

        result = BatchResult.for_input(len(rows))
        judged, usage = judge_batch(rows, self.options, self.context, self.name, corpus_texts(open_corpus(self._spec())))
        for row in judged:
            result.keep(row)
        for spec_usage in usage:
            result.stats.add_usage(spec_usage)
        return result


class CalibrateOptions(StepOptions):
    corpus: str
    queries: str = Field(description="Real training queries (BEIR queries.jsonl): never the evaluation queries")
    qrels: str = Field(description="Their qrels (BEIR TSV)")
    limit: int = Field(50, ge=1, le=50, description="Queries in the sample (seeded); the method allows at most 50")
    judges: list[str] = Field(["bm25", "embedding", DEFAULT_TEACHER], min_length=1, description="The ensemble members, as in pair_judge")
    style: Style = Field("question", description="Query style of the real queries (picks the LLM's question)")
    max_chars: int = Field(450, ge=50)
    output: str = "calibration.json"

    @field_validator("judges")
    @classmethod
    def _judges(cls, judges: list[str]) -> list[str]:
        return checked_judges(judges)


@register_step("calibrate_judges")
class CalibrateJudgesStage(ReadsCorpus, PassThroughStage):
    Options = CalibrateOptions
    description = "Judge a small human-labelled sample (<= 50 real queries with qrels) with every member: accuracy and weight on real labels; rows pass through."

    def fingerprint_extra(self) -> dict[str, Any]:
        return {**corpus_fingerprint(self._spec()), "instructions": JUDGE_INSTRUCTIONS, **likelihood_fingerprint(self.options.judges)}

    def write_output(self, rows: list[Row], stats: StepStats) -> None:
        from synthwright.reranker.calibration import CalibrationOptions, calibrate_members, calibration_rows
        from synthwright.reranker.evaluation import judged_queries, sample_queries
        from synthwright.reranker.judging import judge_batch

        o = self.options
        texts = corpus_texts(open_corpus(self._spec()))
        queries, qrels = judged_queries(self.context.resolve(o.queries), self.context.resolve(o.qrels))
        qrels = {qid: {doc: grade for doc, grade in judged.items() if doc in texts} for qid, judged in qrels.items()}
        sample = sample_queries(queries, o.limit, self.context.run_seed)
        calibration = calibration_rows(sample, qrels, shared_retriever(self._spec()), style=o.style, seed=self.context.run_seed)
        if not calibration:
            raise UserError(f"None of the {len(sample)} calibration queries has a relevant document in the corpus.",
                            "Check that the qrels belong to this corpus (their corpus-ids must be its _ids).")
        judged, usage = judge_batch(calibration, CalibrationOptions(o.judges, o.max_chars), self.context, self.name, texts)
        members = sorted({m for row in judged for c in row["comparisons"] for m in c["by"]})
        write_json_report(self.context.output_path(o.output), {**calibrate_members(judged, members), "rows": judged})
        for spec_usage in usage:
            stats.add_usage(spec_usage)
