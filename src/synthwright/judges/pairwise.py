"""Pairwise LLM judge: (context, A, B) asked in both orders.

Small judges prefer a position: Qwen-1.5B picked the first document 83% of the time on
short SciFact pairs and the second 71% on longer ones (MODELS.md). Asking A-first and
B-first and averaging P(A wins) over the two cancels a constant bias, and keeping each
order's probability makes the bias itself measurable: the rate at which "first" wins, and
how often the two orders agree.

P(first wins) is read from the next-token probabilities of "1" and "2" where the backend
gives them; otherwise from the answer text (probability 1 for the digit it starts with).
"""

from __future__ import annotations

from typing import Any

from synthwright.core.step import StepContext
from synthwright.judges.base import Judge, JudgeFailure, PairItem, PairResult, Progress, short_model_name
from synthwright.judges.llm import choice_failure, run_requests
from synthwright.judges.prompts import PairwisePrompt
from synthwright.llm.usage import UsageTotals


class PairwiseJudge(Judge):
    kinds = ("pairwise",)

    def __init__(
        self,
        model: str,
        prompt: PairwisePrompt = PairwisePrompt(),
        *,
        name: str | None = None,
        max_chars: int | None = None,
        context: StepContext | None = None,
        step_name: str = "judge",
    ):
        super().__init__(name or short_model_name(model), model)
        self.prompt = prompt
        self.max_chars = max_chars
        self.context = context or StepContext()
        self.step_name = step_name
        self.usage = UsageTotals()  # running counters over every call of this judge

    def describe(self) -> dict[str, Any]:
        return {"kind": "pairwise", "model": self.model, "prompt": self.prompt.__dict__, "max_chars": self.max_chars}

    def compare(self, items: list[PairItem], progress: Progress | None = None) -> list[PairResult | JudgeFailure]:
        requests = []
        for item in items:
            requests.append(self.prompt.request(item.context, item.a, item.b, self.max_chars))  # A first
            requests.append(self.prompt.request(item.context, item.b, item.a, self.max_chars))  # B first
        responses = run_requests(self.context, self.model, self.step_name, requests, progress, self.usage)
        results: list[PairResult | JudgeFailure] = []
        for ab, ba in zip(responses[0::2], responses[1::2]):
            problem = choice_failure(ab) or choice_failure(ba)
            if problem is not None:
                results.append(JudgeFailure(problem))
                continue
            results.append(PairResult(p_first_ab=ab.choice_probs["1"], p_first_ba=ba.choice_probs["1"]))
        return results
