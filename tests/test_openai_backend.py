"""The OpenAI-compatible backend against a real server: llama-cpp-python's own, serving
smollm2-135m as "smollm" on 127.0.0.1 (the `llama_server` fixture).

llama-cpp-python's server (0.3.36) accepts `response_format` only on /v1/chat/completions,
only as {"type": "json_object", "schema": {...}} (or {"type": "text"}); it rejects the
OpenAI form {"type": "json_schema", ...} with HTTP 500 (a validation error), and
/v1/completions has no `response_format` field at all (it is silently ignored there).
"""

from __future__ import annotations

import json
import math

import pytest

from synthwright.llm.concurrency import RetryPolicy
from synthwright.llm.engine import EngineOptions, LLMEngine
from synthwright.llm.records import LLMRequest, LLMResponse, Message, SamplingParams
from synthwright.llm.spec import load_backend
from tests.conftest import REPO, run_cli

PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def chat(text: str, **fields) -> LLMRequest:
    return LLMRequest(messages=(Message(role="user", content=text),), **fields)


def ask(backend, requests, **options) -> list[LLMResponse]:
    requests = list(requests)
    answers: dict[int, LLMResponse] = {}
    engine = LLMEngine(backend, None, EngineOptions(**options))
    engine.run(requests, lambda i, req, resp: answers.__setitem__(i, resp))
    engine.close()
    assert sorted(answers) == list(range(len(requests)))
    return [answers[i] for i in range(len(requests))]


@pytest.fixture
def server(llama_server):
    return load_backend(f"openai:smollm@{llama_server}")


def test_chat_completion_returns_text_and_usage(server):
    assert server.identity == "openai:smollm"  # the URL never enters cache keys
    [response] = ask(server, [chat("Write one sentence about cats.", params=SamplingParams(seed=7, max_tokens=12))])
    assert response.ok, response.error
    assert response.text.strip()
    assert response.usage.prompt_tokens > 0
    assert 0 < response.usage.completion_tokens <= 12
    assert response.finish_reason in ("stop", "length")
    assert response.logprobs is None and response.choice_probs is None


def test_raw_completion_endpoint(server):
    request = LLMRequest(prompt="The capital of France is", params=SamplingParams(temperature=0.0, max_tokens=4))
    [response] = ask(server, [request])
    assert response.ok, response.error
    assert "Paris" in response.text
    # Sent as is, without the chat template (which alone is ~30 tokens for this model).
    assert 0 < response.usage.prompt_tokens < 10
    assert response.usage.completion_tokens == 4 and response.finish_reason == "length"


@pytest.mark.parametrize("kind", ["chat", "raw"])
def test_top_logprobs(server, kind):
    params = SamplingParams(seed=7, max_tokens=6)
    if kind == "chat":
        request = chat("Write one sentence about cats.", params=params, top_logprobs=3)
    else:
        request = LLMRequest(prompt="The capital of France is", params=params, top_logprobs=3)
    [response] = ask(server, [request])
    assert response.ok, response.error
    entries = response.logprobs
    assert entries and len(entries) == response.usage.completion_tokens
    assert "".join(e.token for e in entries) == response.text
    for entry in entries:
        assert entry.logprob <= 0.0
        if kind == "chat":
            assert len(entry.top) == 3
        else:
            # The legacy completions format lists up to k+1: the top k plus the sampled token.
            assert len(entry.top) == 3 or (len(entry.top) == 4 and entry.token in entry.top)
        assert all(v <= 0.0 for v in entry.top.values())
        if entry.token in entry.top:
            assert entry.top[entry.token] == pytest.approx(entry.logprob, abs=1e-6)


def test_choice_probabilities_sum_to_one_and_match_the_in_process_model(server):
    request = chat("Is the sky blue? Answer Yes or No.", choices=("Yes", "No"))
    [response] = ask(server, [request])
    assert response.ok, response.error
    probs = response.choice_probs
    assert list(probs) == ["Yes", "No"]
    assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-9)
    assert response.text.strip() == max(probs, key=probs.get)  # greedy, one token
    # Same model, same chat template: the in-process backend must agree.
    [local] = ask(load_backend("llamacpp:smollm2-135m"), [request])
    assert local.choice_probs["Yes"] == pytest.approx(probs["Yes"], abs=1e-3)


def test_choice_probabilities_when_no_choice_is_likely(server):
    # The model's next token is ' Paris' by far; neither 'Yes' nor 'No' is in its top 20.
    request = LLMRequest(prompt="The capital of France is", choices=("Yes", "No"))
    [response] = ask(server, [request])
    if response.ok:
        assert math.isclose(sum(response.choice_probs.values()), 1.0, abs_tol=1e-9), response.choice_probs
    else:
        assert "Yes" in response.error or "choice" in response.error


def test_json_object_mode_constrains_chat_answers(llama_server):
    backend = load_backend(f"openai:smollm@{llama_server}", json_mode="json_object")
    requests = [
        chat("Give a person as JSON with a name and an age.", json_schema=PERSON_SCHEMA,
             params=SamplingParams(seed=seed, max_tokens=64))
        for seed in (1, 2)
    ]
    for response in ask(backend, requests):
        assert response.ok, response.error
        assert response.parse_error is None, response.text
        assert isinstance(response.parsed, dict) and set(PERSON_SCHEMA["required"]) <= set(response.parsed)
        assert isinstance(response.parsed["name"], str) and isinstance(response.parsed["age"], int)


def test_default_json_schema_mode_switches_to_what_llama_cpp_python_server_accepts(server):
    """OpenAI's `json_schema` response_format is refused by llama-cpp-python's server (as an
    HTTP 500 naming `json_object`); the backend switches to `json_object` once and the
    answer is constrained, instead of every row failing after six retries."""
    request = chat("Give a person as JSON with a name and an age.", json_schema=PERSON_SCHEMA, params=SamplingParams(max_tokens=64))
    [response] = ask(server, [request], retry=RetryPolicy(max_attempts=2, base_delay_s=0.01))
    assert response.ok, response.error
    assert response.attempts == 2
    assert server.json_mode == "json_object"
    assert response.parse_error is None and set(PERSON_SCHEMA["required"]) <= set(response.parsed)


@pytest.mark.parametrize("json_mode", ["json_schema", "json_object"])
def test_json_schema_on_raw_completions_is_a_clear_error(llama_server, json_mode):
    """/completions has no response_format: rather than an unconstrained answer, say so."""
    backend = load_backend(f"openai:smollm@{llama_server}", json_mode=json_mode)
    request = LLMRequest(
        prompt="A person as JSON with name and age:", json_schema=PERSON_SCHEMA,
        params=SamplingParams(temperature=0.0, max_tokens=40),
    )
    [response] = ask(backend, [request])
    assert not response.ok and response.attempts == 1
    assert "JSON schema needs a chat request" in response.error


def test_cli_generate_through_the_server_then_all_cache_hits(llama_server, tmp_path):
    out = tmp_path / "questions.jsonl"
    args = ["generate", "-m", f"openai:smollm@{llama_server}", "-t", str(REPO / "examples/question.j2"),
            "-i", str(REPO / "examples/topics.jsonl"), "-o", str(out), "--max-tokens", "16"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8
    assert all(row["generation"].strip() for row in rows)
    assert "8 requests sent, 0 cache hits, 0 failed" in first.stdout

    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert "0 requests sent, 8 cache hits, 0 failed" in second.stdout
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows


def test_a_continuation_to_score_is_refused_with_the_fix_not_sent(server):
    # The chat API gives log-probabilities of what the server writes, never of text it is given.
    [response] = ask(server, [chat("Passage: cats purr.\n\nWrite a claim.", continuation="Cats purr.")])
    assert not response.ok and "llamacpp" in response.error and response.attempts == 1
