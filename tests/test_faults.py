"""The LLM engine and `synthwright generate` against a server that misbehaves on purpose.

Every test here talks to `tests.support.openai_stub.StubServer` through the real
OpenAI-compatible backend (aiohttp, real sockets). Retry backoff is kept small
(RetryPolicy(base_delay_s=0.01, max_delay_s=0.2)) so the suite stays fast.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from synthwright.llm.cache import RequestCache
from synthwright.llm.concurrency import RetryPolicy
from synthwright.llm.engine import EngineOptions, LLMEngine
from synthwright.llm.records import LLMRequest, LLMResponse, Message
from synthwright.llm.spec import load_backend
from tests.conftest import run_cli
from tests.support.openai_stub import RATE_LIMIT, FaultPlan, StubServer, request_key

FAST_BACKOFF = dict(base_delay_s=0.01, max_delay_s=0.2)


# -- helpers ------------------------------------------------------------------------------
def chat(text: str, **extra) -> LLMRequest:
    return LLMRequest(messages=(Message(role="user", content=text),), **extra)


def make_engine(srv: StubServer, cache: RequestCache | None, *, max_attempts: int = 6, concurrency: int = 8,
                timeout_s: float = 5.0, **options) -> LLMEngine:
    backend = load_backend("openai:stub-model@" + srv.base_url)
    retry = RetryPolicy(max_attempts=max_attempts, **FAST_BACKOFF)
    return LLMEngine(backend, cache, EngineOptions(max_concurrency=concurrency, timeout_s=timeout_s, retry=retry, **options))


def run_engine(engine: LLMEngine, requests: list[LLMRequest]) -> tuple[dict[int, list[LLMResponse]], object]:
    """Run and collect every callback: index -> list of responses (must end up length 1)."""
    results: dict[int, list[LLMResponse]] = {}

    def on_result(index: int, request: LLMRequest, response: LLMResponse) -> None:
        assert request == requests[index]
        results.setdefault(index, []).append(response)

    usage = engine.run(requests, on_result)
    engine.close()  # its connections; a later run on the same engine opens new ones
    return results, usage


def settled_stats(srv: StubServer, expected_answered: int | None = None, timeout: float = 2.0) -> dict:
    """The stub counts an answer after writing it, so the client can see an answer a moment
    before the counter moves: wait until the counters stop changing (or reach a target)."""
    deadline = time.monotonic() + timeout
    last = srv.stats()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = srv.stats()
        if expected_answered is not None:
            if now["total_answered"] >= expected_answered:
                return now
        elif now["total_received"] == last["total_received"] and now["total_answered"] == last["total_answered"]:
            return now
        last = now
    return srv.stats()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def template(tmp_path) -> Path:
    path = tmp_path / "t.j2"
    path.write_text("Say something about {{ text }}.", encoding="utf-8")
    return path


# -- (a) a mix of faults: everything ends answered ---------------------------------------------
MIXED = FaultPlan(rate_limit=0.1, retry_after_s=0.01, server_error=0.1, malformed=0.1, truncated=0.1, seed=3)


def test_fault_mix_every_request_answered_exactly_once(tmp_path):
    n = 200
    requests = [chat(f"question {i}") for i in range(n)]
    cache = RequestCache(tmp_path / "cache.sqlite")
    with StubServer(plan=MIXED) as srv:
        engine = make_engine(srv, cache, max_attempts=10, concurrency=16)
        results, usage = run_engine(engine, requests)
        stats = settled_stats(srv, expected_answered=n)
    try:
        # Every request came back through the callback exactly once, and succeeded.
        assert sorted(results) == list(range(n))
        assert all(len(v) == 1 for v in results.values())
        assert all(v[0].ok for v in results.values()), [v[0].error for v in results.values() if not v[0].ok][:3]
        assert all(v[0].text.startswith("echo: ") and v[0].text.endswith(f"question {i}") for i, v in results.items())
        assert usage.sent == n and usage.succeeded == n and usage.failed == 0 and usage.cache_hits == 0
        assert usage.retries > 0
        # Each kind of fault really happened, and every retry is one more attempt at the server.
        for fault in ("rate_limit", "server_error", "malformed", "truncated"):
            assert stats["faults"][fault] > 0, stats["faults"]
        assert stats["total_received"] == n + usage.retries
        assert sum(v[0].attempts for v in results.values()) == stats["total_received"]
        # The server answered each distinct request once: nothing lost, nothing answered twice.
        assert len(stats["answered"]) == n and set(stats["answered"].values()) == {1}
        assert cache.count() == n
    finally:
        cache.close()


def test_fault_mix_through_cli(tmp_path, template):
    rows = [{"text": f"topic {i}"} for i in range(30)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    # The CLI backs off from 0.5 s, doubling. Seed 10 (for this template and these rows) draws
    # all four faults with at most two failed attempts per request, which keeps this ~2 s;
    # another seed is just as correct, only slower.
    plan = FaultPlan(rate_limit=0.1, retry_after_s=0.01, server_error=0.1, malformed=0.1, truncated=0.1, seed=10)
    with StubServer(plan=plan) as srv:
        result = run_cli("generate", "-m", f"openai:stub-model@{srv.base_url}", "-t", str(template), "-i", str(inp),
                         "-o", str(out), "--max-attempts", "10", "--concurrency", "8", timeout=60)
        stats = settled_stats(srv, expected_answered=len(rows))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    written = read_jsonl(out)
    assert [r["text"] for r in written] == [r["text"] for r in rows]
    assert len({r["_meta"]["id"] for r in written}) == len(rows)  # each row once
    assert all(r["generation"].startswith("echo: ") for r in written)
    assert not (tmp_path / "out.failures.jsonl").exists()
    assert "30 requests sent, 0 cache hits, 0 failed" in result.stdout
    # The server saw every retry: the summary counts attempts too, as the server does.
    summary = " ".join(result.stdout.split())
    assert f"{stats['total_received']} attempts ({stats['total_faults']} retries)" in summary
    for fault in ("rate_limit", "server_error", "malformed", "truncated"):
        assert stats["faults"][fault] > 0, stats["faults"]
    assert stats["total_received"] == len(rows) + stats["total_faults"]
    assert len(stats["answered"]) == len(rows) and set(stats["answered"].values()) == {1}


# -- (b) rows that always fail go to the failures file -------------------------------------------
def test_always_failing_rows_go_to_failures_file(tmp_path, template, isolated_cache):
    rows = [{"text": f"item {i}" + (" POISON" if i in (3, 7) else "")} for i in range(12)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    failures = tmp_path / "out.failures.jsonl"
    args = ["generate", "-t", str(template), "-i", str(inp), "-o", str(out), "--max-attempts", "3", "--concurrency", "4"]
    with StubServer(plan=FaultPlan(always_fail_matching="POISON")) as srv:
        result = run_cli(*args, "-m", f"openai:stub-model@{srv.base_url}", env={"COLUMNS": "400"}, timeout=60)
        stats = settled_stats(srv, expected_answered=10)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    written = read_jsonl(out)
    failed = read_jsonl(failures)
    assert [r["text"] for r in written] == [r["text"] for i, r in enumerate(rows) if i not in (3, 7)]
    assert sorted(f["row_index"] for f in failed) == [3, 7]
    assert len(written) + len(failed) == len(rows)
    for record in failed:
        assert record["row"] == rows[record["row_index"]]
        assert record["error"].startswith("gave up after 3 attempts: ")
        assert "HTTP 500" in record["error"]
    # The message says how many failed and where they are.
    stderr = " ".join(result.stderr.split())
    assert "2 rows failed" in stderr
    assert str(failures) in stderr
    assert "wrote 10 rows" in result.stdout
    # Poisoned rows were tried exactly max_attempts times; the others once.
    assert sorted(stats["received"].values()) == [1] * 10 + [3, 3]
    assert stats["faults"]["always_fail"] == 6

    # The failure is gone: the same command sends only the two failed rows, the same model
    # name at another URL is the same model (cache hits), and the failures file goes away.
    with StubServer() as clean:
        again = run_cli(*args, "-m", f"openai:stub-model@{clean.base_url}", timeout=60)
        clean_stats = settled_stats(clean, expected_answered=2)
    assert again.returncode == 0, again.stderr
    assert "2 requests sent, 10 cache hits, 0 failed" in again.stdout
    assert clean_stats["total_received"] == 2
    assert [r["text"] for r in read_jsonl(out)] == [r["text"] for r in rows]
    assert not failures.exists()


# -- (c) attempts at the server never exceed max_attempts ------------------------------------------
@pytest.mark.parametrize("max_attempts", [1, 3])
def test_attempts_never_exceed_max_attempts(tmp_path, max_attempts):
    n = 20
    requests = [chat(f"q {i}") for i in range(n)]
    cache = RequestCache(tmp_path / "cache.sqlite")
    with StubServer(plan=FaultPlan(fail_first_n_attempts_per_request=max_attempts + 5)) as srv:
        engine = make_engine(srv, cache, max_attempts=max_attempts)
        results, usage = run_engine(engine, requests)
        stats = settled_stats(srv)
    try:
        assert sorted(results) == list(range(n)) and all(len(v) == 1 for v in results.values())
        for (response,) in results.values():
            assert not response.ok and response.text == ""
            assert response.attempts == max_attempts
            assert response.error.startswith(f"gave up after {max_attempts} attempts: HTTP 500")
        assert len(stats["received"]) == n
        assert set(stats["received"].values()) == {max_attempts}
        assert stats["total_answered"] == 0
        assert usage.failed == n and usage.succeeded == 0 and usage.retries == n * (max_attempts - 1)
        assert cache.count() == 0  # a failure is never cached: the next run tries again
    finally:
        cache.close()


def test_fails_then_succeeds_on_last_allowed_attempt(tmp_path):
    requests = [chat(f"q {i}") for i in range(10)]
    with StubServer(plan=FaultPlan(fail_first_n_attempts_per_request=2)) as srv:
        engine = make_engine(srv, None, max_attempts=3)
        results, usage = run_engine(engine, requests)
        stats = settled_stats(srv, expected_answered=10)
    assert all(v[0].ok and v[0].attempts == 3 for v in results.values())
    assert set(stats["received"].values()) == {3} and set(stats["answered"].values()) == {1}
    assert usage.retries == 20 and usage.succeeded == 10


# -- (d) a hanging server and a short timeout -----------------------------------------------------
def test_hang_with_short_timeout_gives_up_after_its_attempts():
    with StubServer(plan=FaultPlan(hang=1.0, hang_s=5.0)) as srv:
        engine = make_engine(srv, None, max_attempts=2, timeout_s=0.3)
        results, usage = run_engine(engine, [chat("hello")])
        stats = srv.stats()
    (response,) = results[0]
    assert not response.ok
    assert response.error == "gave up after 2 attempts: no answer within 0.3s"
    assert response.attempts == 2
    assert stats["received"] and set(stats["received"].values()) == {2}
    assert stats["total_answered"] == 0  # each attempt was cut off by the client, not waited out
    assert usage.failed == 1 and usage.retries == 1


def test_hang_with_short_timeout_through_cli(tmp_path, template):
    rows = [{"text": "slow one"}, {"text": "slow two"}]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    with StubServer(plan=FaultPlan(hang=1.0, hang_s=10.0)) as srv:
        result = run_cli("generate", "-m", f"openai:stub-model@{srv.base_url}", "-t", str(template), "-i", str(inp),
                         "-o", str(out), "--timeout", "0.3", "--max-attempts", "2", timeout=60)
        stats = srv.stats()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert stats["total_received"] == 4 and stats["total_answered"] == 0  # two rows, two attempts each, none waited out
    failed = read_jsonl(tmp_path / "out.failures.jsonl")
    assert sorted(f["row_index"] for f in failed) == [0, 1]
    assert all("no answer within 0.3s" in f["error"] and "gave up after 2 attempts" in f["error"] for f in failed)
    assert read_jsonl(out) == []  # the output exists (complete, empty), nothing half-written


# -- (e) a 429 storm shrinks the limiter, successes grow it back ------------------------------------
def test_rate_limit_storm_decreases_then_limiter_recovers():
    max_limit = 8
    seen_limits: list[float] = []
    with StubServer(plan=FaultPlan(rate_limit=0.7, retry_after_s=0.01, seed=1)) as storm:
        engine = make_engine(storm, None, max_attempts=30, concurrency=max_limit)
        limiter = engine.limiter
        release = limiter.release

        def spy(epoch, rate_limited=False):
            release(epoch, rate_limited)
            seen_limits.append(limiter.limit)

        limiter.release = spy
        results, usage = run_engine(engine, [chat(f"storm {i}") for i in range(40)])
        storm_stats = settled_stats(storm, expected_answered=40)
    assert all(v[0].ok for v in results.values())
    assert storm_stats["faults"]["rate_limit"] > 0
    assert limiter.decreases > 0
    assert min(seen_limits) < max_limit
    assert limiter.limit < max_limit  # 70% of attempts refused: it has not recovered yet
    # One burst is one signal: far fewer decreases than 429s.
    assert limiter.decreases < storm_stats["faults"]["rate_limit"]
    decreases = limiter.decreases

    with StubServer() as calm:
        engine.backend.base_url = calm.base_url  # same engine and limiter, the provider relaxed
        results, usage = run_engine(engine, [chat(f"calm {i}") for i in range(100)])
    assert all(v[0].ok for v in results.values())
    assert limiter.decreases == decreases
    assert limiter.limit == max_limit
    assert limiter.in_flight == 0


# -- (f) Retry-After is honoured -------------------------------------------------------------------
def _first_attempt_rate_limited(plan: FaultPlan, backend) -> LLMRequest:
    """A request the stub refuses (429) on its first attempt and answers on its second."""
    for i in range(1000):
        request = chat(f"retry-after probe {i}")
        key = request_key(backend._body(request)[1])
        if plan.draw(key, 1) == RATE_LIMIT and plan.draw(key, 2) is None:
            return request
    raise AssertionError("no probe found")


@pytest.mark.parametrize("retry_after", [0.3, 0.1])
def test_retry_after_is_honoured(retry_after):
    # max_delay_s (0.2) caps our own backoff; a server's explicit Retry-After still wins.
    plan = FaultPlan(rate_limit=0.5, retry_after_s=retry_after, seed=11)
    with StubServer(plan=plan) as srv:
        engine = make_engine(srv, None, max_attempts=3)
        request = _first_attempt_rate_limited(plan, engine.backend)
        attempts: list[tuple[float, float]] = []
        complete = engine.backend.complete

        async def timed(req, timeout_s):
            started = time.monotonic()
            try:
                return await complete(req, timeout_s)
            finally:
                attempts.append((started, time.monotonic()))

        engine.backend.complete = timed
        results, usage = run_engine(engine, [request])
        stats = settled_stats(srv, expected_answered=1)
    (response,) = results[0]
    assert response.ok and response.attempts == 2
    assert stats["faults"] == {"rate_limit": 1}
    assert len(attempts) == 2
    gap = attempts[1][0] - attempts[0][1]
    assert gap >= retry_after - 0.005, f"retried {gap:.3f}s after a 429 that said Retry-After {retry_after}"
    # Not much later either: the wait the engine asks for is Retry-After plus at most 10% jitter
    # (checked on the policy itself, not on a wall clock that other work on the machine stretches).
    waits = [engine.options.retry.delay(1, retry_after, random.Random(seed)) for seed in range(50)]
    assert all(retry_after <= wait <= retry_after * 1.1 for wait in waits)
