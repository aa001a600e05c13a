"""What the reranker's steps share: the default teacher, query styles, reading a corpus,
stages whose rows pass through, and writing a JSON report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from synthwright.core.files import write_json_report  # noqa: F401  (steps here import it from this module)
from synthwright.core.step import PassThroughStage  # noqa: F401  (the reranker's steps import it from here)
from synthwright.llm.offline_models import DEFAULT_TEACHER  # noqa: F401  (the reranker's steps import it from here)

Style = Literal["claim", "question", "keyword", "code"]


class ReadsCorpus:
    """A step whose `corpus` option names a corpus: a scheme such as pydoc:topics, or a path
    (relative paths are relative to the pipeline file)."""

    def _spec(self) -> str:
        spec = self.options.corpus
        return spec if ":" in spec and not spec.startswith(("/", ".")) and len(spec.split(":")[0]) > 1 else str(self.context.resolve(spec))
