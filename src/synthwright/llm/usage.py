"""Usage accounting: requests, tokens, cache hits, failures and cost, per model and step."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

from synthwright.errors import UserError
from synthwright.llm.records import LLMResponse


@dataclass(frozen=True)
class Price:
    """US dollars per million prompt and completion tokens."""

    input_per_mtok: float
    output_per_mtok: float

    @classmethod
    def parse(cls, text: str) -> "Price":
        """'0.15/0.60' -> Price(0.15, 0.60)."""
        try:
            prompt, _, completion = text.partition("/")
            return cls(float(prompt), float(completion or prompt))
        except ValueError:
            raise UserError(f"Cannot read the price '{text}'.", "Write it as INPUT/OUTPUT dollars per million tokens, e.g. 0.15/0.60.") from None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


_GAVE_UP = re.compile(r"^gave up after \d+ attempts: ")


def failure_kind(error: str) -> str:
    """The kind of a failure, for counters: "gave up after 6 attempts: HTTP 500: ..." -> "HTTP 500"."""
    return _GAVE_UP.sub("", error).split(":", 1)[0][:80]


@dataclass
class UsageTotals:
    """Counters for one engine run. `sent` counts requests that reached the model."""

    sent: int = 0
    cache_hits: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    failure_reasons: dict[str, int] = field(default_factory=dict)

    def absorb(self, other: "UsageTotals") -> None:
        """Add another run's counters to these."""
        for counter in fields(self):
            if counter.name == "failure_reasons":
                for reason, count in other.failure_reasons.items():
                    self.failure_reasons[reason] = self.failure_reasons.get(reason, 0) + count
            else:
                setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))

    def add(self, response: LLMResponse, cost: float | None) -> None:
        if response.cached:
            self.cache_hits += 1
        else:
            self.sent += 1
            self.retries += max(0, response.attempts - 1)
            self.prompt_tokens += response.usage.prompt_tokens
            self.completion_tokens += response.usage.completion_tokens
            self.cost += cost or 0.0
        if response.ok:
            self.succeeded += 1
        else:
            self.failed += 1
            reason = failure_kind(response.error or "unknown")
            self.failure_reasons[reason] = self.failure_reasons.get(reason, 0) + 1
