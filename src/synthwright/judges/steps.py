"""Pipeline steps: `judge` (a row step) and `judge_filter` (a stage: it ranks all rows).

```yaml
  - name: judged
    uses: judge
    with:
      judges: ["llamacpp:qwen2.5-coder-1.5b", embedding]
      text_column: question
      context_column: document      # optional for pointwise, required for pairwise
  - name: kept
    uses: judge_filter             # drops the bottom 15% by judge_score (or `threshold: 3.2`)
    with: {drop_bottom: 0.15}      # writes judge_report.json into the run folder
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field, model_validator

from synthwright.core.lineage import Row
from synthwright.core.step import BatchResult, RowStep, Stage, StepOptions, added_option, register_step
from synthwright.errors import require_module
from synthwright.judges.filtering import DEFAULT_DROP_BOTTOM, select_by_score
from synthwright.judges.rubric import load_rubric
from synthwright.llm.usage import UsageTotals

# Every pipeline imports this module to register the step types, so what needs numpy (the
# `judge` extra) is imported only when a judge step is actually built.
JUDGE_EXTRA = "'synthwright[judge]'"


class JudgeOptions(StepOptions):
    judges: list[str] = Field(min_length=1, description="Judges: a model spec (llamacpp:qwen2.5-coder-1.5b, openai:gpt-4o-mini), a model id "
                                                        "of the run, or `embedding`; NAME=SPEC names one. Several make an ensemble")
    mode: Literal["pointwise", "pairwise"] = Field("pointwise", description="pointwise: score each text; pairwise: judge (context, A, B) pairs in both orders")
    rubric: str = Field("default", description="Pointwise rubric: `default` (relevance, naturalness, difficulty) or a YAML file")
    text_column: str = Field("text", description="Pointwise: the column to judge")
    context_column: str | None = Field(None, description="The context column (document, query, instruction): required for pairwise")
    a_column: str = Field("a", description="Pairwise: the column holding candidate A")
    b_column: str = Field("b", description="Pairwise: the column holding candidate B")
    scoring: Literal["probs", "json"] = Field("probs", description="probs: expected score from next-token probabilities; "
                                                                   "json: one structured answer with a reason")
    reasons: bool | None = Field(None, description="Ask for a one-sentence reason (default: only with json scoring)")
    max_chars: int | None = Field(None, ge=20, description="Truncate each text to this many characters (cheaper judging)")
    instruction: str | None = Field(None, description="Pairwise question (default: \"Which of the two documents answers the search query? Reply with 1 or 2.\")")
    text_label: str | None = added_option(None, description="What the judged text is called in the rubric prompt (default: the rubric's, Query)")
    context_label: str | None = added_option(None, description="What the context is called in the rubric prompt (default: the rubric's, Document)")
    weights: dict[str, float] | Literal["equal", "agreement"] | None = Field(
        None, description="equal (default), agreement (judges that agree with the others count more), or judge name -> weight "
                          "(e.g. from `synthwright calibrate`)")
    generator: str | None = Field(None, description="The model that generated the rows, when their lineage lacks it (for the circularity check)")
    prefix: str = Field("judge", pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="Prefix of the columns written (judge_score, judge_by, ...)")

    @model_validator(mode="after")
    def _pairwise_context(self) -> "JudgeOptions":
        if self.mode == "pairwise" and not self.context_column:
            raise ValueError("pairwise judging needs `context_column` (the query or instruction A and B answer)")
        return self


@register_step("judge")
class JudgeStep(RowStep):
    Options = JudgeOptions
    description = "Score rows with an LLM judge ensemble (rubric or pairwise, both orders); adds judge_* columns and _meta.scores."
    default_batch_size = 32

    def __init__(self, name, options: JudgeOptions, context):
        super().__init__(name, options, context)
        require_module("numpy", "The judge step", JUDGE_EXTRA)
        from synthwright.judges.apply import JudgeColumns
        from synthwright.judges.ensemble import JudgeEnsemble
        from synthwright.judges.factory import build_judge
        from synthwright.judges.prompts import PairwisePrompt

        o = options
        self.rubric = load_rubric(context.resolve(o.rubric) if o.rubric != "default" else None)
        labels = {k: v for k, v in (("text_label", o.text_label), ("context_label", o.context_label)) if v}
        self.rubric = self.rubric.model_copy(update=labels) if labels else self.rubric
        prompt = PairwisePrompt(instruction=o.instruction) if o.instruction else PairwisePrompt()
        judges = [
            build_judge(spec, o.mode, rubric=self.rubric, scoring=o.scoring, reasons=o.reasons, max_chars=o.max_chars,
                        prompt=prompt, context=context, step_name=name)
            for spec in o.judges
        ]
        self.ensemble = JudgeEnsemble(judges, o.weights)
        self.columns = JudgeColumns(text=o.text_column, context=o.context_column, a=o.a_column, b=o.b_column, prefix=o.prefix)
        self._warned = False

    def required_columns(self) -> tuple[str, ...]:
        return self.columns.needed(self.options.mode)

    def output_columns(self) -> tuple[str, ...]:
        p = self.options.prefix
        if self.options.mode == "pairwise":
            return (f"{p}_p_a", f"{p}_winner", f"{p}_by")
        return (f"{p}_score", f"{p}_criteria", f"{p}_by")

    def fingerprint_extra(self) -> dict[str, Any]:
        return {"judges": [j.describe() for j in self.ensemble.judges]}

    def process(self, rows: list[Row]) -> BatchResult:
        from synthwright.judges.apply import judge_rows

        result = BatchResult.for_input(len(rows))
        # Warn once per step, not once per batch: loud, not noisy.
        judged = judge_rows(rows, self.ensemble, self.options.mode, self.columns, generator=self.options.generator, warn=not self._warned)
        self._warned = self._warned or bool(judged.circularity)
        for row in judged.rows:
            result.keep(row)
        for row, reason in judged.failed:
            result.fail(row, reason)
        for judge in self.ensemble.judges:
            usage = getattr(judge, "usage", None)
            if isinstance(usage, UsageTotals):
                result.stats.add_usage(usage)
                judge.usage = UsageTotals()  # counted into this batch; start afresh for the next
        return result


class JudgeFilterOptions(StepOptions):
    column: str | None = Field(None, description="Score column (default: PREFIX_score, or PREFIX_p_a for pairwise)")
    drop_bottom: float | None = Field(None, ge=0.0, lt=1.0, description="Drop this lowest-scoring fraction (default 0.15)")
    threshold: float | None = Field(None, description="Drop rows scoring below this instead (e.g. from `synthwright calibrate`)")
    by: Literal["score", "confidence"] = Field("score", description="confidence: rank pairwise rows by |P(A) - 0.5|")
    prefix: str = "judge"
    report: str | None = Field("judge_report.json", description="Where to write the judge report (inside the run folder); null for none")

    @model_validator(mode="after")
    def _one_rule(self) -> "JudgeFilterOptions":
        if self.drop_bottom is not None and self.threshold is not None:
            raise ValueError("give `drop_bottom` or `threshold`, not both")
        return self


@register_step("judge_filter")
class JudgeFilterStage(Stage):
    Options = JudgeFilterOptions
    description = "Drop the bottom q% of rows by judge score (default 15%), or rows below a threshold; writes the judge report."
    runs_on_driver = True  # its report is a file the user reads

    def run(self, rows: Iterable[Row]) -> BatchResult:
        from synthwright.judges.apply import JudgeColumns, judged_mode

        o = self.options
        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        if not rows:
            return result
        column = o.column or JudgeColumns(prefix=o.prefix).score_column(judged_mode(rows, o.prefix) or "pointwise")
        kept, dropped = select_by_score(rows, column, drop_bottom=o.drop_bottom, threshold=o.threshold, by_confidence=o.by == "confidence")
        for row in kept:
            result.keep(row)
        for row, reason in dropped:
            result.drop(row, reason)
        if o.report and any(f"{o.prefix}_by" in row for row in rows):
            from synthwright.judges.report import judge_report

            path = self.context.output_path(o.report)
            path.parent.mkdir(parents=True, exist_ok=True)
            report = judge_report(rows, o.prefix)
            rule = f"threshold {o.threshold}" if o.threshold is not None else f"bottom {o.drop_bottom or DEFAULT_DROP_BOTTOM}"
            report["filter"] = {"column": column, "kept": len(kept), "dropped": len(dropped), "rule": rule}
            path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        return result
