"""Tests of the OpenAI stub server itself (tests/support/openai_stub.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support.openai_stub import FaultPlan, StubServer, request_key

REPO_ROOT = Path(__file__).resolve().parents[1]


def chat_body(text: str = "hello there", **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


async def post(url: str, body: dict, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """POST JSON and return (status, headers, raw body)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        async with s.post(url, json=body) as resp:
            return resp.status, dict(resp.headers), await resp.read()


def post_sync(url: str, body: dict, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    return asyncio.run(post(url, body, timeout))


def wait_until(predicate, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_chat_success_shape_and_determinism():
    with StubServer() as srv:
        status, headers, raw = post_sync(srv.base_url + "/chat/completions", chat_body("abc"))
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        data = json.loads(raw)
        assert data["object"] == "chat.completion" and data["model"] == "m"
        assert isinstance(data["created"], int) and data["id"]
        choice = data["choices"][0]
        assert choice["finish_reason"] == "stop"
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"].startswith("echo: ")
        assert choice["message"]["content"].endswith("abc")
        usage = data["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

        again = json.loads(post_sync(srv.base_url + "/chat/completions", chat_body("abc"))[2])
        other = json.loads(post_sync(srv.base_url + "/chat/completions", chat_body("abd"))[2])
        text = choice["message"]["content"]
        assert again["choices"][0]["message"]["content"] == text
        assert other["choices"][0]["message"]["content"] != text


def test_completions_models_and_logprobs():
    with StubServer() as srv:
        status, _, raw = post_sync(srv.base_url + "/completions", {"model": "m", "prompt": "hi"})
        data = json.loads(raw)
        assert status == 200 and data["object"] == "text_completion"
        assert data["choices"][0]["text"].startswith("echo: ")
        assert data["choices"][0]["finish_reason"] == "stop"

        body = chat_body("one two", logprobs=True, top_logprobs=3)
        choice = json.loads(post_sync(srv.base_url + "/chat/completions", body)[2])["choices"][0]
        content = choice["logprobs"]["content"]
        assert "".join(t["token"] for t in content) == choice["message"]["content"]
        for entry in content:
            assert entry["logprob"] <= 0 and len(entry["top_logprobs"]) == 3
            assert entry["top_logprobs"][0]["token"] == entry["token"]

        async def models():
            async with aiohttp.ClientSession() as s:
                async with s.get(srv.base_url + "/models") as resp:
                    return await resp.json()

        assert [m["id"] for m in asyncio.run(models())["data"]] == ["stub-model"]


def test_rate_limit_has_retry_after():
    with StubServer(FaultPlan(rate_limit=1.0, retry_after_s=0.25)) as srv:
        status, headers, raw = post_sync(srv.base_url + "/chat/completions", chat_body())
        assert status == 429 and headers["Retry-After"] == "0.25"
        assert json.loads(raw)["error"]["code"] == "rate_limit_exceeded"
        assert srv.faults == {"rate_limit": 1}


def test_server_error_is_openai_error_json():
    with StubServer(FaultPlan(server_error=1.0)) as srv:
        status, _, raw = post_sync(srv.base_url + "/chat/completions", chat_body())
        assert status == 500 and json.loads(raw)["error"]["type"] == "server_error"


def test_malformed_body_fails_json_parse():
    async def call(url):
        async with aiohttp.ClientSession() as s:
            async with s.post(url, json=chat_body()) as resp:
                assert resp.status == 200
                await resp.json()

    with StubServer(FaultPlan(malformed=1.0)) as srv:
        with pytest.raises(json.JSONDecodeError):
            asyncio.run(call(srv.base_url + "/chat/completions"))


def test_truncated_body_raises_payload_error():
    with StubServer(FaultPlan(truncated=1.0)) as srv:
        with pytest.raises(aiohttp.ClientPayloadError):
            post_sync(srv.base_url + "/chat/completions", chat_body())
        assert srv.stats()["total_answered"] == 0


def test_hang_trips_client_timeout_and_stop_ends_the_hang():
    srv = StubServer(FaultPlan(hang=1.0, hang_s=30.0)).start()
    try:
        with pytest.raises(asyncio.TimeoutError):
            post_sync(srv.base_url + "/chat/completions", chat_body(), timeout=0.2)
        assert srv.faults == {"hang": 1}
    finally:
        srv.stop()
    assert not srv._thread.is_alive()  # stop() woke the hanging handler instead of waiting 30 s for it
    assert srv.stats()["total_answered"] == 0


def test_fail_first_n_then_success_and_counters():
    body = chat_body("retry me", stream=False)
    key = request_key(body)
    with StubServer(FaultPlan(fail_first_n_attempts_per_request=2)) as srv:
        url = srv.base_url + "/chat/completions"
        assert [post_sync(url, body)[0] for _ in range(3)] == [500, 500, 200]
        # A body without "stream" is the same request, and the 3rd+ attempt succeeds.
        assert post_sync(url, chat_body("retry me"))[0] == 200
        # "answered" is counted once the body is fully sent, which can be a moment after the
        # client already holds it (seen on a loaded CI machine): wait for the count.
        wait_until(lambda: srv.stats()["total_answered"] == 2, timeout=10)
        stats = srv.stats()
        assert stats["received"] == {key: 4} and stats["answered"] == {key: 2}
        assert stats["faults"] == {"fail_first_n": 2}
        assert (stats["total_received"], stats["total_answered"], stats["total_faults"]) == (4, 2, 2)


def test_always_fail_matching():
    with StubServer(FaultPlan(always_fail_matching="POISON")) as srv:
        url = srv.base_url + "/chat/completions"
        assert [post_sync(url, chat_body("a POISON pill"))[0] for _ in range(3)] == [500] * 3
        assert post_sync(url, chat_body("fine"))[0] == 200
        assert srv.faults == {"always_fail": 3}


def test_gate_pauses_until_release():
    async def scenario(srv):
        url = srv.base_url + "/chat/completions"
        first = await post(url, chat_body("first"))
        assert first[0] == 200
        pending = asyncio.ensure_future(post(url, chat_body("second")))
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: wait_until(lambda: srv.stats()["waiting"] == 1)
        )
        assert not pending.done() and srv.stats()["total_answered"] == 1
        srv.release()
        assert (await pending)[0] == 200

    with StubServer(FaultPlan(pause_after_n_answers=1)) as srv:
        asyncio.run(scenario(srv))
        assert srv.stats()["total_answered"] == 2 and srv.stats()["waiting"] == 0


def test_gate_admits_exactly_n_under_concurrency_and_stop_drops_waiters():
    async def scenario(srv):
        url = srv.base_url + "/chat/completions"
        tasks = [asyncio.ensure_future(post(url, chat_body(f"q{i}"))) for i in range(8)]
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: wait_until(lambda: srv.stats()["waiting"] == 5)
        )
        assert srv.stats()["total_answered"] == 3
        await asyncio.get_running_loop().run_in_executor(None, srv.stop)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert sum(1 for r in results if isinstance(r, tuple) and r[0] == 200) == 3
        assert sum(1 for r in results if isinstance(r, aiohttp.ClientError)) == 5

    srv = StubServer(FaultPlan(pause_after_n_answers=3)).start()
    asyncio.run(scenario(srv))
    assert srv.stats()["total_answered"] == 3


def test_seeded_faults_are_reproducible():
    plan = FaultPlan(rate_limit=0.3, server_error=0.3, seed=7)

    def statuses():
        with StubServer(plan) as srv:
            url = srv.base_url + "/chat/completions"
            return [post_sync(url, chat_body(f"q{i % 4}"))[0] for i in range(16)]

    first = statuses()
    assert first == statuses()
    assert {429, 500, 200} <= set(first)


def test_stats_over_http_matches_in_process_stats():
    async def fetch(url):
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as resp:
                return await resp.json()

    with StubServer(FaultPlan(server_error=0.5, seed=3)) as srv:
        for i in range(6):
            post_sync(srv.base_url + "/chat/completions", chat_body(f"q{i}"))
        assert asyncio.run(fetch(srv.root_url + "/stats")) == json.loads(json.dumps(srv.stats()))


def test_subprocess_mode_prints_ready_and_serves():
    argv = [sys.executable, "-m", "tests.support.openai_stub", "--port", "0",
            "--rate-limit", "1.0", "--retry-after", "0.5"]
    with subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline().strip()
            assert line.startswith("READY http://127.0.0.1:") and line.endswith("/v1")
            base_url = line.split(" ", 1)[1]
            status, headers, _ = post_sync(base_url + "/chat/completions", chat_body())
            assert status == 429 and headers["Retry-After"] == "0.5"
        finally:
            proc.terminate()
            assert proc.wait(timeout=5) == 0
