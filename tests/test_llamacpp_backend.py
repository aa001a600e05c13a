"""The in-process llama.cpp backend on a real model, through `LLMEngine`.

Everything here runs on smollm2-135m (fast) except the one `slow` test on the 1.5B teacher.
Generations are kept to a few tokens: the point is the plumbing, not the prose.
"""

from __future__ import annotations

import json
import math

import pytest

from synthwright.errors import UserError
from synthwright.llm.cache import RequestCache
from synthwright.llm.concurrency import RetryPolicy
from synthwright.llm.engine import EngineOptions, LLMEngine
from synthwright.llm.records import LLMRequest, LLMResponse, Message, SamplingParams
from synthwright.llm.spec import load_backend

TINY = "llamacpp:smollm2-135m"

PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def chat(*turns: str, system: str | None = None, **fields) -> LLMRequest:
    messages = ([Message(role="system", content=system)] if system else []) + [
        Message(role="user", content=t) for t in turns
    ]
    return LLMRequest(messages=tuple(messages), **fields)


def ask(backend, requests, cache: RequestCache | None = None, **options) -> tuple[list[LLMResponse], object]:
    """Run `requests` through a fresh engine; responses in request order, plus usage totals."""
    requests = list(requests)
    answers: dict[int, LLMResponse] = {}
    engine = LLMEngine(backend, cache, EngineOptions(**options))

    def on_result(index, request, response):
        assert index not in answers, "a request was answered twice"
        answers[index] = response

    usage = engine.run(requests, on_result)
    assert sorted(answers) == list(range(len(requests))), "every request is answered exactly once"
    return [answers[i] for i in range(len(requests))], usage


@pytest.fixture(scope="module")
def smollm():
    """One loaded tiny model shared by the module (loading it again costs time, not correctness)."""
    return load_backend(TINY)


@pytest.fixture
def cache(tmp_path):
    c = RequestCache(tmp_path / "requests.sqlite")
    yield c
    c.close()


# -- generation ---------------------------------------------------------------------------
def test_chat_generation_returns_text_usage_and_finish_reason(smollm, cache):
    request = chat("Write one sentence about cats.", params=SamplingParams(seed=7, max_tokens=12))
    [response], usage = ask(smollm, [request], cache)

    assert response.ok, response.error
    assert response.text.strip()
    assert not response.cached and response.attempts == 1
    assert response.finish_reason in ("stop", "length")
    prompt_tokens, _ = smollm.tokens_for(request)
    assert response.usage.prompt_tokens == len(prompt_tokens) > 0
    assert 0 < response.usage.completion_tokens <= 12
    if response.finish_reason == "length":
        assert response.usage.completion_tokens == 12
    assert (usage.sent, usage.cache_hits, usage.completion_tokens) == (1, 0, response.usage.completion_tokens)
    assert cache.count() == 1

    # The same request again is answered from the cache, with the same text and usage.
    [again], usage = ask(smollm, [request], cache)
    assert again.cached and (usage.sent, usage.cache_hits) == (0, 1)
    assert (again.text, again.usage, again.finish_reason) == (response.text, response.usage, response.finish_reason)


def test_same_seed_same_text_and_sample_index_is_a_separate_cache_entry(smollm, cache):
    params = SamplingParams(seed=11, temperature=1.0, max_tokens=10)
    first = chat("Name a fruit and describe it.", params=params)
    [a], _ = ask(smollm, [first], cache)
    # Same seed and params, cache bypassed: the model itself must give the same text,
    # on the same loaded model and on a freshly loaded one.
    [b], _ = ask(smollm, [first], cache, read_cache=False, write_cache=False)
    [c], _ = ask(load_backend(TINY), [first], None)
    assert not b.cached and not c.cached
    assert a.text == b.text == c.text and a.text.strip()

    second = first.model_copy(update={"sample_index": 1})
    assert second.cache_key(smollm.identity) != first.cache_key(smollm.identity)
    [s], usage = ask(smollm, [second], cache)
    assert not s.cached and usage.sent == 1, "sample 1 must not be served sample 0's cached answer"
    assert cache.count() == 2

    [x, y], usage = ask(smollm, [first, second], cache)
    assert x.cached and y.cached and (usage.sent, usage.cache_hits) == (0, 2)
    assert (x.text, y.text) == (a.text, s.text)


def test_raw_prompt_completion(smollm):
    request = LLMRequest(prompt="The capital of France is", params=SamplingParams(temperature=0.0, max_tokens=4))
    [response], _ = ask(smollm, [request])
    assert response.ok, response.error
    assert "Paris" in response.text
    # The raw prompt is sent as is: no chat template around it.
    raw_tokens = smollm.llama().tokenize(b"The capital of France is", add_bos=True, special=True)
    assert response.usage.prompt_tokens == len(raw_tokens)
    chat_tokens, _ = smollm.tokens_for(chat("The capital of France is"))
    assert response.usage.prompt_tokens < len(chat_tokens)


# -- choice probabilities ----------------------------------------------------------------
def test_choice_probabilities_sum_to_one_and_text_is_the_argmax(smollm):
    yes_no = chat("Is the sky blue? Answer Yes or No.", choices=("Yes", "No"))
    abc = chat("Pick a letter: A, B or C.", choices=("A", "B", "C"))
    responses, _ = ask(smollm, [yes_no, abc])
    for request, response in zip((yes_no, abc), responses):
        assert response.ok, response.error
        probs = response.choice_probs
        assert list(probs) == list(request.choices)
        assert all(0.0 <= p <= 1.0 for p in probs.values())
        assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-9)
        assert response.text == max(probs, key=probs.get)
        assert response.finish_reason == "choice"
        assert response.usage.completion_tokens == 0 and response.usage.prompt_tokens > 0


def test_choice_probabilities_do_not_depend_on_earlier_requests():
    """llama.cpp keeps the last evaluated sequence and reuses any shared prefix; the answer
    must be the same as on a freshly loaded model, whatever was evaluated before."""
    system = "You are a careful judge of simple facts. Answer with Yes or No only. " * 6
    wet = chat("Is water wet?", system=system, choices=("Yes", "No"))
    cold = chat("Is fire cold?", system=system, choices=("Yes", "No"))  # shares the long system prefix
    unrelated = chat("Tell me about dogs.", params=SamplingParams(seed=3, max_tokens=6))

    fresh_wet = ask(load_backend(TINY), [wet])[0][0].choice_probs
    fresh_cold = ask(load_backend(TINY), [cold])[0][0].choice_probs

    backend = load_backend(TINY)
    answers, _ = ask(backend, [unrelated, cold, wet, cold, unrelated, wet, wet])
    assert all(a.ok for a in answers), [a.error for a in answers]
    seen = {"cold": [answers[1], answers[3]], "wet": [answers[2], answers[5], answers[6]]}
    for name, fresh in (("cold", fresh_cold), ("wet", fresh_wet)):
        for response in seen[name]:
            for choice in ("Yes", "No"):
                assert abs(response.choice_probs[choice] - fresh[choice]) <= 1e-6, (name, response.choice_probs, fresh)
    # Prefix reuse must not leak into generation either.
    assert answers[0].text == answers[4].text


def test_choices_after_a_likely_space_are_not_flattened(smollm):
    scale = ("1", "2", "3", "4", "5")
    prompt = "Review: The food was wonderful and the staff were lovely. On a scale of 1 to 5, I rate this restaurant a"
    # With the space already in the prompt, the next token is a digit: the model's real preference.
    [spaced, bare], _ = ask(smollm, [LLMRequest(prompt=prompt + " ", choices=scale), LLMRequest(prompt=prompt, choices=scale)])
    assert max(spaced.choice_probs.values()) - min(spaced.choice_probs.values()) > 0.2
    assert max(bare.choice_probs.values()) - min(bare.choice_probs.values()) > 0.1, bare.choice_probs
    assert bare.text == spaced.text


# -- constrained output and logprobs -----------------------------------------------------
def test_json_schema_output_parses_and_has_required_keys(smollm):
    request = chat(
        "Give a person as JSON with a name and an age.", json_schema=PERSON_SCHEMA,
        params=SamplingParams(seed=1, max_tokens=64),
    )
    [response], _ = ask(smollm, [request])
    assert response.ok, response.error
    assert response.parse_error is None, response.text
    assert response.parsed == json.loads(response.text)
    assert isinstance(response.parsed, dict)
    assert set(PERSON_SCHEMA["required"]) <= set(response.parsed)
    assert isinstance(response.parsed["name"], str) and isinstance(response.parsed["age"], int)


def test_top_logprobs(smollm):
    params = SamplingParams(seed=7, max_tokens=8)
    with_lp = chat("Write one sentence about cats.", params=params, top_logprobs=3)
    without = chat("Write one sentence about cats.", params=params)
    [response, plain], _ = ask(smollm, [with_lp, without])
    assert response.ok, response.error

    # Recording logprobs must not change what is sampled.
    assert response.text == plain.text
    assert plain.logprobs is None
    entries = response.logprobs
    assert entries and len(entries) == response.usage.completion_tokens
    assert "".join(e.token for e in entries) == response.text
    for entry in entries:
        assert entry.logprob <= 0.0
        assert len(entry.top) == 3
        values = list(entry.top.values())
        assert all(v <= 0.0 for v in values)
        assert values == sorted(values, reverse=True)
        assert sum(math.exp(v) for v in values) <= 1.0 + 1e-9
        assert entry.logprob <= values[0] + 1e-12
        if entry.token in entry.top:
            assert entry.top[entry.token] == pytest.approx(entry.logprob, abs=1e-9)
    # Something was actually sampled from the top alternatives most of the time.
    assert sum(e.token in e.top for e in entries) >= len(entries) // 2


def test_top_logprobs_follow_the_sampled_tokens(smollm):
    # seed 32 at temperature 1.2 samples ' wand', 'er' (which re-tokenises as ' wander').
    request = chat(
        "Write a short poem with unusual words.", top_logprobs=2,
        params=SamplingParams(seed=32, temperature=1.2, max_tokens=16),
    )
    [response], _ = ask(smollm, [request])
    assert response.ok, response.error
    llm = smollm.llama()
    # What llama.cpp evaluated after the prompt: every sampled token except the last one.
    sampled = llm.input_ids[response.usage.prompt_tokens:llm.n_tokens].tolist()
    pieces = [llm.detokenize([t]).decode("utf-8", "replace") for t in sampled]
    tokens = [e.token for e in response.logprobs]
    assert response.finish_reason == "length"
    assert len(tokens) == response.usage.completion_tokens
    assert tokens[: len(pieces)] == pieces


# -- failures -----------------------------------------------------------------------------
def test_prompt_longer_than_the_context_is_a_clear_error_not_a_crash():
    backend = load_backend(TINY, n_ctx=256)
    too_long = LLMRequest(prompt="word " * 400, params=SamplingParams(max_tokens=8))
    too_long_choice = LLMRequest(prompt="word " * 400, choices=("Yes", "No"))
    nearly_full = LLMRequest(prompt="word " * 240, params=SamplingParams(temperature=0.0, max_tokens=64))
    fine = LLMRequest(prompt="The capital of France is", params=SamplingParams(temperature=0.0, max_tokens=4))
    answers, usage = ask(backend, [too_long, too_long_choice, nearly_full, fine], retry=RetryPolicy(max_attempts=3))

    for failed in answers[:2]:
        assert not failed.ok and failed.text == ""
        assert "context holds 256" in failed.error and "n_ctx" in failed.error
        assert failed.attempts == 1, "a prompt that cannot fit is not worth retrying"
    assert usage.failed == 2 and usage.retries == 0

    # A prompt that fits but leaves little room generates up to the end of the context.
    assert answers[2].ok, answers[2].error
    assert answers[2].usage.prompt_tokens + answers[2].usage.completion_tokens <= 256
    # And the backend is still usable afterwards.
    assert answers[3].ok and "Paris" in answers[3].text


def test_missing_gguf_file_is_a_user_error():
    with pytest.raises(UserError, match="does not exist"):
        load_backend("llamacpp:/nonexistent.gguf")
    with pytest.raises(UserError, match="Unknown llama.cpp model"):
        load_backend("llamacpp:no-such-model")


# -- the real teacher -----------------------------------------------------------------------
@pytest.mark.slow
def test_teacher_model_json_and_obvious_yes():
    backend = load_backend("llamacpp:qwen2.5-coder-1.5b")
    people = [
        chat(
            "Invent a person. Reply with JSON with a name and an age.", json_schema=PERSON_SCHEMA,
            params=SamplingParams(seed=seed, temperature=0.7, max_tokens=48), sample_index=i,
        )
        for i, seed in enumerate((5, 6))
    ]
    paris = chat("Is Paris the capital of France? Answer Yes or No.", choices=("Yes", "No"))
    answers, _ = ask(backend, [*people, paris])

    for response in answers[:2]:
        assert response.ok, response.error
        assert response.parse_error is None, response.text
        assert isinstance(response.parsed, dict) and set(PERSON_SCHEMA["required"]) <= set(response.parsed)
    probs = answers[2].choice_probs
    assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-9)
    assert probs["Yes"] > 0.8 and answers[2].text == "Yes"


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="BUG (llamacpp._evaluate_reusing_prefix and llama-cpp-python's own prefix reuse in "
    "create_completion): on Q4_K_M models llama.cpp's CPU numerics depend on how a prompt is split "
    "into batches, so re-evaluating only a suffix changes the logits (here by up to ~0.5) and the "
    "choice probabilities by about 0.01; results depend on which requests ran before",
)
def test_teacher_choice_probabilities_do_not_depend_on_earlier_requests():
    system = "You are a careful rater of restaurant reviews. " * 8
    scale = ("1", "2", "3", "4", "5")

    def rate(review: str) -> LLMRequest:
        return chat(f"Rate how positive this review is from 1 to 5. Reply with the digit only.\nReview: {review}",
                    system=system, choices=scale)

    target, other = rate("The food was wonderful and the staff were lovely."), rate("The food was wonderful but the staff were rude.")
    [fresh], _ = ask(load_backend("llamacpp:qwen2.5-coder-1.5b"), [target])
    answers, _ = ask(load_backend("llamacpp:qwen2.5-coder-1.5b"), [other, target, target])
    for response in answers[1:]:
        for choice in scale:
            assert abs(response.choice_probs[choice] - fresh.choice_probs[choice]) <= 1e-6, (response.choice_probs, fresh.choice_probs)


# -- scoring a given continuation (query likelihood) ------------------------------------------
PASSAGE = chat("Passage: Aspirin reduces the risk of heart attacks in adults over fifty.\n\n"
               "Write a claim that this passage supports or refutes.").messages


def _token_by_token(backend, request: LLMRequest) -> float:
    """log P(continuation | prompt) the slow way: one next-token distribution per token."""
    prompt, _ = backend.tokens_for(request)
    following = backend._first_tokens(request.continuation)
    return sum(float(backend._next_token_logprobs(prompt + following[:i])[token]) for i, token in enumerate(following))


def test_continuation_logprob_is_the_sum_over_its_tokens_and_follows_the_passage(smollm, cache):
    on_topic = LLMRequest(messages=PASSAGE, continuation="Aspirin lowers the risk of heart attacks in older adults.")
    off_topic = LLMRequest(messages=PASSAGE, continuation="Cats prefer warm places to sleep in winter.")
    # On topic, off topic, on topic again: the second ask must not see the first one's tokens.
    answers, usage = ask(smollm, [on_topic, off_topic, on_topic.model_copy(update={"sample_index": 1})], cache)
    assert usage.sent == 3 and all(a.ok for a in answers), [a.error for a in answers]
    first, other, again = answers
    assert first.finish_reason == "continuation"
    assert first.continuation_tokens == len(smollm._first_tokens(on_topic.continuation))
    assert first.usage.completion_tokens == 0 and first.usage.prompt_tokens > first.continuation_tokens
    # One batch over the continuation equals the token-by-token sum (llama.cpp's batch numerics
    # differ in the last digits: within 0.1 nat a token), and does not depend on what came before.
    for answer, request in ((first, on_topic), (other, off_topic)):
        assert abs(answer.continuation_logprob - _token_by_token(smollm, request)) < 0.1 * answer.continuation_tokens
    assert abs(again.continuation_logprob - first.continuation_logprob) < 0.05 * first.continuation_tokens
    # The passage predicts its own claim's words better than an unrelated sentence's.
    per_token = lambda a: a.continuation_logprob / a.continuation_tokens
    assert per_token(first) > per_token(other) + 0.5
    # Asked again, the answer comes from the cache, paid for once.
    cached, usage = ask(smollm, [on_topic], cache)
    assert usage.sent == 0 and cached[0].cached and cached[0].continuation_logprob == first.continuation_logprob


def test_continuation_requests_are_checked_and_leave_older_cache_keys_alone():
    plain = LLMRequest(messages=PASSAGE)
    assert "continuation" not in plain.canonical_json(), "an unset new field must not change every cache key"
    assert LLMRequest(messages=PASSAGE, continuation="x").cache_key("m") != plain.cache_key("m")
    with pytest.raises(ValueError, match="cannot go with"):
        LLMRequest(messages=PASSAGE, continuation="x", choices=("Yes", "No"))
    with pytest.raises(ValueError, match="some text"):
        LLMRequest(messages=PASSAGE, continuation="")


def test_continuation_longer_than_the_context_is_a_clear_error():
    backend = load_backend(TINY, n_ctx=64)
    [answer], usage = ask(backend, [LLMRequest(prompt="Say something.", continuation="word " * 80)], retry=RetryPolicy(max_attempts=3))
    assert not answer.ok and "context holds 64" in answer.error and answer.attempts == 1


def test_continuation_scoring_in_small_batches_one_token_and_what_follows(smollm):
    """A continuation decoded in chunks of n_batch scores as one decoded whole (each token once,
    whatever the chunk boundaries); a one-token continuation is the prompt's next-token
    log-probability; and a greedy generation right after a continuation is what a fresh
    model writes (the held tokens and KV cache were left consistent)."""
    claim = "Aspirin lowers the risk of heart attacks in older adults, and it thins the blood a little."
    small = load_backend(TINY, n_batch=4)
    for text in (claim, claim + " Yes", claim + " Yes, truly"):  # the last chunk full, or not
        request = LLMRequest(messages=PASSAGE, continuation=text)
        [whole], _ = ask(smollm, [request])
        [chunked], _ = ask(small, [request])
        assert whole.continuation_tokens > 12, "several chunks of 4"
        assert chunked.continuation_tokens == whole.continuation_tokens
        assert abs(chunked.continuation_logprob - whole.continuation_logprob) < 0.05 * whole.continuation_tokens

    one = LLMRequest(messages=PASSAGE, continuation="The")
    [answer], _ = ask(smollm, [one])
    prompt, _ = smollm.tokens_for(one)
    assert answer.continuation_tokens == 1
    assert answer.continuation_logprob == pytest.approx(float(smollm._next_token_logprobs(prompt)[smollm._first_tokens("The")[0]]), abs=1e-3)

    greedy = LLMRequest(messages=PASSAGE, params=SamplingParams(temperature=0.0, max_tokens=12))
    answers, _ = ask(smollm, [LLMRequest(messages=PASSAGE, continuation=claim), greedy])
    [fresh], _ = ask(load_backend(TINY), [greedy])
    assert answers[1].text == fresh.text and fresh.text.strip()
