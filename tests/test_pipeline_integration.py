"""`synthwright run` end to end, as a user runs it: in a subprocess, on the embedded tiny model.

(a) A load -> generate -> filter -> export pipeline is killed with SIGKILL in the middle of
    its generate step and run again: it ends with exactly the rows a clean run makes, keeps
    the batches it had finished, and sends no request twice.
(b) The issue's own check on examples/pipeline.yaml: run, inspect, rerun (0 requests, every
    step up to date), export to a Hugging Face datasets folder and load it.
(c) Export formats round-trip; exporting a step that does not exist is a clear error.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthwright.pipeline import run_pipeline
from synthwright.pipeline.config import validate_pipeline
from synthwright.pipeline.rundir import RunDirectory
from tests.conftest import REPO, run_cli

TOPICS = ["apples", "rivers", "chess", "volcanoes", "bread", "owls", "glaciers", "jazz", "bridges", "tea", "comets", "maps"]
BATCH = 2
N_BATCHES = len(TOPICS) // BATCH

PIPELINE = f"""\
name: kill-and-resume
seed: 7
steps:
  - name: rows
    uses: load
    with: {{path: topics.jsonl}}
  - name: gen
    uses: generate
    batch_size: {BATCH}
    with:
      model: llamacpp:smollm2-135m
      prompt: "Write one sentence about {{{{ topic }}}}."
      max_tokens: 16
      temperature: 0.0
      samples: 1
  - name: keep
    uses: filter
    with: {{column: generation, min_words: 3}}
  - name: out
    uses: export
    with: {{path: final.jsonl, format: jsonl}}
"""


# -- helpers --------------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def calls(cache: Path) -> list[dict]:
    """The cache's call log: one row per request answered (sent, or served from the cache)."""
    with closing(sqlite3.connect(cache)) as db:  # no writer is left when this is called
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT ts, step, key, cache_hit, error FROM calls ORDER BY id")]


def done_batches(run_dir: Path, step: str) -> dict[str, int]:
    folder = run_dir / "steps" / step / "batches"
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("part-*.json"))}


def requests_sent(stdout: str) -> int:
    match = re.search(r"\((\d+) requests sent\)", stdout)
    assert match, stdout
    return int(match.group(1))


def table(stdout: str) -> dict[str, dict[str, str]]:
    """The rows of the per-step table `run` and `inspect` print: step -> column -> cell."""
    header = next(line for line in stdout.splitlines() if line.startswith("┃") and "step" in line)
    columns = [cell.strip() for cell in header.strip("┃").split("┃")]
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows[cells[0]] = dict(zip(columns, cells))
    return rows


# -- (a) SIGKILL in the middle of the generate step, then resume -----------------------------
@pytest.mark.slow
def test_kill_9_mid_step_then_resume_matches_a_clean_run(tmp_path):
    work = tmp_path / "pipe"
    work.mkdir()
    (work / "topics.jsonl").write_text("".join(json.dumps({"topic": t}) + "\n" for t in TOPICS), encoding="utf-8")
    pipeline = work / "pipeline.yaml"
    pipeline.write_text(PIPELINE, encoding="utf-8")
    run_dir, cache = tmp_path / "resumed", tmp_path / "resumed.sqlite"
    env = {**os.environ, "SYNTHWRIGHT_CACHE": str(cache)}

    # 1. Start the run and kill it once at least two batches of `gen` are on disk.
    with open(tmp_path / "killed.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "synthwright.cli.main", "run", str(pipeline), "--run-dir", str(run_dir)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 240
            while len(done_batches(run_dir, "gen")) < 2:
                assert process.poll() is None, f"the run ended (rc {process.returncode}) before it could be killed"
                assert time.monotonic() < deadline, "the generate step never finished two batches"
                time.sleep(0.01)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == -signal.SIGKILL
    at_kill = done_batches(run_dir, "gen")
    assert 2 <= len(at_kill) < N_BATCHES, f"killed too late to test resume: {sorted(at_kill)}"
    assert RunDirectory(run_dir).read_state("gen")["status"] == "running"
    assert RunDirectory(run_dir).read_state("out") is None
    calls_before = len(calls(cache))

    # 2. Run the same command again: it finishes, redoing only what was not on disk.
    started = time.time()
    resumed = run_cli("run", str(pipeline), "--run-dir", str(run_dir), env={"SYNTHWRIGHT_CACHE": str(cache)})
    assert resumed.returncode == 0, resumed.stderr
    assert "= rows: up to date" in resumed.stderr and "= gen: up to date" not in resumed.stderr
    assert {k: v for k, v in done_batches(run_dir, "gen").items() if k in at_kill} == at_kill  # untouched
    assert len(done_batches(run_dir, "gen")) == N_BATCHES
    manifest = RunDirectory(run_dir).read_manifest()
    assert [entry["status"] for entry in manifest["history"]] == ["running", "done"]  # the killed one never ended

    # 3. A clean run elsewhere, with its own empty cache.
    clean_dir, clean_cache = tmp_path / "clean", tmp_path / "clean.sqlite"
    clean = run_cli("run", str(pipeline), "--run-dir", str(clean_dir), env={"SYNTHWRIGHT_CACHE": str(clean_cache)})
    assert clean.returncode == 0, clean.stderr
    assert requests_sent(clean.stdout) == len(TOPICS)

    # Same rows, in the same order, with the same lineage.
    resumed_rows, clean_rows = read_jsonl(run_dir / "final.jsonl"), read_jsonl(clean_dir / "final.jsonl")
    assert resumed_rows, "the filter dropped everything"
    assert [(r["topic"], r["generation"], r["_meta"]["id"]) for r in resumed_rows] == \
        [(r["topic"], r["generation"], r["_meta"]["id"]) for r in clean_rows]
    assert resumed_rows == clean_rows
    assert list(RunDirectory(run_dir).rows("gen")) == list(RunDirectory(clean_dir).rows("gen"))
    assert list(RunDirectory(run_dir).rows("keep", "dropped")) == list(RunDirectory(clean_dir).rows("keep", "dropped"))

    # No request sent twice. llama.cpp answers one request at a time, so at most the one in
    # flight when the process died can have been sent again (and a killed request that never
    # finished is not even logged, so usually none is).
    log_rows = calls(cache)
    assert all(row["error"] is None for row in log_rows)
    sent = Counter(row["key"] for row in log_rows if not row["cache_hit"])
    assert set(sent) == {row["key"] for row in calls(clean_cache)}  # every request of a clean run, sent
    twice = {key: n for key, n in sent.items() if n > 1}
    assert len(twice) <= 1 and all(n == 2 for n in twice.values()), twice
    assert sum(sent.values()) <= len(TOPICS) + 1
    # The rerun asked only for the rows of unfinished batches (some may be cache hits: answered
    # before the kill, but their batch was not yet written).
    rerun_calls = [row for row in log_rows[calls_before:] if row["ts"] >= started]
    assert len(rerun_calls) == len(log_rows) - calls_before == len(TOPICS) - BATCH * len(at_kill)
    assert requests_sent(resumed.stdout) == sum(1 for row in rerun_calls if not row["cache_hit"])


# -- (b) the check on examples/pipeline.yaml -------------------------------------------
@pytest.mark.slow
def test_example_pipeline_run_inspect_rerun_export(tmp_path, isolated_cache):
    run_dir = tmp_path / "run"
    first = run_cli("run", str(REPO / "examples" / "pipeline.yaml"), "--run-dir", str(run_dir))
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert requests_sent(first.stdout) == 16  # 8 topics x 2 samples, nothing cached yet

    inspected = run_cli("inspect", str(run_dir))
    assert inspected.returncode == 0, inspected.stderr
    steps = table(inspected.stdout)
    assert list(steps) == ["topics", "questions", "clean", "export"]
    assert all(row["state"] == "done" for row in steps.values())
    assert (steps["topics"]["in"], steps["topics"]["out"]) == ("8", "8")
    assert (steps["questions"]["in"], steps["questions"]["out"], steps["questions"]["sent"]) == ("8", "16", "16")
    clean_in, clean_out = int(steps["clean"]["in"]), int(steps["clean"]["out"])
    assert clean_in == 16
    dropped = sum(int(n) for n in re.findall(r"(\d+)", steps["clean"]["dropped"]))
    assert clean_in == clean_out + dropped
    assert steps["export"]["out"] == str(clean_out)
    assert "last run: done" in inspected.stdout and "llamacpp:smollm2-135m" in inspected.stdout
    assert len(read_jsonl(run_dir / "questions.jsonl")) == clean_out

    calls_before = len(calls(isolated_cache))
    started = time.monotonic()
    again = run_cli("run", str(REPO / "examples" / "pipeline.yaml"), "--run-dir", str(run_dir))
    took = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert "(0 requests sent)" in again.stdout
    for step in ("topics", "questions", "clean", "export"):
        assert f"{step}: up to date" in again.stderr
    assert len(calls(isolated_cache)) == calls_before  # not even a cache lookup was logged
    assert took < 20, f"an up-to-date rerun took {took:.1f}s"

    hf_dir = tmp_path / "hf"
    exported = run_cli("export", str(run_dir), "--step", "clean", "--format", "hf", "-o", str(hf_dir))
    assert exported.returncode == 0, exported.stderr
    assert f"exported {clean_out} rows" in exported.stdout
    import datasets

    dataset = datasets.load_from_disk(str(hf_dir))
    assert dataset.num_rows == clean_out
    assert {"_meta", "question", "topic"} <= set(dataset.column_names)
    metas = [json.loads(m) for m in dataset["_meta"]]
    assert all(m["step"] == "questions" and m["model"] == "llamacpp:smollm2-135m" and m["parents"] for m in metas)
    assert all("?" in q for q in dataset["question"])  # the filter's must_match held


# -- (c) export formats ---------------------------------------------------------------------
@pytest.fixture
def small_run(tmp_path) -> Path:
    """A finished run without a model: 6 rows loaded, 4 kept by a filter, 2 dropped."""
    texts = ["a b c", "one", "d e f g", "two", "h i", "j k l"]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts)))
    config = validate_pipeline({"name": "small", "steps": [
        {"name": "src", "uses": "load", "with": {"path": "rows.jsonl"}},
        {"name": "keep", "uses": "filter", "batch_size": 4, "with": {"column": "text", "min_words": 2}},
        {"name": "out", "uses": "export", "with": {"path": "exported/out.parquet", "format": "parquet"}},
    ]})
    run_pipeline(config, tmp_path / "run", workdir=tmp_path)
    return tmp_path / "run"


def test_export_formats_round_trip(small_run, tmp_path):
    kept = list(RunDirectory(small_run).rows("keep"))
    assert len(kept) == 4
    assert pq.read_table(small_run / "exported" / "out.parquet").num_rows == 4  # the export step's own file

    result = run_cli("export", str(small_run), "--step", "keep", "--format", "jsonl", "-o", str(tmp_path / "x.jsonl"))
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(tmp_path / "x.jsonl")
    assert rows == kept  # `_meta` stays a nested object in JSONL

    result = run_cli("export", str(small_run), "--step", "keep", "--format", "parquet", "-o", str(tmp_path / "x.parquet"))
    assert result.returncode == 0, result.stderr
    table_rows = pq.read_table(tmp_path / "x.parquet").to_pylist()
    assert [r["text"] for r in table_rows] == [r["text"] for r in kept]
    assert [json.loads(r["_meta"])["id"] for r in table_rows] == [r["_meta"]["id"] for r in kept]

    result = run_cli("export", str(small_run), "--step", "keep", "--rows", "dropped", "--no-meta")
    assert result.returncode == 0, result.stderr
    dropped = read_jsonl(small_run / "exports" / "keep.dropped.jsonl")
    assert dropped == [{"text": "one", "n": 1, "_drop_reason": "too_few_words"}, {"text": "two", "n": 3, "_drop_reason": "too_few_words"}]


def test_export_hf_round_trip(small_run):
    result = run_cli("export", str(small_run), "--step", "keep", "--format", "hf")
    assert result.returncode == 0, result.stderr
    import datasets

    dataset = datasets.load_from_disk(str(small_run / "exports" / "keep"))
    kept = list(RunDirectory(small_run).rows("keep"))
    assert dataset.num_rows == len(kept) == 4
    assert dataset["text"] == [r["text"] for r in kept]
    assert [json.loads(m) for m in dataset["_meta"]] == [r["_meta"] for r in kept]


def test_export_of_an_unknown_step_or_format_is_a_clear_error(small_run):
    result = run_cli("export", str(small_run), "--step", "nope")
    assert result.returncode == 2
    assert "error:" in result.stderr and "has no step 'nope'" in result.stderr
    assert "keep" in result.stderr and "src" in result.stderr  # says which steps there are
    assert "Traceback" not in result.stderr

    result = run_cli("export", str(small_run), "--step", "keep", "--format", "csv")
    assert result.returncode == 2
    assert "Unknown export format 'csv'" in result.stderr and "Traceback" not in result.stderr

    result = run_cli("export", str(small_run.parent / "not-a-run"), "--step", "keep")
    assert result.returncode == 2
    assert "not a run folder" in result.stderr
