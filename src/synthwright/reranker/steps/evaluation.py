"""`evaluate_reranker`: the baselines and each student on real queries, and the teacher if asked."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from synthwright.core.lineage import Row
from synthwright.core.step import StepOptions, StepStats, register_step
from synthwright.errors import UserError
from synthwright.reranker.corpus import corpus_fingerprint
from synthwright.reranker.steps.base import PassThroughStage, ReadsCorpus, Style, write_json_report
from synthwright.reranker.teacher import LIKELIHOOD_FINGERPRINT, TeacherMethod, likelihood_unsupported


class EvaluateOptions(StepOptions):
    corpus: str
    queries: str = Field(description="Real evaluation queries: BEIR queries.jsonl (only those the qrels judge are used)")
    qrels: str = Field(description="BEIR qrels TSV of the evaluation queries")
    students: dict[str, str] = Field({"student": "student/model"}, description="Name -> student model folder (relative: inside the run folder); give the step that trains them as `input`, so a retrained student re-runs the evaluation")
    depth: int = Field(30, ge=1, description="How many first-stage documents the student reranks")
    resamples: int = Field(2000, ge=100)
    control: bool = Field(True, description="Also put the untrained base model (MiniLM) in the student's place in BM25 + student: the student's own gain is its gain over this control")
    first_stage: Literal["chosen", "bm25", "dense", "hybrid"] = Field("hybrid", description="What the students rerank and every gain is measured over: chosen = the first_stage step's choice (rows carry it), or one forced")
    output: str = "evaluation.json"
    teacher: str | None = Field(None, description="Also rerank with this LLM used directly, pointwise (the quality ceiling at its cost)")
    teacher_queries: int = Field(30, ge=1, description="Evaluation queries (seeded sample) the teacher reranks: one LLM call per document")
    teacher_depth: int = Field(10, ge=1, description="Hybrid documents per query the teacher rescores")
    teacher_style: Style = Field("question", description="Query style of the evaluation queries: picks the teacher's yes/no question")
    teacher_max_chars: int = Field(450, ge=50, description="Document characters the teacher reads")
    teacher_method: TeacherMethod = Field("likelihood", description="How the teacher scores a document: likelihood = log P(query | document) (llamacpp: models), yes_no = P(Yes) to 'does it answer the query?'")

    @model_validator(mode="after")
    def _likelihood_needs_prompt_logprobs(self) -> "EvaluateOptions":
        problem = likelihood_unsupported(self.teacher) if self.teacher and self.teacher_method == "likelihood" else None
        if problem:
            raise ValueError(f"teacher_method likelihood: {problem}: use a llamacpp: teacher, or teacher_method: yes_no "
                             "(--teacher-rerank-method yes_no)")
        return self


@register_step("evaluate_reranker")
class EvaluateRerankerStage(ReadsCorpus, PassThroughStage):
    Options = EvaluateOptions
    description = "Evaluate BM25, dense, hybrid and each student on real queries (nDCG@10, MRR@10, Recall@100, paired bootstrap); rows pass through."

    version = 3  # 3: the first stage can be chosen; a bi-encoder student is also a retriever over the whole corpus

    def fingerprint_extra(self) -> dict[str, Any]:
        # Not the student folders' mtimes: fingerprints are planned before the student trains,
        # so a stamp would always be one run behind. The training step as `input` tracks it.
        o = self.options
        likelihood = o.teacher is not None and o.teacher_method == "likelihood"
        return {**corpus_fingerprint(self._spec()), **({"likelihood": LIKELIHOOD_FINGERPRINT} if likelihood else {})}

    def write_output(self, rows: list[Row], stats: StepStats) -> None:
        from synthwright.embed.local import minilm_path
        from synthwright.reranker.bi_encoder import student_scorer
        from synthwright.reranker.corpus import corpus_texts, open_corpus
        from synthwright.reranker.evaluation import evaluate_students, judged_queries
        from synthwright.reranker.teacher import TeacherRerank

        o = self.options
        queries, qrels = judged_queries(self.context.resolve(o.queries), self.context.resolve(o.qrels))
        progress = self.context.request_progress
        texts = corpus_texts(open_corpus(self._spec()))
        students = {name: student_scorer(self.context.output_path(path), texts, name, progress) for name, path in o.students.items()}
        control = ("MiniLM", student_scorer(minilm_path(), texts, "MiniLM", progress)) if o.control and students else None
        teacher = TeacherRerank(o.teacher, o.teacher_queries, o.teacher_depth, o.teacher_style, o.teacher_max_chars,
                                context=self.context, step_name=self.name, method=o.teacher_method) if o.teacher else None
        evaluation = evaluate_students(self._spec(), queries, qrels, students, depth=o.depth, first_stage=chosen_first_stage(rows, o.first_stage),
                                       resamples=o.resamples, seed=self.context.run_seed, teacher=teacher, control=control, progress=progress)
        write_json_report(self.context.output_path(o.output), evaluation.to_dict())
        for usage in evaluation.llm_usage:
            stats.add_usage(usage)


def chosen_first_stage(rows: list[Row], option: str) -> str:
    """The first stage to evaluate: the one forced, or the one the first_stage step chose (its rows carry it)."""
    if option != "chosen":
        return option
    chosen = {row.get("first_stage") for row in rows}
    if len(chosen) != 1 or None in chosen:
        raise UserError("first_stage: chosen needs the rows of a first_stage step, all with one choice.",
                        "Put a first_stage step before the candidates (synthwright reranker does), or force one: first_stage: dense.")
    return chosen.pop()
