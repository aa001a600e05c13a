"""Crash resume: `kill -9` a running `synthwright generate`, rerun it, lose and repeat nothing.

The stub runs as its own process with an answer gate: it answers K requests, then holds
every further one until `POST /release`. Once the request cache has the K answers
committed (and the client's whole concurrency is stuck at the gate), the generate process
is killed with SIGKILL, the gate is opened and the same command is run again.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

N_ROWS, SAMPLES = 10, 4  # 40 distinct requests
N = N_ROWS * SAMPLES
K = 15
CONCURRENCY = 8


# -- helpers ------------------------------------------------------------------------------
def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def committed_responses(cache: Path) -> int:
    """Responses committed to the cache, read through a read-only connection."""
    if not cache.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=1.0)) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or the table is still being made
        return 0


class StubProcess:
    """`python -m tests.support.openai_stub` in its own process."""

    def __init__(self, *flags: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.openai_stub", "--port", "0", *flags],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.process.stdout.readline().strip()
        if not line.startswith("READY "):
            self.process.kill()
            raise RuntimeError(f"the stub did not start: {line!r}")
        self.base_url = line.split(" ", 1)[1]
        self.root_url = self.base_url.rsplit("/v1", 1)[0]

    def stats(self) -> dict:
        with urllib.request.urlopen(self.root_url + "/stats", timeout=5) as resp:
            return json.load(resp)

    def release(self) -> None:
        request = urllib.request.Request(self.root_url + "/release", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def gated_stub():
    stub = StubProcess("--pause-after-n-answers", str(K))
    yield stub
    stub.stop()


@pytest.fixture
def job_files(tmp_path) -> dict[str, Path]:
    template = tmp_path / "t.j2"
    template.write_text("Write a line about {{ topic }}.", encoding="utf-8")
    rows = [{"topic": f"topic number {i}"} for i in range(N_ROWS)]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"template": template, "input": inp, "output": tmp_path / "out" / "rows.jsonl", "rows": rows}


def generate_args(stub: StubProcess, files: dict, cache: Path) -> list[str]:
    return [
        "generate", "-m", f"openai:stub-model@{stub.base_url}", "-t", str(files["template"]), "-i", str(files["input"]),
        "-o", str(files["output"]), "-n", str(SAMPLES), "--concurrency", str(CONCURRENCY), "--cache", str(cache),
    ]


def _like_a_terminal() -> None:
    # A command started in the background by a non-interactive shell (`cmd &`, as a CI
    # script may be) inherits SIGINT *ignored*, and so would every process it starts: a
    # Ctrl-C would then never arrive. The test stands for a user at a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_generate(args: list[str], log_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "synthwright.cli.main", *args], cwd=REPO, preexec_fn=_like_a_terminal,
        stdout=open(log_dir / "first.out", "wb"), stderr=open(log_dir / "first.err", "wb"),
    )


def stop_at_gate(process: subprocess.Popen, stub: StubProcess, cache: Path) -> None:
    """Wait until K answers are committed and all CONCURRENCY slots wait at the gate."""

    def stuck() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"generate exited early with {process.returncode}")
        stats = stub.stats()
        return stats["waiting"] == CONCURRENCY and committed_responses(cache) == K

    wait_for(stuck, timeout=30, what=f"{K} committed answers and {CONCURRENCY} requests at the gate")


# -- the tests ----------------------------------------------------------------------------------
def test_kill_9_then_rerun_sends_each_request_once(tmp_path, gated_stub, job_files):
    cache = tmp_path / "cache.sqlite"
    output: Path = job_files["output"]
    partial = output.with_name(output.name + ".partial")
    args = generate_args(gated_stub, job_files, cache)

    first = start_generate(args, tmp_path)
    try:
        stop_at_gate(first, gated_stub, cache)
        assert gated_stub.stats()["total_answered"] == K
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    # Killed mid-run: the K answers are durable, and nothing sits under the final name.
    assert committed_responses(cache) == K
    assert not output.exists()
    assert partial.exists()
    partial_rows = [json.loads(line) for line in partial.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(partial_rows) <= K
    assert not output.with_name("rows.failures.jsonl").exists()

    # Let the server notice the dead client's connections before the held answers are let
    # out, so none of them is written to a socket nobody reads.
    time.sleep(0.2)
    gated_stub.release()

    second = run_cli(*args, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert f"wrote {N} rows" in second.stdout
    assert f"{N - K} requests sent, {K} cache hits, 0 failed" in second.stdout

    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == N
    order = [(r["topic"], r["_meta"]["sample_index"]) for r in rows]
    assert order == [(row["topic"], s) for row in job_files["rows"] for s in range(SAMPLES)]
    assert [r["topic"] for r in rows] == [row["topic"] for row in job_files["rows"] for _ in range(SAMPLES)]
    assert len({r["generation"] for r in rows}) == N  # N distinct requests, N distinct answers
    assert not partial.exists()

    # The server answered each distinct request exactly once, across both runs.
    stats = wait_for(lambda: (s := gated_stub.stats())["total_answered"] >= N and s, timeout=5, what="answer count")
    assert stats["total_answered"] == N
    assert len(stats["answered"]) == N and set(stats["answered"].values()) == {1}
    assert committed_responses(cache) == N

    # And a third run is all cache hits, byte-identical output.
    before = output.read_bytes()
    third = run_cli(*args, timeout=60)
    assert third.returncode == 0, third.stderr
    assert f"0 requests sent, {N} cache hits" in third.stdout
    assert output.read_bytes() == before


def test_interrupt_leaves_only_partial_then_resumes(tmp_path, gated_stub, job_files):
    """Ctrl-C (SIGINT) mid-run: exit 130 with a resume hint, no final file, answers kept."""
    cache = tmp_path / "cache.sqlite"
    output: Path = job_files["output"]
    args = generate_args(gated_stub, job_files, cache)

    first = start_generate(args, tmp_path)
    try:
        stop_at_gate(first, gated_stub, cache)
        first.send_signal(signal.SIGINT)
        code = first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    stderr = (tmp_path / "first.err").read_text(encoding="utf-8", errors="replace")
    assert code == 130, stderr
    assert "interrupted" in stderr and "rerun the same command" in stderr
    assert "Traceback" not in stderr
    assert not output.exists()
    assert output.with_name(output.name + ".partial").exists()
    assert committed_responses(cache) == K

    time.sleep(0.2)
    gated_stub.release()
    second = run_cli(*args, timeout=60)
    assert second.returncode == 0, second.stderr
    assert f"{N - K} requests sent, {K} cache hits" in second.stdout
    assert len(output.read_text(encoding="utf-8").splitlines()) == N
