"""The LLM layer: provider-neutral records, backends, request cache, concurrency, usage.

Everything above this layer (recipes, judges, pipelines) talks to models through
`LLMEngine` with `LLMRequest` records; retries, caching, rate limits and accounting live
here once, for everyone.
"""

from synthwright.llm.records import LLMRequest, LLMResponse, Message, SamplingParams, TokenLogprob, Usage

__all__ = ["LLMRequest", "LLMResponse", "Message", "SamplingParams", "TokenLogprob", "Usage"]
