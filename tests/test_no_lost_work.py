"""Never lose finished work, never report failure as success (issue 22).

Two writers on one output, failed reruns over a good output, a pipeline whose rows all fail,
and the counts of a killed run: each through the real CLI against the stub server (in this
process, or as its own process when a test kills the client mid-run).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from synthwright.llm.cache import RequestCache
from synthwright.pipeline.rundir import RunDirectory
from tests.conftest import REPO, run_cli
from tests.support.openai_stub import StubServer
from tests.test_resume import StubProcess, committed_responses, wait_for

DEAD = "http://127.0.0.1:9/v1"  # nothing listens there: every request fails to connect
N = 12


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    template = tmp_path / "t.j2"
    template.write_text("Write a line about {{ topic }}.", encoding="utf-8")
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"topic": f"topic {i}"}) + "\n" for i in range(N)), encoding="utf-8")
    return {"template": template, "input": inp, "output": tmp_path / "out.jsonl", "dir": tmp_path}


def generate_args(files: dict, base_url: str, *extra: str, output: Path | None = None) -> list[str]:
    return ["generate", "-m", f"openai:stub-model@{base_url}", "-t", str(files["template"]), "-i", str(files["input"]),
            "-o", str(output or files["output"]), *extra]


def start_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "synthwright.cli.main", *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_then_finish(process: subprocess.Popen, stub: StubProcess, args: list[str]) -> dict:
    """SIGKILL `process` (its requests held at the stub's gate), open the gate and run `args`
    again to the end; returns the server's counters once it has answered all N requests."""
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL
    time.sleep(0.2)  # let the server see the dead client's connections close before the gate opens
    stub.release()
    again = run_cli(*args, timeout=120)
    assert again.returncode == 0, again.stderr
    return wait_for(lambda: (s := stub.stats())["total_answered"] >= N and s, timeout=10, what="all answers")


# -- 1. two writers, one output ----------------------------------------------------------------
def test_second_writer_is_refused_and_a_killed_writer_leaves_no_stale_lock(files):
    """A holds the output (its requests held at the server's gate, 30% of attempts failing);
    B, the same command, is refused at once and sends nothing; A is killed with SIGKILL; C, the
    same command again, is not blocked by A's lock and finishes the job. Each request is
    answered once across all three, and the output is whole, in order, each row once."""
    answered_before_gate, concurrency = 4, 4
    stub = StubProcess("--pause-after-n-answers", str(answered_before_gate), "--server-error", "0.3", "--seed", "3")
    cache = files["dir"] / "cache.sqlite"
    args = generate_args(files, stub.base_url, "--cache", str(cache), "--concurrency", str(concurrency), "--max-attempts", "20")
    a = start_cli(args)
    try:
        wait_for(lambda: stub.stats()["waiting"] == concurrency and committed_responses(cache) == answered_before_gate,
                 timeout=60, what="the first writer to wait at the gate")
        received = stub.stats()["total_received"]
        b = run_cli(*args, timeout=60)
        assert b.returncode == 2, (b.stdout, b.stderr)
        assert "Traceback" not in b.stderr
        assert b.stderr.startswith(f"error: Another synthwright process is writing {files['output']}")
        assert "fix: " in b.stderr
        assert stub.stats()["total_received"] == received  # refused before sending anything
        stats = kill_then_finish(a, stub, args)
    finally:
        if a.poll() is None:
            a.kill()
        stub.stop()
    rows = read_jsonl(files["output"])
    assert [r["topic"] for r in rows] == [f"topic {i}" for i in range(N)]
    assert len({r["_meta"]["id"] for r in rows}) == N  # each row once
    assert not files["output"].with_name("out.failures.jsonl").exists()
    assert stats["faults"]["server_error"] > 0
    assert len(stats["answered"]) == N and set(stats["answered"].values()) == {1}  # nothing paid twice


def test_two_processes_sharing_a_cache_never_send_one_request_twice(files):
    """Two generates with the same requests and different outputs share one request cache. A
    sends its first 4 (held at the server's gate); B, started then, finds those 4 in flight
    and waits for their answers instead of sending them, while it sends the next 4 itself.
    Each request reaches the server once, and both outputs are whole."""
    stub = StubProcess("--pause-after-n-answers", "0")
    cache = files["dir"] / "cache.sqlite"
    other = files["dir"] / "other.jsonl"
    first = start_cli(generate_args(files, stub.base_url, "--cache", str(cache), "--concurrency", "4"))
    second = None
    try:
        wait_for(lambda: stub.stats()["waiting"] == 4, timeout=60, what="the first process's requests at the gate")
        second = start_cli(generate_args(files, stub.base_url, "--cache", str(cache), "--concurrency", "8", output=other))
        wait_for(lambda: stub.stats()["waiting"] >= 8, timeout=60, what="the second process's requests at the gate")
        stub.release()
        assert first.wait(timeout=120) == 0
        assert second.wait(timeout=120) == 0
        stats = wait_for(lambda: (s := stub.stats())["total_answered"] >= N and s, timeout=10, what="all answers")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
        stub.stop()
    assert len(stats["received"]) == N and set(stats["received"].values()) == {1}
    mine, theirs = read_jsonl(files["output"]), read_jsonl(other)
    assert [r["generation"] for r in mine] == [r["generation"] for r in theirs]
    assert [r["topic"] for r in mine] == [f"topic {i}" for i in range(N)]


# -- 3. a failed rerun never empties a complete earlier output ------------------------------------
@pytest.mark.parametrize("change", [["--refresh"], ["--no-cache"], ["--temperature", "0.9"]], ids=["refresh", "no-cache", "temperature"])
def test_failed_rerun_keeps_the_earlier_output_byte_for_byte(files, change):
    with StubServer() as srv:
        first = run_cli(*generate_args(files, srv.base_url), timeout=60)
    assert first.returncode == 0, first.stderr
    before = files["output"].read_bytes()
    assert len(read_jsonl(files["output"])) == N

    failed = run_cli(*generate_args(files, DEAD, *change, "--max-attempts", "1"), timeout=60)
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    assert files["output"].read_bytes() == before
    aside = files["dir"] / "out.incomplete.jsonl"
    assert read_jsonl(aside) == []  # this run's (empty) result, beside the good one
    assert f"kept the earlier {files['output']}" in " ".join(failed.stderr.split())
    assert len(read_jsonl(files["dir"] / "out.failures.jsonl")) == N

    # A complete run replaces the output again and clears what was set aside.
    with StubServer() as srv:
        again = run_cli(*generate_args(files, srv.base_url, *change), timeout=60)
    assert again.returncode == 0, again.stderr
    assert len(read_jsonl(files["output"])) == N
    assert not aside.exists()


def test_failed_judge_run_keeps_the_earlier_output_and_gives_advice_that_helps(files):
    rows = files["dir"] / "rows.jsonl"
    rows.write_text("".join(json.dumps({"text": None, "n": i}) + "\n" for i in range(5)), encoding="utf-8")
    judged = files["dir"] / "rows.judged.jsonl"
    judged.write_text('{"text": "judged earlier", "judge_score": 4.0}\n', encoding="utf-8")
    before = judged.read_bytes()
    result = run_cli("judge", str(rows), "--judge", f"openai:stub-model@{DEAD}", "--text", "text", timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert judged.read_bytes() == before
    stderr = " ".join(result.stderr.split())
    assert "5 rows failed" in stderr
    assert "Rerun to retry" not in stderr  # a rerun cannot fill in a missing text
    assert "lack a judged column" in stderr


# -- 2. a run whose rows all fail is not a success ----------------------------------------------------
def write_pipeline(folder: Path, base_url: str, max_tokens: int) -> Path:
    (folder / "topics.jsonl").write_text("".join(json.dumps({"topic": f"topic {i}"}) + "\n" for i in range(N)), encoding="utf-8")
    (folder / "q.j2").write_text("Ask a question about {{ topic }}.", encoding="utf-8")
    config = {
        "name": "questions",
        "steps": [
            {"name": "topics", "uses": "load", "with": {"path": "topics.jsonl"}},
            {"name": "questions", "uses": "generate",
             "with": {"model": f"openai:stub-model@{base_url}", "template": "q.j2", "max_tokens": max_tokens}},
            {"name": "final", "uses": "export", "with": {"path": "final.jsonl"}},
        ],
    }
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_run_with_failed_rows_exits_1_and_keeps_the_good_export(tmp_path):
    run_dir = tmp_path / "run"
    with StubServer() as srv:
        good = run_cli("run", str(write_pipeline(tmp_path, srv.base_url, 32)), "--run-dir", str(run_dir), timeout=120)
    assert good.returncode == 0, good.stderr
    final = run_dir / "final.jsonl"
    before = final.read_bytes()
    assert len(read_jsonl(final)) == N

    # The generate step now points at a dead server, with one option changed: every row fails.
    bad = run_cli("run", str(write_pipeline(tmp_path, DEAD, 33)), "--run-dir", str(run_dir), timeout=180)
    assert bad.returncode == 1, (bad.stdout, bad.stderr)
    assert "Traceback" not in bad.stderr
    last_lines = " ".join(bad.stderr.split())
    assert f"step 'questions' failed {N} rows" in last_lines
    assert f"kept the earlier {final}" in last_lines
    assert final.read_bytes() == before
    assert read_jsonl(run_dir / "final.incomplete.jsonl") == []


# -- 6. counts that add up after a kill -------------------------------------------------------------
def test_a_killed_runs_paid_requests_are_counted_by_inspect_as_by_usage(tmp_path):
    """Killed mid-batch, rerun: the requests the killed process paid for are served from the
    cache, but the step's counters still count them as sent, with their tokens, as the call
    log (what `usage` reads) does."""
    answered_before_gate = 5
    stub = StubProcess("--pause-after-n-answers", str(answered_before_gate))
    cache = tmp_path / "cache.sqlite"
    run_dir = tmp_path / "run"
    command = ["run", str(write_pipeline(tmp_path, stub.base_url, 32)), "--run-dir", str(run_dir), "--cache", str(cache)]
    first = start_cli(command)
    try:
        wait_for(lambda: committed_responses(cache) == answered_before_gate and stub.stats()["waiting"] > 0,
                 timeout=60, what="answers committed and requests held at the gate")
        stats = kill_then_finish(first, stub, command)
    finally:
        if first.poll() is None:
            first.kill()
        stub.stop()
    assert set(stats["answered"].values()) == {1} and len(stats["answered"]) == N

    step = RunDirectory(run_dir).merged_stats("questions")
    with_cache = RequestCache(cache)
    try:
        (logged,) = [row for row in with_cache.calls_summary() if row["step"] == "questions"]
    finally:
        with_cache.close()
    assert logged["sent"] == N
    assert (step.requests_sent, step.cache_hits) == (N, 0)
    assert (step.prompt_tokens, step.completion_tokens) == (logged["prompt_tokens"], logged["completion_tokens"])
    inspect = run_cli("inspect", str(run_dir), env={"COLUMNS": "300"}, timeout=60)
    assert inspect.returncode == 0, inspect.stderr
    (line,) = [line for line in inspect.stdout.splitlines() if "questions" in line and "done" in line]
    cells = [cell.strip() for cell in line.split("│")]
    assert cells[7:9] == [str(N), "0"]  # sent, cached
