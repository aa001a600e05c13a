"""Provider-neutral request and response records.

A request is everything that decides a model's answer and nothing else: no URL, no key,
no timeout. That makes `cache_key` safe to persist and share, and makes the same request
mean the same thing to every backend.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "user", "assistant"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Record):
    role: Role
    content: str


class SamplingParams(_Record):
    """Every sampling knob a backend may honour. None means "the backend's default"."""

    temperature: float = Field(0.7, ge=0.0, le=5.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    stop: tuple[str, ...] = ()
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repeat_penalty: float | None = None
    seed: int | None = None


class LLMRequest(_Record):
    """One model call: chat `messages` or a raw `prompt` (exactly one), plus how to sample.

    `sample_index` makes N samples of one prompt N distinct requests (and N cache entries).
    `top_logprobs` asks for the k most likely tokens at each generated position.
    `choices` asks for the next-token probability of each choice instead of free text
    (what judges need); the response carries them in `choice_probs`.
    `continuation` asks how likely the model finds this given reply, instead of generating
    one: the response carries its summed log-probability in `continuation_logprob` (query
    likelihood, as in UPR: log P(query | document)).
    """

    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    params: SamplingParams = SamplingParams()
    sample_index: int = Field(0, ge=0)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    json_schema: dict[str, Any] | None = None
    choices: tuple[str, ...] | None = None
    continuation: str | None = None

    @model_validator(mode="after")
    def _exactly_one_input(self) -> "LLMRequest":
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of `messages` (chat) or `prompt` (raw completion)")
        if self.choices is not None and len(self.choices) < 2:
            raise ValueError("`choices` needs at least two options")
        if self.continuation is not None:
            if not self.continuation:
                raise ValueError("`continuation` needs some text to score")
            if self.choices is not None or self.json_schema is not None or self.top_logprobs:
                raise ValueError("`continuation` scores given text: it cannot go with `choices`, `json_schema` or `top_logprobs`")
        return self

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def canonical_json(self) -> str:
        """Sorted-key JSON of every field: the request's identity. A field added later is left
        out while unset, so every request written before it keeps its cache key."""
        unset_later = {"continuation"} if self.continuation is None else set()
        return json.dumps(self.model_dump(mode="json", exclude=unset_later), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def cache_key(self, model_identity: str) -> str:
        """Hash of (model identity, request). Transport details and secrets never enter it."""
        payload = model_identity + "\n" + self.canonical_json()
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Usage(_Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class TokenLogprob(_Record):
    token: str
    logprob: float
    top: dict[str, float] = {}


class LLMResponse(_Record):
    """What came back. `error` is set (and `text` empty) when the request finally failed."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    text: str = ""
    parsed: Any = None
    parse_error: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    choice_probs: dict[str, float] | None = None
    continuation_logprob: float | None = None  # sum over the continuation's tokens
    continuation_tokens: int | None = None
    usage: Usage = Usage()
    finish_reason: str | None = None
    error: str | None = None
    attempts: int = 1
    latency_s: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_cache_json(self) -> str:
        """What the cache stores: the answer, without per-call facts (latency, cache flag)."""
        return json.dumps(
            self.model_dump(mode="json", exclude={"latency_s", "cached", "attempts"}),
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_cache_json(cls, raw: str) -> "LLMResponse":
        return cls.model_validate({**json.loads(raw), "cached": True, "attempts": 0})


def parse_json_answer(text: str) -> tuple[Any, str | None]:
    """Parse a JSON answer, tolerating a surrounding ``` fence that small models add."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    try:
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"answer is not valid JSON ({exc.msg} at char {exc.pos})"
