"""Pointwise rubric judge: each criterion scored 1-5 by an LLM.

Two ways to ask, chosen by `scoring`:
- "probs" (default): one single-token request per criterion; the score is the
  probability-weighted expectation over the digits 1-5 (or 1 + 4 P(Yes) for a yes/no
  criterion), not the argmax digit. A 1.5B model that hesitates between 3 and 5 says 4, not
  "3"; ties and near-ties stop being coin flips. A reason is an optional extra generation.
- "json": one structured answer per row (reason first, then the scores), for backends that
  return no probabilities. The score is the integer the model wrote.
"""

from __future__ import annotations

from typing import Any, Literal

from synthwright.core.step import StepContext
from synthwright.judges.base import CriterionScore, Judge, JudgeFailure, PointItem, PointResult, Progress, short_model_name
from synthwright.judges.llm import choice_failure, run_requests
from synthwright.judges.prompts import (
    BINARY_CHOICES, criterion_request, reason_request, rubric_json_request, rubric_schema,
)
from synthwright.judges.rubric import DEFAULT_RUBRIC, SCALE, Criterion, Rubric
from synthwright.llm.records import LLMRequest, LLMResponse
from synthwright.llm.usage import UsageTotals

Scoring = Literal["probs", "json"]


def expected_score(probs: dict[str, float], binary: bool = False) -> tuple[float, float]:
    """(probability-weighted score, argmax score) on the rubric scale."""
    total = sum(probs.values())
    if binary:
        p_yes = probs.get(BINARY_CHOICES[0], 0.0) / total
        low, high = SCALE
        return low + (high - low) * p_yes, float(high if p_yes >= 0.5 else low)
    expected = sum(int(choice) * p for choice, p in probs.items()) / total
    return expected, float(int(max(probs, key=probs.get)))


class RubricJudge(Judge):
    kinds = ("pointwise",)

    def __init__(
        self,
        model: str,
        rubric: Rubric = DEFAULT_RUBRIC,
        *,
        name: str | None = None,
        scoring: Scoring = "probs",
        reasons: bool | None = None,
        max_chars: int | None = None,
        context: StepContext | None = None,
        step_name: str = "judge",
    ):
        super().__init__(name or short_model_name(model), model)
        if scoring not in ("probs", "json"):
            raise ValueError(f"scoring must be 'probs' or 'json', not {scoring!r}")
        self.rubric = rubric
        self.scoring = scoring
        # The JSON answer carries its reason for free; on the probability path it costs a
        # whole extra generation per row, so it is off unless asked for.
        self.reasons = (scoring == "json") if reasons is None else reasons
        self.max_chars = max_chars
        self.context = context or StepContext()
        self.step_name = step_name
        self.usage = UsageTotals()  # running counters over every call of this judge

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "pointwise", "model": self.model, "rubric": self.rubric.name, "rubric_hash": self.rubric.fingerprint,
            "scoring": self.scoring, "reasons": self.reasons, "max_chars": self.max_chars,
        }

    def score(self, items: list[PointItem], progress: Progress | None = None) -> list[PointResult | JudgeFailure]:
        plans = [self._plan(item) for item in items]
        requests = [request for plan in plans for _, request in plan]
        responses = iter(run_requests(self.context, self.model, self.step_name, requests, progress, self.usage))
        results = []
        for plan in plans:
            answered = [(what, next(responses)) for what, _ in plan]
            results.append(self._result(answered))
        return results

    def _plan(self, item: PointItem) -> list[tuple[Criterion | str, LLMRequest]]:
        """The requests one item needs, each tagged with what it answers."""
        criteria = self.rubric.usable(item.context is not None)
        if not criteria:
            return []
        if self.scoring == "json":
            return [("json", rubric_json_request(self.rubric, criteria, item.text, item.context, self.max_chars))]
        plan: list[tuple[Criterion | str, LLMRequest]] = [
            (c, criterion_request(self.rubric, c, item.text, item.context, self.max_chars)) for c in criteria
        ]
        if self.reasons:
            plan.append(("reason", reason_request(self.rubric, item.text, item.context, self.max_chars)))
        return plan

    def _result(self, answered: list[tuple[Criterion | str, LLMResponse]]) -> PointResult | JudgeFailure:
        if not answered:
            return JudgeFailure("no_usable_criteria: every criterion needs a context, and the row has none")
        scores: dict[str, CriterionScore] = {}
        reason = None
        for what, response in answered:
            if what == "reason":
                reason = response.text.strip() if response.ok else None  # a reason is optional: no failure
            elif what == "json":
                parsed = _parse_json_scores(response, self.rubric.usable(True))
                if isinstance(parsed, JudgeFailure):
                    return parsed
                scores, reason = parsed
            else:
                problem = choice_failure(response)
                if problem is not None:
                    return JudgeFailure(problem)
                score, argmax = expected_score(response.choice_probs, what.binary)
                scores[what.name] = CriterionScore(score, dict(response.choice_probs), argmax)
        overall = self.rubric.overall({name: c.score for name, c in scores.items()})
        return PointResult(overall, scores, reason)


def _parse_json_scores(response: LLMResponse, criteria: tuple[Criterion, ...]) -> tuple[dict[str, CriterionScore], str | None] | JudgeFailure:
    if not response.ok:
        return JudgeFailure(response.error or "unknown error")
    if response.parse_error or not isinstance(response.parsed, dict):
        return JudgeFailure(f"invalid_json: {response.parse_error or 'not an object'}")
    answer = response.parsed
    scores = {}
    for c in criteria:
        if c.name not in answer:
            continue  # a criterion that needed a context the row lacks
        value = answer[c.name]
        if c.binary and isinstance(value, bool):
            score = float(SCALE[1] if value else SCALE[0])
        elif not c.binary and isinstance(value, int) and not isinstance(value, bool) and SCALE[0] <= value <= SCALE[1]:
            score = float(value)
        else:
            return JudgeFailure(f"invalid_json: {c.name}={value!r} is not a {'boolean' if c.binary else 'score from 1 to 5'}")
        scores[c.name] = CriterionScore(score, None, score)
    if not scores:
        return JudgeFailure("invalid_json: no criterion scores in the answer")
    reason = answer.get("reason")
    return scores, reason.strip() if isinstance(reason, str) else None


__all__ = ["RubricJudge", "expected_score", "rubric_schema"]
