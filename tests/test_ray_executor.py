"""The Ray executor on a local Ray instance (2 CPUs) against the OpenAI-compatible stub.

(a) A load -> generate -> filter -> dedup -> export pipeline makes exactly the rows the
    local executor makes for the same seed, step by step, and the same final file.
(b) The Ray workers are SIGKILLed in the middle of their generate batches: Ray reruns the
    batches, no row is lost or duplicated, and no answered request is sent again (the cache has it).
(c) The driver (`synthwright run --executor ray --ray-address ...`) is SIGKILLed mid-step
    and run again: written batches are kept, the rest is done, nothing is sent twice.
(d) A stateful step (generate with a novelty gate) runs in one actor, in batch order.
(e) Without Ray installed, the executor says which extra to install.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from synthwright.core.step import StepContext
from synthwright.errors import MissingDependency
from synthwright.pipeline import run_pipeline
from synthwright.pipeline.config import validate_pipeline
from synthwright.pipeline.executor import LocalExecutor
from synthwright.pipeline.rundir import RunDirectory
from synthwright.pipeline.steps import load_step_types
from tests.conftest import REPO, run_cli
from tests.test_resume import StubProcess, committed_responses, wait_for

ray = pytest.importorskip("ray", reason="the Ray executor is an extra: pip install 'synthwright[ray]'")
from synthwright.pipeline.ray_executor import RayExecutor  # noqa: E402

TOPICS = [f"topic number {i}" for i in range(24)]
BATCH = 4


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the module; its workers import this checkout's code."""
    path = os.pathsep.join(p for p in (str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}}, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def stub():
    server = StubProcess()
    yield server
    server.stop()


def pipeline_config(base_url: str, topics_file: Path, novelty: float | None = None) -> dict:
    generate = {"model": f"openai:stub-model@{base_url}", "prompt": "One line about {{ topic }}.", "samples": 2, "temperature": 0.8}
    if novelty is not None:
        generate.update(novelty_epsilon=novelty)  # MiniLM, embedded
    return {
        "name": "ray-pipeline", "seed": 11,
        "steps": [
            {"name": "rows", "uses": "load", "with": {"path": str(topics_file)}},
            {"name": "gen", "uses": "generate", "batch_size": BATCH, "with": generate},
            {"name": "keep", "uses": "filter", "with": {"column": "generation", "min_words": 3}},
            {"name": "unique", "uses": "dedup", "with": {"column": "generation", "method": "exact"}},
            {"name": "out", "uses": "export", "with": {"path": "final.jsonl"}},
        ],
    }


def write_topics(folder: Path, topics=TOPICS) -> Path:
    path = folder / "topics.jsonl"
    path.write_text("".join(json.dumps({"topic": t}) + "\n" for t in topics), encoding="utf-8")
    return path


def run(config: dict, run_dir: Path, cache: Path, executor):
    load_step_types()
    context = StepContext(run_seed=config["seed"], workdir=run_dir.parent, cache_file=cache)
    return run_pipeline(validate_pipeline(config, source="test"), run_dir, workdir=run_dir.parent, executor=executor, context=context)


def all_rows(run_dir: Path, steps=("rows", "gen", "keep", "unique", "out")) -> dict[str, list]:
    rundir = RunDirectory(run_dir)
    return {step: list(rundir.rows(step)) + list(rundir.rows(step, "dropped")) for step in steps}


def ray_worker_pids(task_name: str) -> list[int]:
    """Processes of this machine running a Ray task of that name (Ray retitles its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith(f"ray::{task_name}"):
                pids.append(int(entry.name))
    return pids


# -- (a) same rows as the local executor --------------------------------------------------------
def test_ray_run_matches_local_run(tmp_path, ray_cluster, stub):
    config = pipeline_config(stub.base_url, write_topics(tmp_path))
    local = run(config, tmp_path / "local", tmp_path / "local.sqlite", LocalExecutor())
    on_ray = run(config, tmp_path / "ray", tmp_path / "ray.sqlite", RayExecutor(max_in_flight=3))

    assert local.requests_sent == on_ray.requests_sent == 2 * len(TOPICS)
    assert [(o.name, o.stats.rows_in, o.stats.rows_out) for o in on_ray.outcomes] == \
        [(o.name, o.stats.rows_in, o.stats.rows_out) for o in local.outcomes]
    expected = all_rows(tmp_path / "local")
    assert len(expected["gen"]) == 2 * len(TOPICS)
    assert all_rows(tmp_path / "ray") == expected  # the same rows, in the same order, step by step
    assert (tmp_path / "ray" / "final.jsonl").read_bytes() == (tmp_path / "local" / "final.jsonl").read_bytes()
    # Both runs sent every distinct request once: the stub saw each body exactly twice.
    answered = stub.stats()["answered"]
    assert len(answered) == 2 * len(TOPICS) and set(answered.values()) == {2}

    again = run(config, tmp_path / "ray", tmp_path / "ray.sqlite", RayExecutor())
    assert again.requests_sent == 0 and all(o.skipped for o in again.outcomes)


# -- (b) a worker killed mid-batch ----------------------------------------------------------------
def test_killed_worker_loses_and_repeats_nothing(tmp_path, ray_cluster):
    answered_first = 5
    stub = StubProcess("--pause-after-n-answers", str(answered_first))
    try:
        config = pipeline_config(stub.base_url, write_topics(tmp_path, TOPICS[:12]))
        cache = tmp_path / "ray.sqlite"
        outcome: dict = {}

        def drive() -> None:
            try:
                outcome["result"] = run(config, tmp_path / "ray", cache, RayExecutor(max_in_flight=2))
            except BaseException as exc:  # reported by the assertion below
                outcome["error"] = exc

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        # Two batch tasks (8 requests each) run; 5 answers are out and committed, the rest wait at the gate.
        seen: dict = {}

        def both_at_gate() -> bool:
            assert "error" not in outcome, f"the run failed before the kill: {outcome['error']!r}"
            seen.update(stub.stats(), committed=committed_responses(cache))
            return seen["waiting"] == 2 * BATCH * 2 - answered_first and seen["committed"] == answered_first

        try:
            wait_for(both_at_gate, timeout=180, what="both batch tasks stuck at the gate")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {seen}") from None
        workers = ray_worker_pids("process_batch")
        assert len(workers) == 2, workers
        for pid in workers:  # both, so both batches rerun and all 5 answers must come from the cache
            os.kill(pid, signal.SIGKILL)
        # Open the gate only once the stub has seen every held connection of the dead workers
        # close (a fixed sleep was too short on a loaded machine: it answered 3 of them into
        # the void, and the rerun had to ask again).
        wait_for(lambda: stub.stats()["gave_up"] >= 2 * BATCH * 2 - answered_first, timeout=60, what="the dead workers' requests dropped")
        stub.release()
        driver.join(timeout=120)
        assert not driver.is_alive(), "the run did not finish after the worker was killed"
        assert "error" not in outcome, outcome.get("error")

        rows = all_rows(tmp_path / "ray")
        assert len(rows["gen"]) == 2 * 12
        ids = [row["_meta"]["id"] for row in rows["gen"]]
        assert len(set(ids)) == len(ids)  # no row twice
        assert [row["topic"] for row in rows["gen"]] == [t for t in TOPICS[:12] for _ in range(2)]  # none lost, in order
        assert len(list((tmp_path / "ray" / "steps" / "gen" / "batches").glob("part-*.json"))) == 12 // BATCH
        # Each distinct request was answered once: the rerun batch took its earlier answers from the cache.
        stats = wait_for(lambda: (s := stub.stats())["total_answered"] >= 24 and s, timeout=10, what="all answers")
        assert stats["total_answered"] == 24 and set(stats["answered"].values()) == {1}
        # The 5 answers the killed workers paid for come from the cache, yet count as this step's
        # sends, as the call log (what `usage` reads) counts them: the step's costs add up.
        gen = outcome["result"].outcomes[1].fresh
        assert (gen.cache_hits, gen.requests_sent) == (0, 24)
    finally:
        stub.stop()


# -- (c) the driver killed mid-step, then run again -----------------------------------------------------
@pytest.mark.slow
def test_killed_driver_resumes_from_written_batches(tmp_path, ray_cluster):
    # 3 batch tasks of 8 requests; the cluster runs 2 at once. The gate opens for 16 answers: the
    # two running tasks' requests, so both finish whatever order their requests arrive in, and
    # the third waits at the gate. (With 8, two tasks starting together could split the 8
    # answers between them, and then no batch would ever finish: seen once in CI.)
    stub = StubProcess("--pause-after-n-answers", str(2 * 2 * BATCH))
    try:
        work = tmp_path / "pipe"
        work.mkdir()
        config = pipeline_config(stub.base_url, write_topics(work, TOPICS[:12]))
        config["steps"][0]["with"]["path"] = "topics.jsonl"
        pipeline = work / "pipeline.yaml"
        pipeline.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        cache, run_dir = tmp_path / "cache.sqlite", tmp_path / "run"
        args = [sys.executable, "-m", "synthwright.cli.main", "run", str(pipeline), "--run-dir", str(run_dir),
                "--executor", "ray", "--ray-address", ray_cluster, "--cache", str(cache)]
        with open(tmp_path / "driver.log", "wb") as log:
            driver = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            try:
                batches = run_dir / "steps" / "gen" / "batches"
                wait_for(lambda: len(list(batches.glob("part-*.json"))) >= 1 and stub.stats()["waiting"] > 0,
                         timeout=300, what="one batch written and the next at the gate")
                driver.send_signal(signal.SIGKILL)
                driver.wait(timeout=10)
            finally:
                if driver.poll() is None:
                    driver.kill()
                    driver.wait()
        written = {p.name: p.stat().st_mtime_ns for p in batches.glob("part-*.json")}
        assert 1 <= len(written) < 3
        time.sleep(0.5)
        stub.release()

        again = run_cli("run", str(pipeline), "--run-dir", str(run_dir), "--executor", "ray", "--ray-address", ray_cluster,
                        "--cache", str(cache), timeout=180)
        assert again.returncode == 0, again.stderr
        assert {p.name: p.stat().st_mtime_ns for p in batches.glob("part-*.json") if p.name in written} == written
        rows = all_rows(run_dir)
        assert [row["topic"] for row in rows["gen"]] == [t for t in TOPICS[:12] for _ in range(2)]
        assert len((run_dir / "final.jsonl").read_text().splitlines()) == len(rows["out"]) == 24
        stats = wait_for(lambda: (s := stub.stats())["total_answered"] >= 24 and s, timeout=10, what="all answers")
        assert stats["total_answered"] == 24 and set(stats["answered"].values()) == {1}
    finally:
        stub.stop()


# -- (d) a step with state across batches -----------------------------------------------------------------
@pytest.mark.slow
def test_stateful_step_runs_in_one_actor_in_order(tmp_path, ray_cluster, stub):
    config = pipeline_config(stub.base_url, write_topics(tmp_path, TOPICS[:12]), novelty=0.05)
    local = run(config, tmp_path / "local", tmp_path / "local.sqlite", LocalExecutor())
    on_ray = run(config, tmp_path / "ray", tmp_path / "ray.sqlite", RayExecutor())
    assert on_ray.outcomes[1].stats.rows_out == local.outcomes[1].stats.rows_out > 0
    assert all_rows(tmp_path / "ray") == all_rows(tmp_path / "local")


# -- (e) no Ray --------------------------------------------------------------------------------------------
def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(MissingDependency) as error:
        RayExecutor()
    assert "synthwright[ray]" in str(error.value) and "--executor ray" in str(error.value)


# -- the embedded tiny model in the Ray workers ---------------------------------------------------------
@pytest.mark.slow
def test_embedded_model_in_ray_workers_matches_local(tmp_path, ray_cluster, smollm_path):
    config = {
        "name": "ray-embedded", "seed": 5,
        "steps": [
            {"name": "rows", "uses": "load", "with": {"path": str(write_topics(tmp_path, ["apples", "rivers", "chess", "owls"]))}},
            {"name": "gen", "uses": "generate", "batch_size": 2, "with": {
                "model": "llamacpp:smollm2-135m", "prompt": "Write one sentence about {{ topic }}.", "max_tokens": 12, "temperature": 0.0}},
        ],
    }
    local = run(config, tmp_path / "local", tmp_path / "local.sqlite", LocalExecutor())
    on_ray = run(config, tmp_path / "ray", tmp_path / "ray.sqlite", RayExecutor())
    assert on_ray.requests_sent == local.requests_sent == 4
    rows = all_rows(tmp_path / "ray", steps=("gen",))["gen"]
    assert len(rows) == 4 and all(row["generation"].strip() for row in rows)
    assert rows == all_rows(tmp_path / "local", steps=("gen",))["gen"]


@pytest.mark.slow
def test_killed_actor_of_a_stateful_step_is_replaced_and_warm_started(tmp_path, ray_cluster):
    """The novelty-gated generate step runs in one actor; SIGKILL it mid-step: a new actor is
    warm-started from the batches already written and the run ends with the local run's rows."""
    stub = StubProcess("--pause-after-n-answers", str(2 * BATCH + 3))  # one whole batch, then 3 of the next
    try:
        config = pipeline_config(stub.base_url, write_topics(tmp_path, TOPICS[:12]), novelty=0.05)
        cache = tmp_path / "ray.sqlite"
        outcome: dict = {}

        def drive() -> None:
            try:
                outcome["result"] = run(config, tmp_path / "ray", cache, RayExecutor(max_in_flight=2))
            except BaseException as exc:
                outcome["error"] = exc

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        batches = tmp_path / "ray" / "steps" / "gen" / "batches"
        wait_for(lambda: stub.stats()["waiting"] > 0 and len(list(batches.glob("part-*.json"))) == 1,
                 timeout=300, what="one batch written and the next at the gate")
        actors = ray_worker_pids("StatefulStep")
        assert len(actors) == 1, actors
        os.kill(actors[0], signal.SIGKILL)
        time.sleep(0.5)
        stub.release()
        driver.join(timeout=180)
        assert not driver.is_alive() and "error" not in outcome, outcome.get("error")

        local = run(config, tmp_path / "local", tmp_path / "local.sqlite", LocalExecutor())
        assert all_rows(tmp_path / "ray") == all_rows(tmp_path / "local")  # kept and dropped, in order
        gen = outcome["result"].outcomes[1].stats
        assert (gen.rows_out, gen.dropped) == (local.outcomes[1].stats.rows_out, local.outcomes[1].stats.dropped)
        assert gen.rows_out > 0
    finally:
        stub.stop()
