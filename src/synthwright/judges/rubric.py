"""Rubrics: what a pointwise judge scores, criterion by criterion.

A criterion is one question on a 1-5 scale with a meaning for each point (anchors), or a
yes/no question (`binary: true`) whose P(Yes) is mapped onto the same scale. The default
rubric scores relevance, naturalness and difficulty, the three the method asks for. Custom
rubrics come from YAML:

```yaml
name: support-questions
text_label: Question          # what the judged text is called in the prompt
context_label: Product page   # what the context is called (when a context column is given)
criteria:
  - name: relevance
    question: How relevant is the question to the product page?
    anchors: [unrelated, barely related, on topic but not answered, mostly answered, fully answered]
    needs_context: true       # skipped (and reported) when no context is given
  - name: politeness
    question: Is the question polite?
    binary: true
    weight: 0.5               # weight in the overall score (default 1)
```
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthwright.errors import UserError
from synthwright.io.rows import check_input_file

SCALE = (1, 5)  # every criterion reports on this scale, so criteria and judges can be averaged


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    question: str
    anchors: tuple[str, ...] = Field((), description="What 1..5 mean, lowest first (scale criteria)")
    binary: bool = Field(False, description="A yes/no question: score = 1 + 4 * P(Yes)")
    weight: float = Field(1.0, ge=0.0)
    needs_context: bool = False

    @model_validator(mode="after")
    def _anchors_fit(self) -> "Criterion":
        if self.anchors and len(self.anchors) != SCALE[1] - SCALE[0] + 1:
            raise ValueError(f"give one anchor per point of the {SCALE[0]}-{SCALE[1]} scale ({SCALE[1] - SCALE[0] + 1}), lowest first")
        if self.binary and self.anchors:
            raise ValueError("a binary (yes/no) criterion has no anchors")
        return self


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    text_label: str = "Text"
    context_label: str = "Context"
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @field_validator("criteria")
    @classmethod
    def _unique(cls, criteria: tuple[Criterion, ...]) -> tuple[Criterion, ...]:
        names = [c.name for c in criteria]
        if len(set(names)) != len(names):
            raise ValueError("criterion names must be unique")
        if sum(c.weight for c in criteria) <= 0:
            raise ValueError("at least one criterion needs a positive weight")
        return criteria

    @property
    def fingerprint(self) -> str:
        """Identifies the rubric's wording (for lineage and step fingerprints)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]

    def usable(self, has_context: bool) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if has_context or not c.needs_context)

    def overall(self, scores: dict[str, float]) -> float:
        """Weighted mean of the criteria that were scored."""
        weights = {c.name: c.weight for c in self.criteria if c.name in scores}
        total = sum(weights.values())
        if total <= 0:  # only zero-weight criteria were scored: fall back to a plain mean
            return sum(scores.values()) / len(scores)
        return sum(scores[name] * w for name, w in weights.items()) / total


DEFAULT_RUBRIC = Rubric(
    name="default",
    text_label="Query",
    context_label="Document",
    criteria=(
        Criterion(
            name="relevance",
            question="How relevant is the query to the document?",
            anchors=("unrelated to the document", "barely related", "on the topic, but the document does not answer it",
                     "mostly answered by the document", "fully answered by the document"),
            needs_context=True,
        ),
        Criterion(
            name="naturalness",
            question="How natural is the query?",
            anchors=("gibberish or a list of copied words", "broken, hard to read", "understandable but awkward",
                     "mostly natural", "fluent, like something a real person would write"),
        ),
        Criterion(
            name="difficulty",
            question="How hard is the query to answer?",
            anchors=("trivial: one word matches", "easy", "moderate", "needs careful reading",
                     "needs reasoning across the whole text"),
        ),
    ),
)


def load_rubric(source: str | Path | None) -> Rubric:
    """`None` or "default" -> the default rubric; otherwise a YAML file (see the module doc)."""
    if source is None or str(source) == "default":
        return DEFAULT_RUBRIC
    path = Path(source)
    check_input_file(path, "Rubric file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"Rubric file '{path}' is not valid YAML: {exc}.", "Fix the YAML syntax.") from None
    if not isinstance(data, dict):
        raise UserError(f"Rubric file '{path}' must be a mapping with `criteria`.", "See synthwright.judges.rubric for the format.")
    data.setdefault("name", path.stem)
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"Rubric file '{path}': {where}: {first['msg']}.", "Fix that entry (see synthwright.judges.rubric).") from None
