"""Any OpenAI-compatible server (OpenAI, vLLM, llama.cpp server, Ollama, SGLang, TGI...).

Spec: `openai:MODEL` (base URL from the `base_url` option, else $OPENAI_BASE_URL, else
api.openai.com) or `openai:MODEL@BASE_URL`. The key comes from an environment variable ($OPENAI_API_KEY by
default, `api_key_env=` to change it); servers on this machine may go without one.

aiohttp is used directly, with one shared connection pool: the hot path is a JSON dump,
one POST and a JSON load, nothing more.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field

from synthwright.errors import UserError
from synthwright.llm.backends.base import Backend, BackendOptions, PermanentError, RateLimited, TransientError, register_backend
from synthwright.llm.records import LLMRequest, LLMResponse, TokenLogprob, Usage, parse_json_answer

DEFAULT_BASE_URL = "https://api.openai.com/v1"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# How many alternatives to ask for when computing choice probabilities.
CHOICE_TOP_LOGPROBS = 20


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _refuse_credentials_in(url: str, api_key_env: str) -> None:
    """A key written into the URL (http://user:key@host) would fail every request, and end up in
    logs and run manifests: refuse it, without repeating it."""
    parsed = urlparse(url)
    if parsed.username or parsed.password:
        safe = parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else "")).geturl()
        raise UserError(f"The base URL for {safe} has a user name or key in it.",
                        f"Leave it out of the URL and set the environment variable {api_key_env} to the key.")


class OpenAIOptions(BackendOptions):
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable that holds the API key")
    base_url: str | None = Field(None, description="Server URL, e.g. http://127.0.0.1:8080/v1 (or write openai:MODEL@URL)")
    json_mode: Literal["json_schema", "json_object"] = Field("json_schema", description="How a JSON schema is sent: OpenAI's json_schema, or json_object (llama.cpp server)")


@register_backend("openai")
class OpenAICompatBackend(Backend):
    """Any OpenAI-compatible server: openai:MODEL or openai:MODEL@BASE_URL."""

    Options = OpenAIOptions
    default_concurrency = 64

    def __init__(self, target: str, api_key_env: str = "OPENAI_API_KEY", json_mode: str = "json_schema",
                 base_url: str | None = None, **options: Any):
        super().__init__(target, **options)
        model, _, spec_url = target.partition("@")
        if spec_url and base_url and spec_url.rstrip("/") != base_url.rstrip("/"):
            raise UserError(f"The model '{target}' names two base URLs: {spec_url} and base_url {base_url}.",
                            "Give the URL once: in the spec (MODEL@URL) or as base_url.")
        self.model = model
        self.base_url = (spec_url or base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if urlparse(self.base_url).scheme not in ("http", "https"):
            raise UserError(f"The base URL '{self.base_url}' is not an http(s) URL.", "Write it like openai:MODEL@http://127.0.0.1:8080/v1.")
        _refuse_credentials_in(self.base_url, api_key_env)
        key = os.environ.get(api_key_env)
        if not key and not _is_loopback(self.base_url):
            raise UserError(
                f"No API key for {self.base_url}.", f"Set the environment variable {api_key_env} to your key."
            )
        self._headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key or 'none'}"}
        self.json_mode = json_mode
        self._session = None
        self._session_loop = None

    @property
    def identity(self) -> str:
        return f"openai:{self.model}"

    def _client(self):
        import aiohttp

        # One pool for the backend's life; a session belongs to the loop it was made on, so a
        # caller on another loop (its own asyncio.run) gets its own.
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            # The engine bounds concurrency; the pool must not add a second, lower limit.
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
            self._session_loop = loop
        return self._session

    # -- request building ---------------------------------------------------------------
    def _body(self, request: LLMRequest) -> tuple[str, dict[str, Any]]:
        p = request.params
        body: dict[str, Any] = {"model": self.model, "temperature": p.temperature, "max_tokens": p.max_tokens}
        optional = {
            "top_p": p.top_p, "seed": p.seed, "presence_penalty": p.presence_penalty,
            "frequency_penalty": p.frequency_penalty, "top_k": p.top_k, "min_p": p.min_p,
            "repeat_penalty": p.repeat_penalty,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if p.stop:
            body["stop"] = list(p.stop)
        top = CHOICE_TOP_LOGPROBS if request.choices else request.top_logprobs
        if request.choices:
            body["max_tokens"], body["temperature"] = 1, 0.0
        if request.is_chat:
            body["messages"] = [m.model_dump() for m in request.messages]
            if top:
                body["logprobs"], body["top_logprobs"] = True, top
            if request.json_schema is not None:
                body["response_format"] = self._response_format(request.json_schema)
            return "/chat/completions", body
        if request.json_schema is not None:
            # The completions endpoint has no response_format: the schema would be ignored.
            raise PermanentError("a JSON schema needs a chat request on an OpenAI-compatible server (use messages, not a raw prompt)")
        body["prompt"] = request.prompt
        if top:
            body["logprobs"] = top
        return "/completions", body

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.json_mode == "json_object":  # llama.cpp server style
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}

    # -- sending ------------------------------------------------------------------------
    async def complete(self, request: LLMRequest, timeout_s: float) -> LLMResponse:
        import aiohttp

        path, body = self._body(request)
        started = time.perf_counter()
        try:
            async with self._client().post(
                self.base_url + path, data=json.dumps(body), timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except asyncio.TimeoutError:
            raise TransientError(f"no answer within {timeout_s:g}s") from None
        except aiohttp.ClientPayloadError as exc:
            raise TransientError(f"truncated response body ({exc.__class__.__name__})") from None
        except aiohttp.ClientError as exc:
            raise TransientError(f"connection failed: {exc.__class__.__name__}: {exc}") from None
        if status != 200:
            self._learn_json_mode(request, raw)
            _raise_for_status(status, headers.get("Retry-After"), raw)
        try:
            payload = json.loads(raw)
            choice = payload["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise TransientError(f"malformed response body: {raw[:80]!r}") from None
        return _to_response(request, payload, choice, time.perf_counter() - started)

    def _learn_json_mode(self, request: LLMRequest, raw: bytes) -> None:
        """llama-cpp-python's server rejects OpenAI's `json_schema` response format but takes
        `json_object` with a schema: switch once and retry instead of failing every row."""
        if request.json_schema is not None and self.json_mode == "json_schema" and b"json_object" in raw:
            self.json_mode = "json_object"
            raise TransientError("server wants response_format json_object; retrying in that form", retry_after=0.0)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed and self._session_loop is asyncio.get_running_loop():
            await self._session.close()


def _raise_for_status(status: int, retry_after: str | None, raw: bytes) -> None:
    detail = raw[:200].decode("utf-8", "replace").strip()
    if status == 429:
        raise RateLimited(f"HTTP 429 rate limited: {detail}", retry_after=_parse_retry_after(retry_after))
    if status in (408, 409) or status >= 500:
        raise TransientError(f"HTTP {status}: {detail}", retry_after=_parse_retry_after(retry_after))
    if status in (401, 403):
        raise PermanentError(f"HTTP {status}: authentication failed (check the API key variable): {detail}")
    raise PermanentError(f"HTTP {status}: {detail}")


def _parse_retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _to_response(request: LLMRequest, payload: dict, choice: dict, latency: float) -> LLMResponse:
    text = choice["message"].get("content") or "" if "message" in choice else choice.get("text") or ""
    usage = payload.get("usage") or {}
    logprobs = _read_logprobs(choice.get("logprobs"))
    fields: dict[str, Any] = {
        "text": text,
        "usage": Usage(prompt_tokens=usage.get("prompt_tokens") or 0, completion_tokens=usage.get("completion_tokens") or 0),
        "finish_reason": choice.get("finish_reason"),
        "latency_s": latency,
        "logprobs": logprobs if request.top_logprobs else None,
    }
    if request.choices:
        probs = choice_probabilities(request.choices, logprobs, text)
        if probs is None:
            raise PermanentError(f"none of the choices {list(request.choices)} is among the top logprobs (answer: {text[:40]!r})")
        fields["choice_probs"] = probs
    if request.json_schema is not None:
        fields["parsed"], fields["parse_error"] = parse_json_answer(text)
    return LLMResponse(**fields)


def _read_logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    if not raw:
        return None
    if "content" in raw:  # chat format
        return tuple(
            TokenLogprob(
                token=item["token"], logprob=item["logprob"],
                top={alt["token"]: alt["logprob"] for alt in item.get("top_logprobs") or ()},
            )
            for item in raw["content"] or ()
        )
    tokens, values, tops = raw.get("tokens") or [], raw.get("token_logprobs") or [], raw.get("top_logprobs") or []
    return tuple(
        TokenLogprob(token=t, logprob=v if v is not None else 0.0, top=dict(tops[i] or {}) if i < len(tops) else {})
        for i, (t, v) in enumerate(zip(tokens, values))
    )


def choice_probabilities(
    choices: tuple[str, ...], logprobs: tuple[TokenLogprob, ...] | None, text: str
) -> dict[str, float] | None:
    """P(choice) from the first position's top logprobs, renormalised over the choices.

    Tokens are compared after stripping spaces, so " Yes" counts for "Yes". When the
    server gave no logprobs, the answer text decides (probability 1 for the choice it
    starts with).
    """
    mass = dict.fromkeys(choices, 0.0)
    if logprobs:
        first = logprobs[0]
        alternatives = first.top or {first.token: first.logprob}
        for token, logprob in alternatives.items():
            key = token.strip()
            if key in mass:
                mass[key] += math.exp(logprob)
    total = sum(mass.values())
    if total > 0:
        return {c: v / total for c, v in mass.items()}
    answer = text.strip()
    matched = [c for c in choices if answer.startswith(c)]
    if not matched:
        return None  # the model answered something else: no probability to report
    return {c: 1.0 if c == matched[0] else 0.0 for c in choices}
