"""`reranker_report`: one HTML page about the whole run."""

from __future__ import annotations

from synthwright.core.lineage import Row
from synthwright.core.step import StepOptions, StepStats, register_step
from synthwright.reranker.steps.base import PassThroughStage


class ReportOptions(StepOptions):
    output: str = "report.html"
    title: str = "Synthetic reranker"


@register_step("reranker_report")
class RerankerReportStage(PassThroughStage):
    Options = ReportOptions
    description = "One HTML report: data stats, judge reliability and bias, score distributions, loss curves, evaluation table."

    def write_output(self, rows: list[Row], stats: StepStats) -> None:
        from synthwright.reranker.report import write_report

        write_report(self.context.run_dir, rows, self.context.output_path(self.options.output), title=self.options.title)
