"""What every judge is: items in, one result (or a failure with its reason) per item out.

Two kinds of judges share one shape:
- a pointwise judge scores one text (with an optional context) on the rubric scale, 1-5;
- a pairwise judge says how likely A beats B for a context, asked in both orders so its
  position bias is measured instead of hidden.

Results are plain dataclasses so they travel into rows, reports and tests unchanged. A
judgment that cannot be made is a `JudgeFailure` with a reason, never None and never a
made-up score.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True)
class PointItem:
    text: str
    context: str | None = None


@dataclass(frozen=True)
class PairItem:
    context: str
    a: str
    b: str


@dataclass(frozen=True)
class JudgeFailure:
    reason: str


@dataclass(frozen=True)
class CriterionScore:
    """One criterion's score: the probability-weighted expectation when probabilities exist."""

    score: float
    probs: dict[str, float] | None = None  # choice -> probability ("1".."5", or "Yes"/"No")
    argmax: float | None = None  # the single most likely score, for comparison with `score`


@dataclass(frozen=True)
class PointResult:
    score: float  # overall, on the rubric scale (1-5)
    criteria: dict[str, CriterionScore] = field(default_factory=dict)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"score": self.score}
        if self.criteria:
            out["criteria"] = {name: _criterion_dict(c) for name, c in self.criteria.items()}
        if self.reason:
            out["reason"] = self.reason
        return out


def _criterion_dict(c: CriterionScore) -> dict[str, Any]:
    out: dict[str, Any] = {"score": c.score}
    if c.probs is not None:
        out["probs"] = c.probs
    if c.argmax is not None:
        out["argmax"] = c.argmax
    return out


@dataclass(frozen=True)
class PairResult:
    """P(A better) from both orders.

    `p_first_ab` is P(the first document wins) when A is shown first; `p_first_ba` the same
    when B is shown first. A judge without position bias has p_first_ab = 1 - p_first_ba.
    """

    p_first_ab: float
    p_first_ba: float
    reason: str | None = None

    @property
    def p_a(self) -> float:
        """Order-averaged P(A better): P(A wins shown first) and P(A wins shown second)."""
        return (self.p_first_ab + (1.0 - self.p_first_ba)) / 2.0

    @property
    def consistent(self) -> bool:
        """Both orders pick the same document (a judge that always picks "first" is not)."""
        return (self.p_first_ab > 0.5) == (self.p_first_ba < 0.5)

    def to_dict(self) -> dict[str, Any]:
        out = {"p_a": self.p_a, "p_first_ab": self.p_first_ab, "p_first_ba": self.p_first_ba, "consistent": self.consistent}
        if self.reason:
            out["reason"] = self.reason
        return out


class Progress(Protocol):
    """What a judge tells whoever shows progress (the CLI's bar); every method optional."""

    def start(self, total: int) -> None: ...

    def advance(self, response: Any) -> None: ...

    def finish(self) -> None: ...


def short_model_name(spec: str) -> str:
    """A judge's default name: "llamacpp:qwen2.5-coder-1.5b" -> "qwen2.5-coder-1.5b",
    "openai:gpt-4o@http://host/v1" -> "gpt-4o", "llamacpp:/models/m.gguf" -> "m"."""
    target = spec.split(":", 1)[-1] if ":" in spec and "/" not in spec.split(":", 1)[0] else spec
    name = PurePath(target.split("@", 1)[0]).name
    return name[: -len(".gguf")] if name.endswith(".gguf") else name


class Judge(ABC):
    """A named judge. `model` is its LLM spec, or None for a non-LLM judge (never circular)."""

    kinds: ClassVar[tuple[str, ...]] = ()  # "pointwise", "pairwise" or both

    def __init__(self, name: str, model: str | None = None):
        self.name = name
        self.model = model

    def score(self, items: list[PointItem], progress: Progress | None = None) -> list[PointResult | JudgeFailure]:
        raise NotImplementedError(f"judge '{self.name}' cannot score single texts (it is a {', '.join(self.kinds)} judge)")

    def compare(self, items: list[PairItem], progress: Progress | None = None) -> list[PairResult | JudgeFailure]:
        raise NotImplementedError(f"judge '{self.name}' cannot compare pairs (it is a {', '.join(self.kinds)} judge)")

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What decides this judge's verdicts (model, prompt or rubric fingerprint): for lineage."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r})"
