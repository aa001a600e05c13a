"""What the reranker's steps share: the default teacher, query styles, reading a corpus,
stages whose rows pass through, and writing a JSON report."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from synthwright.core.files import write_json_report  # noqa: F401  (steps here import it from this module)
from synthwright.core.lineage import Row
from synthwright.core.step import BatchResult, Stage, StepStats

DEFAULT_TEACHER = "llamacpp:qwen2.5-coder-1.5b"
Style = Literal["claim", "question", "keyword", "code"]


class ReadsCorpus:
    """A step whose `corpus` option names a corpus: a scheme such as pydoc:topics, or a path
    (relative paths are relative to the pipeline file)."""

    def _spec(self) -> str:
        spec = self.options.corpus
        return spec if ":" in spec and not spec.startswith(("/", ".")) and len(spec.split(":")[0]) > 1 else str(self.context.resolve(spec))



class PassThroughStage(Stage):
    """A stage whose effect is a file (a report, a model, an evaluation): it reads every row
    and forwards them all unchanged."""

    def run(self, rows: Iterable[Row]) -> BatchResult:
        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        self.write_output(rows, result.stats)
        for row in rows:
            result.keep(row)
        return result

    @abstractmethod
    def write_output(self, rows: list[Row], stats: StepStats) -> None:
        """Make the stage's file from `rows`; add LLM usage or extra time to `stats`."""
