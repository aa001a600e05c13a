"""A run owns its models: one engine per model for the whole run, so what its limiter learnt
about a provider's limit in one batch holds in the next; steps name models by id, and a
model's typed options reach its backend and engine. Against the stub server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthwright.core.step import StepContext
from synthwright.llm.engine import EngineOptions, LLMEngine
from synthwright.llm.records import LLMRequest, Message
from synthwright.llm.spec import load_backend
from synthwright.pipeline import Pipeline
from synthwright.pipeline.executor import LocalExecutor, RunObserver
from synthwright.pipeline.pipeline import run_pipeline
from synthwright.pipeline.plan import plan_pipeline
from tests.conftest import run_cli
from tests.support.openai_stub import OVER_CAPACITY, FaultPlan, StubServer


class Rejections(RunObserver):
    """The 429s the stub sent while each batch of step `step` ran."""

    def __init__(self, server: StubServer, step: str):
        self.server, self.step = server, step
        self.per_batch: list[int] = []
        self._seen = 0

    def batch_finished(self, planned, result) -> None:
        if planned.step.name == self.step:
            total = self.server.faults[OVER_CAPACITY]
            self.per_batch.append(total - self._seen)
            self._seen = total


def topics(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "topics.jsonl"
    path.write_text("".join(json.dumps({"topic": f"topic {i}"}) + "\n" for i in range(count)), encoding="utf-8")
    return path


def test_the_second_batch_sends_no_429_burst(tmp_path):
    capacity, batch = 4, 48
    with StubServer(plan=FaultPlan(max_in_flight=capacity, retry_after_s=0.01), delay_s=0.02) as server:
        pipeline = Pipeline("limits", seed=1)
        pipeline.step("topics", "load", path=str(topics(tmp_path, 3 * batch)))
        pipeline.step("ask", "generate", model=f"openai:stub-model@{server.base_url}", prompt="About {{ topic }}?",
                      max_tokens=4, batch_size=batch)
        observer = Rejections(server, "ask")
        result = run_pipeline(pipeline.config(), tmp_path / "run", executor=LocalExecutor(observer))
    first, *later = observer.per_batch
    assert len(observer.per_batch) == 3
    assert result.outcomes[1].stats.rows_out == 3 * batch  # every 429 was retried to an answer
    # The engine starts at 64 in flight: the first batch runs into the limit with a burst...
    assert first > 8 * capacity, observer.per_batch
    # ...and later batches start from what it learnt: a probe just above the limit, no burst.
    # (A fresh engine per batch, as before, sent the first batch's burst again every time.)
    assert all(count < 2 * capacity for count in later), observer.per_batch


def test_a_step_names_a_model_by_id_and_its_options_apply(tmp_path):
    with StubServer(plan=FaultPlan(max_in_flight=2), delay_s=0.01) as server:
        pipeline = Pipeline("by-id", seed=1)
        pipeline.model("writer", "openai:stub-model", base_url=server.base_url, max_concurrency=2, price="1000/2000")
        pipeline.step("topics", "load", path=str(topics(tmp_path, 20)))
        pipeline.step("ask", "generate", model="writer", prompt="About {{ topic }}?", max_tokens=4, batch_size=5)
        result = pipeline.run(tmp_path / "run")
        rejected = server.faults[OVER_CAPACITY]
    stats = result.outcomes[1].stats
    assert stats.rows_out == 20 and stats.requests_sent == 20
    assert rejected == 0  # never more in flight than the model's max_concurrency
    assert stats.cost > 0  # the model's price
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["models"] == {"writer": "openai:stub-model"}


def test_one_engine_per_model_for_the_whole_run(tmp_path):
    spec = "openai:stub-model@http://127.0.0.1:9/v1"
    context = StepContext(cache_file=tmp_path / "cache.sqlite")
    first = context.engine(spec)
    assert context.engine(spec) is first
    context.close()
    assert context.engine(spec) is not first  # a closed context opens anew
    context.close()


def test_a_call_that_stops_early_gives_its_slots_back(tmp_path):
    requests = [LLMRequest(messages=(Message(role="user", content=f"q {i}"),)) for i in range(12)]
    # The server answers one request and holds the rest: three are in flight when the call stops.
    with StubServer(plan=FaultPlan(pause_after_n_answers=1)) as server:
        engine = LLMEngine(load_backend(f"openai:stub-model@{server.base_url}"), None, EngineOptions(max_concurrency=4))

        def stop(index, request, response):
            raise RuntimeError("the caller gave up")

        with pytest.raises(RuntimeError):
            engine.run(requests, stop)
        assert engine.limiter.in_flight == 0  # a long-lived engine must not leak slots
        server.release()
        answers: dict = {}
        engine.run(requests, lambda i, _r, response: answers.__setitem__(i, response))
        engine.close()
    assert sorted(answers) == list(range(12)) and all(a.ok for a in answers.values())


def test_a_new_spec_for_a_model_reruns_only_the_steps_that_name_it(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"topic": "a"}\n', encoding="utf-8")

    def fingerprints(spec: str | None) -> list[str]:
        pipeline = Pipeline("p", seed=1)
        if spec is not None:
            pipeline.model("teacher", spec)
        pipeline.step("topics", "load", path="rows.jsonl")
        pipeline.step("ask", "generate", model="teacher" if spec else "llamacpp:smollm2-135m", prompt="{{ topic }}?")
        return [p.fingerprint for p in plan_pipeline(pipeline.config(), StepContext(workdir=tmp_path))]

    inline, small, other = fingerprints(None), fingerprints("llamacpp:smollm2-135m"), fingerprints("llamacpp:qwen2.5-coder-0.5b")
    assert inline[0] == small[0] == other[0]  # the load step names no model
    assert small[1] != other[1]


def test_steps_lists_the_backends_and_their_options():
    result = run_cli("steps")
    assert result.returncode == 0, result.stderr
    backends = result.stdout[result.stdout.index("Model backends"):]
    for option in ("llamacpp", "n_ctx", "n_threads", "openai", "api_key_env", "base_url", "json_mode",
                   "max_concurrency", "timeout", "price"):
        assert option in backends


def test_a_ray_worker_keeps_one_engine_per_model_across_tasks(tmp_path):
    """Each task unpickles its own copy of the run's context; the worker's copies share the
    engines of the first one, so the limiter's learning survives from task to task."""
    import pickle

    from synthwright.pipeline.ray_executor import use_worker_handles

    spec = "openai:stub-model@http://127.0.0.1:9/v1"
    run = StepContext(run_seed=4, cache_file=tmp_path / "cache.sqlite")
    first, second = pickle.loads(pickle.dumps(run)), pickle.loads(pickle.dumps(run))
    use_worker_handles(first, 8)
    engine = first.engine(spec)
    use_worker_handles(second, 8)
    assert second.engine(spec) is engine and second.cache() is first.cache()
    other_run = pickle.loads(pickle.dumps(StepContext(run_seed=5, cache_file=tmp_path / "cache.sqlite")))
    use_worker_handles(other_run, 8)
    assert other_run.engine(spec) is not engine  # another run (or another budget) has its own
    first.close()
    other_run.close()
