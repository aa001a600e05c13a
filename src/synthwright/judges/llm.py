"""Running a judge's requests through the LLM engine (cache, retries, accounting live there)."""

from __future__ import annotations

from synthwright.core.step import StepContext
from synthwright.judges.base import Progress
from synthwright.llm.records import LLMRequest, LLMResponse
from synthwright.llm.usage import UsageTotals


def _prefix_key(request: LLMRequest) -> str:
    return "\x00".join(m.content for m in request.messages) if request.messages else request.prompt or ""


def run_requests(
    context: StepContext, model: str, step_name: str, requests: list[LLMRequest], progress: Progress | None, usage: UsageTotals
) -> list[LLMResponse]:
    """Answers in the order of `requests`.

    They are sent sorted by text: llama.cpp keeps one evaluated sequence and reuses its
    longest common prefix, so neighbours that share a system line, instruction and context
    only pay for what differs. HTTP backends do not care about the order.
    """
    order = sorted(range(len(requests)), key=lambda i: _prefix_key(requests[i]))
    answers: list[LLMResponse | None] = [None] * len(requests)

    def on_result(position: int, _request: LLMRequest, response: LLMResponse) -> None:
        answers[order[position]] = response
        if progress is not None:
            progress.advance(response)

    if progress is not None:
        progress.start(len(requests))
    try:
        totals = context.engine(model).run((requests[i] for i in order), on_result, step=step_name, owner=context.owner(step_name))
    finally:
        if progress is not None:
            progress.finish()
    usage.absorb(totals)
    return answers  # type: ignore[return-value]  # the engine answers every request


def choice_failure(response: LLMResponse) -> str | None:
    """Why a choice answer is unusable, or None. A server without logprobs answers in text;
    text that starts with none of the choices leaves every probability at zero."""
    if not response.ok:
        return response.error or "unknown error"
    if not response.choice_probs or sum(response.choice_probs.values()) <= 0:
        return f"answer_not_a_choice: {response.text[:40]!r}"
    return None
