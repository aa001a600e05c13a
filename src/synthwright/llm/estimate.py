"""A dry run: what a list of requests would cost, without sending any."""

from __future__ import annotations

from dataclasses import dataclass

from synthwright.llm.backends.base import Backend
from synthwright.llm.records import LLMRequest
from synthwright.llm.usage import Price


@dataclass
class DryRunEstimate:
    requests: int
    cached: int  # already answered in the request cache: free
    prompt_tokens: int
    max_completion_tokens: int
    cost: float | None  # at most this many dollars (None without a price)
    examples: list[str]  # the first requests, as the model sees them
    render_failures: int = 0  # rows no request could be made for


def estimate(requests: list[LLMRequest], backend: Backend, cache=None, price: Price | None = None,
             examples: int = 2) -> DryRunEstimate:
    """Tokens by the backend's own count; completions at their max_tokens, so cost is an upper bound."""
    identity = backend.identity
    cached = sum(1 for r in requests if cache is not None and cache.get(r.cache_key(identity)) is not None)
    prompt_tokens = sum(backend.count_tokens(backend.render_for_count(r)) for r in requests)
    max_completion = sum(r.params.max_tokens for r in requests)
    return DryRunEstimate(
        requests=len(requests), cached=cached, prompt_tokens=prompt_tokens, max_completion_tokens=max_completion,
        cost=price.cost(prompt_tokens, max_completion) if price else None,
        examples=[backend.render_for_count(r) for r in requests[:examples]],
    )
