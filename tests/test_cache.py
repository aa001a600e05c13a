"""The request cache: what a key depends on, what the backend identity leaves out,
--no-cache / --refresh, the call log, `synthwright usage`, and a damaged cache file."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from synthwright.errors import UserError
from synthwright.llm.cache import RequestCache
from synthwright.llm.concurrency import RetryPolicy
from synthwright.llm.engine import EngineOptions, LLMEngine
from synthwright.llm.records import LLMRequest, LLMResponse, Message, SamplingParams
from synthwright.llm.spec import load_backend
from synthwright.llm.usage import Price
from tests.conftest import run_cli
from tests.support.openai_stub import FaultPlan, StubServer

IDENTITY = "openai:stub-model"


def chat(text: str = "hello", **extra) -> LLMRequest:
    return LLMRequest(messages=(Message(role="user", content=text),), **extra)


# -- keys --------------------------------------------------------------------------------------
def test_same_request_same_key():
    a = chat("hello", params=SamplingParams(temperature=0.2, seed=5), sample_index=1)
    b = LLMRequest.model_validate(json.loads(a.model_dump_json()))  # rebuilt from scratch
    assert a is not b and a.cache_key(IDENTITY) == b.cache_key(IDENTITY)
    assert a.cache_key(IDENTITY) == chat("hello", params=SamplingParams(seed=5, temperature=0.2), sample_index=1).cache_key(IDENTITY)
    assert len(a.cache_key(IDENTITY)) == 64


@pytest.mark.parametrize(
    "other",
    [
        chat("hello", sample_index=1),
        chat("hello", params=SamplingParams(temperature=0.9)),
        chat("hello", params=SamplingParams(seed=1)),
        chat("hello", params=SamplingParams(max_tokens=17)),
        chat("hello", params=SamplingParams(stop=("\n",))),
        chat("hello", json_schema={"type": "object"}),
        chat("hello", top_logprobs=3),
        chat("hello", choices=("yes", "no")),
        chat("hello!"),
        LLMRequest(messages=(Message(role="system", content="be brief"), Message(role="user", content="hello"))),
        LLMRequest(prompt="hello"),
    ],
    ids=["sample_index", "temperature", "seed", "max_tokens", "stop", "schema", "top_logprobs", "choices",
         "text", "system", "raw_prompt"],
)
def test_anything_that_changes_the_answer_changes_the_key(other):
    assert other.cache_key(IDENTITY) != chat("hello").cache_key(IDENTITY)


def test_schemas_that_differ_give_different_keys_and_key_order_does_not_matter():
    one = chat(json_schema={"type": "object", "properties": {"a": {"type": "string"}}})
    two = chat(json_schema={"type": "object", "properties": {"b": {"type": "string"}}})
    same = chat(json_schema={"properties": {"a": {"type": "string"}}, "type": "object"})
    assert one.cache_key(IDENTITY) != two.cache_key(IDENTITY)
    assert one.cache_key(IDENTITY) == same.cache_key(IDENTITY)


def test_model_identity_is_part_of_the_key():
    assert chat().cache_key("openai:a") != chat().cache_key("openai:b")


def test_openai_identity_has_no_url_and_no_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-value")
    local = load_backend("openai:my-model@http://127.0.0.1:8080/v1")
    remote = load_backend("openai:my-model@https://llm.example.com:8443/v1")
    other = load_backend("openai:other-model@http://127.0.0.1:8080/v1")
    assert local.identity == remote.identity == "openai:my-model"
    assert other.identity != local.identity
    for backend in (local, remote):
        for leak in ("sk-very-secret-value", "127.0.0.1", "8080", "example", "http"):
            assert leak not in backend.identity
    assert chat().cache_key(local.identity) == chat().cache_key(remote.identity)
    assert "sk-very-secret-value" not in chat().canonical_json()


# -- engine: cache reads, writes and the call log ------------------------------------------------------
def make_engine(srv: StubServer, cache: RequestCache | None, **options) -> LLMEngine:
    backend = load_backend("openai:stub-model@" + srv.base_url)
    retry = RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.05)
    return LLMEngine(backend, cache, EngineOptions(max_concurrency=4, retry=retry, **options))


def run(engine: LLMEngine, requests: list[LLMRequest], usage: list | None = None) -> dict[int, LLMResponse]:
    """Every answer by request index; the run's usage totals go into `usage` when given."""
    results: dict[int, LLMResponse] = {}

    def on_result(index, request, response):
        assert index not in results
        results[index] = response

    totals = engine.run(requests, on_result)
    engine.close()
    if usage is not None:
        usage.append(totals)
    assert sorted(results) == list(range(len(requests)))
    return results


def test_cached_request_is_not_sent_again(tmp_path):
    requests = [chat(f"q {i}") for i in range(6)]
    with StubServer() as srv:
        with closing(RequestCache(tmp_path / "c.sqlite")) as cache:
            first = run(make_engine(srv, cache), requests)
            sent_first = srv.stats()["total_received"]
        with closing(RequestCache(tmp_path / "c.sqlite")) as cache:  # a new process, the same file
            usage: list = []
            second = run(make_engine(srv, cache), requests, usage)
        assert sent_first == 6 and srv.stats()["total_received"] == 6
    assert usage[0].cache_hits == 6 and usage[0].sent == 0
    assert all(r.cached and r.attempts == 0 for r in second.values())
    assert [second[i].text for i in range(6)] == [first[i].text for i in range(6)]
    assert [second[i].usage for i in range(6)] == [first[i].usage for i in range(6)]


def test_call_log_counts_sent_and_hits_per_model_and_step(tmp_path):
    path = tmp_path / "c.sqlite"
    price = Price(1.0, 2.0)
    with StubServer(plan=FaultPlan(always_fail_matching="BAD")) as srv:
        usage: list = []  # of the first generate run, then of the second
        for _ in range(2):
            with closing(RequestCache(path)) as cache:
                run(make_engine(srv, cache, step="generate", price=price), [chat(f"g {i}") for i in range(5)] + [chat("g BAD")], usage)
        with closing(RequestCache(path)) as cache:
            judge = make_engine(srv, cache, step="judge")
            run(judge, [chat(f"j {i}") for i in range(3)] + [chat("g 0")])

    with closing(RequestCache(path)) as cache:
        summary = {(row["model"], row["step"]): row for row in cache.calls_summary()}
        assert cache.count() == 5 + 3  # failures are never cached
        assert cache.calls_summary(since=time.time() + 60) == []
    assert set(summary) == {(IDENTITY, "generate"), (IDENTITY, "judge")}
    g, j = summary[(IDENTITY, "generate")], summary[(IDENTITY, "judge")]
    # generate: 6 sent, then 5 hits and the failed one sent again (it fails again).
    assert (g["sent"], g["cache_hits"], g["failures"]) == (7, 5, 2)
    # judge: 3 new requests sent, one answered from generate's cache entry.
    assert (j["sent"], j["cache_hits"], j["failures"]) == (3, 1, 0)
    # Tokens and cost count only what was sent (and answered).
    first, again = usage
    assert g["prompt_tokens"] == first.prompt_tokens + again.prompt_tokens
    assert g["completion_tokens"] == first.completion_tokens + again.completion_tokens
    assert again.prompt_tokens == 0 and again.cache_hits == 5
    assert g["prompt_tokens"] > 0
    expected_cost = price.cost(g["prompt_tokens"], g["completion_tokens"])
    assert g["cost"] == pytest.approx(expected_cost) and g["cost"] > 0
    assert j["cost"] == 0
    assert g["mean_latency_s"] > 0


# -- CLI: --no-cache, --refresh, usage ----------------------------------------------------------------
@pytest.fixture
def job(tmp_path) -> dict:
    template = tmp_path / "t.j2"
    template.write_text("Tell me about {{ topic }}.", encoding="utf-8")
    rows = [{"topic": t} for t in ("owls", "rivers", "glass", "bread")]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"template": template, "input": inp, "output": tmp_path / "out.jsonl", "rows": rows}


def generate(job, srv, *extra: str, env: dict | None = None):
    return run_cli("generate", "-m", f"openai:stub-model@{srv.base_url}", "-t", str(job["template"]),
                   "-i", str(job["input"]), "-o", str(job["output"]), *extra, env=env, timeout=60)


def output_texts(job) -> list[str]:
    return [json.loads(line)["generation"] for line in job["output"].read_text(encoding="utf-8").splitlines()]


def table_counts(path: Path) -> tuple[int, int]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0], db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]


def test_no_cache_sends_again_and_writes_nothing(job, isolated_cache):
    n = len(job["rows"])
    with StubServer() as srv:
        first = generate(job, srv)
        assert first.returncode == 0, first.stderr
        assert table_counts(isolated_cache) == (n, n)
        texts = output_texts(job)

        again = generate(job, srv, "--no-cache")
        assert again.returncode == 0, again.stderr
        assert f"{n} requests sent, 0 cache hits" in again.stdout
        assert srv.stats()["total_received"] == 2 * n
        assert table_counts(isolated_cache) == (n, n)  # neither answers nor call log written
        assert output_texts(job) == texts

        elsewhere = job["output"].parent / "never.sqlite"
        fresh = generate(job, srv, "--no-cache", "--cache", str(elsewhere))
        assert fresh.returncode == 0, fresh.stderr
        assert not elsewhere.exists()
        assert srv.stats()["total_received"] == 3 * n


def test_refresh_sends_again_and_overwrites(job, isolated_cache):
    n = len(job["rows"])
    with StubServer() as srv:
        first = generate(job, srv)
        assert first.returncode == 0, first.stderr
        real = output_texts(job)

        # Plant a stale answer in every entry: a normal run must serve it, --refresh must replace it.
        with closing(sqlite3.connect(isolated_cache)) as db:
            for key, raw in db.execute("SELECT key, response FROM responses").fetchall():
                db.execute("UPDATE responses SET response=? WHERE key=?", (json.dumps({**json.loads(raw), "text": "STALE"}), key))
            db.commit()
        cached = generate(job, srv)
        assert cached.returncode == 0, cached.stderr
        assert f"0 requests sent, {n} cache hits" in cached.stdout
        assert output_texts(job) == ["STALE"] * n
        assert srv.stats()["total_received"] == n

        refreshed = generate(job, srv, "--refresh")
        assert refreshed.returncode == 0, refreshed.stderr
        assert f"{n} requests sent, 0 cache hits" in refreshed.stdout
        assert srv.stats()["total_received"] == 2 * n
        assert output_texts(job) == real
        with closing(sqlite3.connect(isolated_cache)) as db:
            stored = [json.loads(raw)["text"] for (raw,) in db.execute("SELECT response FROM responses")]
        assert len(stored) == n and sorted(stored) == sorted(real)  # replaced in place, not added


def test_usage_command_prints_a_table(isolated_cache):
    wide = {"COLUMNS": "200"}
    empty = run_cli("usage", env=wide)
    assert empty.returncode == 0, empty.stderr
    assert "No calls logged yet." in empty.stdout

    requests = [chat(f"u {i}") for i in range(4)]
    with StubServer() as srv:
        for step in ("generate", "generate", "judge"):  # 4 sent, then 4 hits; 4 hits as judge
            with closing(RequestCache(isolated_cache)) as cache:
                run(make_engine(srv, cache, step=step, price=Price(1.0, 2.0)), requests)
    with closing(RequestCache(isolated_cache)) as cache:
        rows = {row["step"]: row for row in cache.calls_summary()}

    result = run_cli("usage", env=wide)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "LLM usage" in result.stdout
    header = next(line for line in result.stdout.splitlines() if "model" in line and "step" in line)
    for column in ("sent", "cache hits", "prompt tok", "completion tok", "failures", "mean latency", "cost $"):
        assert column in header
    lines = [line for line in result.stdout.splitlines() if IDENTITY in line]
    assert len(lines) == 2, result.stdout
    table = {}
    for line in lines:
        cells = [c.strip() for c in line.split("│") if c.strip()]
        table[cells[1]] = cells
    g, j = rows["generate"], rows["judge"]
    assert table["generate"][:7] == [IDENTITY, "generate", "4", "4", f"{g['prompt_tokens']:,}", f"{g['completion_tokens']:,}", "0"]
    assert table["generate"][-1] == f"{g['cost']:.4f}" and g["cost"] > 0
    assert table["judge"][:7] == [IDENTITY, "judge", "0", "4", "0", "0", "0"]
    assert table["judge"][-2:] == ["-", "0.0000"]  # nothing sent: no latency, no cost
    assert j["mean_latency_s"] is None

    # --hours keeps only recent calls.
    with closing(sqlite3.connect(isolated_cache)) as db:
        db.execute("UPDATE calls SET ts = ts - 7200")
        db.commit()
    recent = run_cli("usage", "--hours", "1", "--cache", str(isolated_cache), env=wide)
    assert recent.returncode == 0 and "No calls logged yet." in recent.stdout


# -- a damaged cache file ---------------------------------------------------------------------------
def test_cache_file_that_is_not_sqlite(tmp_path):
    bogus = tmp_path / "requests.sqlite"
    bogus.write_text("this is a spreadsheet, not a database\n" * 50, encoding="utf-8")
    with pytest.raises(UserError) as info:
        RequestCache(bogus)
    assert str(bogus) in info.value.problem and "cannot be opened" in info.value.problem
    assert "SYNTHWRIGHT_CACHE" in info.value.fix


@pytest.mark.parametrize("command", ["generate", "usage"])
def test_cli_with_a_cache_file_that_is_not_sqlite(job, tmp_path, command):
    bogus = tmp_path / "bogus.sqlite"
    bogus.write_bytes(b"\x00\x01garbage" * 200)
    with StubServer() as srv:
        if command == "generate":
            result = generate(job, srv, "--cache", str(bogus))
        else:
            result = run_cli("usage", "--cache", str(bogus))
        received = srv.stats()["total_received"]
    assert received == 0
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: The request cache at ") and str(bogus) in lines[0]
    assert "cannot be opened" in lines[0]
    assert len(lines) == 2 and lines[1].startswith("  fix: ")
    assert bogus.read_bytes() == b"\x00\x01garbage" * 200  # left untouched
    assert not job["output"].exists()


def _open_cache_at(path: str, start_at: float) -> str:
    """Child process: wait for the common start time, open the cache, write one row."""
    while time.time() < start_at:
        pass
    try:
        cache = RequestCache(path)
        cache.queue_response(f"key-{time.time_ns()}", "m", LLMResponse(text="x"))
        cache.flush()
        return "ok"
    except Exception as exc:  # returned, so the parent can show which process failed and why
        return repr(exc)


def test_many_processes_opening_a_new_cache_at_once(tmp_path):
    """Ray workers open one fresh cache file together; none of them may fail with "locked"."""
    import multiprocessing

    for attempt in range(3):  # the race needs the processes to collide; repeat to give it chances
        path = str(tmp_path / f"shared-{attempt}.sqlite")
        with multiprocessing.get_context("spawn").Pool(6) as pool:
            start_at = time.time() + 1.5  # after the pool's processes have started
            results = pool.starmap(_open_cache_at, [(path, start_at)] * 6)
        assert results == ["ok"] * 6
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 6
