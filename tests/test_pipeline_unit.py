"""The pipeline layer in-process: fingerprints, batch-level resume, lineage, counters, locks.

Most tests use small step types registered here (no model needed): `pipetest_upper`
upper-cases a column and notes every batch it is given in `CALLS` (and can be told to
crash after N batches), `pipetest_wait` blocks until released (for the lock test). The
generate step's lineage is checked against the in-process OpenAI stub.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from pathlib import Path

import pytest

from synthwright.core.lineage import derive_id
from synthwright.core.step import (
    BatchResult,
    RowStep,
    StepContext,
    StepOptions,
    register_step,
)
from synthwright.errors import UserError
from synthwright.pipeline import Pipeline, run_pipeline
from synthwright.pipeline.config import validate_pipeline
from synthwright.pipeline.plan import plan_pipeline
from synthwright.pipeline.rundir import RunDirectory
from synthwright.recipes.template import TemplatePrompt
from tests.support.openai_stub import StubServer

# -- test step types -------------------------------------------------------------------------
CALLS: list[list[str]] = []  # the row ids of every batch `pipetest_upper` processed, in order
CRASH: dict[str, int | None] = {"after": None}  # crash when this many more batches have run


class UpperOptions(StepOptions):
    column: str = "text"
    suffix: str = ""


@register_step("pipetest_upper")
class UpperStep(RowStep):
    Options = UpperOptions
    default_batch_size = 2

    def required_columns(self):
        return (self.options.column,)

    def process(self, rows):
        if CRASH["after"] is not None:
            if CRASH["after"] == 0:
                raise RuntimeError("simulated crash")
            CRASH["after"] -= 1
        CALLS.append([row["_meta"]["id"] for row in rows])
        result = BatchResult()
        result.stats.rows_in = len(rows)
        for row in rows:
            result.keep({**row, self.options.column: row[self.options.column].upper() + self.options.suffix})
        return result


WAIT = {"started": threading.Event(), "release": threading.Event()}


class WaitOptions(StepOptions):
    pass


@register_step("pipetest_wait")
class WaitStep(RowStep):
    Options = WaitOptions

    def process(self, rows):
        WAIT["started"].set()
        assert WAIT["release"].wait(30), "the test never released the step"
        result = BatchResult()
        result.stats.rows_in = len(rows)
        for row in rows:
            result.keep(row)
        return result


@pytest.fixture(autouse=True)
def _reset_globals():
    CALLS.clear()
    CRASH["after"] = None
    WAIT["started"].clear()
    WAIT["release"].clear()
    yield
    CRASH["after"] = None
    WAIT["release"].set()


# -- helpers ---------------------------------------------------------------------------------
TEXTS = ["alpha beta", "gamma", "delta epsilon zeta", "eta theta", "iota", "kappa lambda mu nu", "xi omicron"]


def write_rows(path: Path, texts=TEXTS) -> Path:
    path.write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    return path


def config_of(steps: list[dict], name: str = "unit", seed: int = 0):
    return validate_pipeline({"name": name, "seed": seed, "steps": steps})


def upper_pipeline(suffix: str = "", filter_options: dict | None = None, name: str = "unit") -> list[dict]:
    steps = [
        {"name": "src", "uses": "load", "with": {"path": "rows.jsonl"}},
        {"name": "up", "uses": "pipetest_upper", "batch_size": 2, "with": {"suffix": suffix}},
    ]
    if filter_options is not None:
        steps.append({"name": "keep", "uses": "filter", "with": {"column": "text", **filter_options}})
    return steps


def run(tmp_path: Path, steps: list[dict], run_dir: str = "run", name: str = "unit", seed: int = 0):
    return run_pipeline(config_of(steps, name, seed), tmp_path / run_dir, workdir=tmp_path)


def out_rows(run_dir: Path, step: str, kind: str = "out") -> list[dict]:
    return list(RunDirectory(run_dir).rows(step, kind))


def batch_mtimes(run_dir: Path, step: str) -> dict[str, int]:
    folder = run_dir / "steps" / step / "batches"
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("part-*.json"))}


def fingerprints(config, workdir: Path) -> dict[str, str]:
    return {p.step.name: p.fingerprint for p in plan_pipeline(config, StepContext(workdir=workdir))}


# -- fingerprints ----------------------------------------------------------------------------
@pytest.fixture
def gen_files(tmp_path):
    write_rows(tmp_path / "rows.jsonl")
    (tmp_path / "ask.j2").write_text("Say something about {{ text }}.", encoding="utf-8")
    return tmp_path


def gen_steps(max_tokens: int = 16, min_words: int = 1) -> list[dict]:
    return [
        {"name": "src", "uses": "load", "with": {"path": "rows.jsonl"}},
        {"name": "gen", "uses": "generate", "with": {"model": "llamacpp:smollm2-135m", "template": "ask.j2", "max_tokens": max_tokens}},
        {"name": "keep", "uses": "filter", "with": {"column": "generation", "min_words": min_words}},
    ]


def test_same_config_same_fingerprints(gen_files):
    first = fingerprints(config_of(gen_steps()), gen_files)
    second = fingerprints(config_of(gen_steps()), gen_files)
    assert first == second
    assert len(set(first.values())) == 3  # every step has its own


def test_changing_step_two_changes_it_and_what_follows(gen_files):
    before = fingerprints(config_of(gen_steps(max_tokens=16)), gen_files)
    after = fingerprints(config_of(gen_steps(max_tokens=17)), gen_files)
    assert after["src"] == before["src"]
    assert after["gen"] != before["gen"]
    assert after["keep"] != before["keep"]


def test_changing_the_last_step_changes_only_it(gen_files):
    before = fingerprints(config_of(gen_steps(min_words=1)), gen_files)
    after = fingerprints(config_of(gen_steps(min_words=2)), gen_files)
    assert (after["src"], after["gen"]) == (before["src"], before["gen"])
    assert after["keep"] != before["keep"]


def test_editing_the_template_file_changes_the_generate_fingerprint(gen_files):
    before = fingerprints(config_of(gen_steps()), gen_files)
    (gen_files / "ask.j2").write_text("Say something short about {{ text }}.", encoding="utf-8")
    after = fingerprints(config_of(gen_steps()), gen_files)
    assert after["src"] == before["src"]
    assert after["gen"] != before["gen"]
    assert after["keep"] != before["keep"]


def test_input_files_count_by_content_not_by_mtime_or_place(gen_files, tmp_path_factory):
    """A data folder provisioned afresh (same bytes, new mtimes, another place) keeps every
    step up to date; one changed byte in the input redoes all of them."""
    import os
    import shutil

    before = fingerprints(config_of(gen_steps()), gen_files)
    elsewhere = tmp_path_factory.mktemp("copy")
    for name in ("rows.jsonl", "ask.j2"):
        shutil.copyfile(gen_files / name, elsewhere / name)  # a plain copy: new mtime
        os.utime(elsewhere / name, ns=(1, 1))
    assert fingerprints(config_of(gen_steps()), elsewhere) == before
    rows = elsewhere / "rows.jsonl"
    rows.write_text(rows.read_text(encoding="utf-8").replace("a", "b", 1), encoding="utf-8")
    after = fingerprints(config_of(gen_steps()), elsewhere)
    assert all(after[name] != before[name] for name in before)


def test_content_digest_of_files_only(tmp_path):
    from synthwright.core.files import content_digest

    (tmp_path / "a.txt").write_text("same bytes", encoding="utf-8")
    (tmp_path / "b.txt").write_text("same bytes", encoding="utf-8")
    assert content_digest(tmp_path / "a.txt") == content_digest(tmp_path / "b.txt") != content_digest(tmp_path / "none.txt")
    # Not a readable file: None, so the step reading it reports the problem in its own words.
    assert content_digest(tmp_path) is None and content_digest(tmp_path / "none.txt") is None


def test_seed_is_part_of_every_fingerprint(gen_files):
    a = fingerprints(config_of(gen_steps(), seed=1), gen_files)
    b = fingerprints(config_of(gen_steps(), seed=2), gen_files)
    assert all(a[name] != b[name] for name in a)


# -- resume ----------------------------------------------------------------------------------
def test_crash_then_rerun_processes_only_missing_batches(tmp_path):
    write_rows(tmp_path / "rows.jsonl")  # 7 rows, batch_size 2 -> 4 batches
    CRASH["after"] = 2
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tmp_path, upper_pipeline())
    run_dir = tmp_path / "run"
    assert len(CALLS) == 2
    done_before = batch_mtimes(run_dir, "up")
    assert list(done_before) == ["part-00000.json", "part-00001.json"]
    assert RunDirectory(run_dir).read_state("up")["status"] == "running"
    assert RunDirectory(run_dir).read_manifest()["history"][-1]["status"] == "stopped: RuntimeError"
    first_ids = [i for batch in CALLS for i in batch]

    CALLS.clear()
    CRASH["after"] = None
    result = run(tmp_path, upper_pipeline())
    # Only batches 2 and 3 (rows 4..6) ran again; the finished ones were left as they were.
    assert [len(batch) for batch in CALLS] == [2, 1]
    assert not set(first_ids) & {i for batch in CALLS for i in batch}
    assert {k: v for k, v in batch_mtimes(run_dir, "up").items() if k in done_before} == done_before
    assert [o.skipped for o in result.outcomes] == [True, False]
    assert result.outcomes[1].stats.rows_out == 7  # the step's whole count
    assert result.outcomes[1].fresh.rows_out == 3  # what this run did
    assert RunDirectory(run_dir).read_state("up")["status"] == "done"

    CALLS.clear()
    run(tmp_path, upper_pipeline(), run_dir="clean")
    assert len(CALLS) == 4
    resumed, clean = out_rows(run_dir, "up"), out_rows(tmp_path / "clean", "up")
    assert resumed == clean
    assert [r["text"] for r in resumed] == [t.upper() for t in TEXTS]


def test_rerun_of_a_finished_pipeline_does_nothing(tmp_path):
    write_rows(tmp_path / "rows.jsonl")
    run(tmp_path, upper_pipeline(filter_options={"min_words": 2}))
    calls, mtimes = len(CALLS), batch_mtimes(tmp_path / "run", "up")
    result = run(tmp_path, upper_pipeline(filter_options={"min_words": 2}))
    assert len(CALLS) == calls
    assert batch_mtimes(tmp_path / "run", "up") == mtimes
    assert all(o.skipped for o in result.outcomes)
    assert result.requests_sent == 0


def test_changed_downstream_step_reruns_only_it(tmp_path):
    write_rows(tmp_path / "rows.jsonl")
    run(tmp_path, upper_pipeline(filter_options={"min_words": 2}))
    run_dir = tmp_path / "run"
    calls = len(CALLS)
    up_mtimes, src_mtimes = batch_mtimes(run_dir, "up"), batch_mtimes(run_dir, "src")
    kept_before = len(out_rows(run_dir, "keep"))

    result = run(tmp_path, upper_pipeline(filter_options={"min_words": 3}))
    assert [o.skipped for o in result.outcomes] == [True, True, False]
    assert len(CALLS) == calls  # the upper-casing step did not run again
    assert batch_mtimes(run_dir, "up") == up_mtimes
    assert batch_mtimes(run_dir, "src") == src_mtimes
    kept_after = out_rows(run_dir, "keep")
    assert len(kept_after) < kept_before
    assert all(len(r["text"].split()) >= 3 for r in kept_after)


def test_changed_upstream_step_reruns_it_and_what_follows(tmp_path):
    write_rows(tmp_path / "rows.jsonl")
    run(tmp_path, upper_pipeline(filter_options={"min_words": 1}))
    CALLS.clear()
    result = run(tmp_path, upper_pipeline(suffix="!", filter_options={"min_words": 1}))
    assert [o.skipped for o in result.outcomes] == [True, False, False]
    assert len(CALLS) == 4
    assert all(r["text"].endswith("!") for r in out_rows(tmp_path / "run", "keep"))


# -- filters and counters ----------------------------------------------------------------------
def test_filter_keeps_dropped_rows_with_reasons_and_counters_add_up(tmp_path):
    texts = ["one", "two words", "three small words", "this has far too many words in it", "", "buy spam now", "fine short text"]
    write_rows(tmp_path / "rows.jsonl", texts)
    steps = [
        {"name": "src", "uses": "load", "with": {"path": "rows.jsonl"}},
        {"name": "keep", "uses": "filter", "batch_size": 3,
         "with": {"column": "text", "min_words": 2, "max_words": 5, "blacklist": ["spam"]}},
    ]
    result = run(tmp_path, steps)
    run_dir = tmp_path / "run"
    stats = result.outcomes[1].stats
    assert stats.rows_in == len(texts)
    assert stats.rows_in == stats.rows_out + sum(stats.dropped.values()) + sum(stats.failed.values())
    assert dict(stats.dropped) == {"too_few_words": 1, "too_many_words": 1, "empty": 1, "blacklisted_word": 1}

    kept, dropped = out_rows(run_dir, "keep"), out_rows(run_dir, "keep", "dropped")
    assert [r["text"] for r in kept] == ["two words", "three small words", "fine short text"]
    assert Counter(r["_drop_reason"] for r in dropped) == stats.dropped
    assert {r["text"]: r["_drop_reason"] for r in dropped}["buy spam now"] == "blacklisted_word"
    # Nothing lost: every input row is either kept or dropped, with its lineage.
    assert sorted(r["_meta"]["id"] for r in kept + dropped) == sorted(r["_meta"]["id"] for r in out_rows(run_dir, "src"))
    # The merged counters on disk say the same.
    on_disk = json.loads((run_dir / "steps" / "keep" / "stats.json").read_text())
    assert on_disk["rows_in"] == 7 and on_disk["rows_out"] == 3 and sum(on_disk["dropped"].values()) == 4


# -- lineage -----------------------------------------------------------------------------------
def test_load_gives_stable_ids_and_a_source(tmp_path):
    write_rows(tmp_path / "rows.jsonl")
    run(tmp_path, upper_pipeline(), run_dir="a")
    run(tmp_path, upper_pipeline(), run_dir="b")
    a, b = out_rows(tmp_path / "a", "src"), out_rows(tmp_path / "b", "src")
    ids = [r["_meta"]["id"] for r in a]
    assert ids == [r["_meta"]["id"] for r in b]
    assert len(set(ids)) == len(ids) == 7
    assert ids[0] == derive_id("rows.jsonl", 0)
    assert all(r["_meta"]["source"] == "rows.jsonl" and r["_meta"]["step"] == "src" for r in a)
    assert [r["_meta"]["source_index"] for r in a] == list(range(7))


def test_generated_rows_carry_lineage(tmp_path):
    write_rows(tmp_path / "rows.jsonl", ["red", "green", "blue"])
    (tmp_path / "ask.j2").write_text("Name a thing that is {{ text }}.", encoding="utf-8")
    with StubServer() as srv:
        spec = "openai:stub-model@" + srv.base_url
        steps = [
            {"name": "src", "uses": "load", "with": {"path": "rows.jsonl"}},
            {"name": "gen", "uses": "generate", "batch_size": 2,
             "with": {"model": spec, "template": "ask.j2", "samples": 2, "max_tokens": 8}},
        ]
        first = run(tmp_path, steps, run_dir="a")
        sent_first = srv.stats()["total_answered"]
        second = run(tmp_path, steps, run_dir="b")  # same cache: answered from it
        sent_second = srv.stats()["total_answered"] - sent_first
    assert first.requests_sent == sent_first == 6
    assert second.requests_sent == sent_second == 0

    parents = {r["_meta"]["id"]: r for r in out_rows(tmp_path / "a", "src")}
    children = out_rows(tmp_path / "a", "gen")
    template_hash = TemplatePrompt.from_file(tmp_path / "ask.j2").template_hash
    assert len(children) == 6
    for child in children:
        meta = child["_meta"]
        assert meta["step"] == "gen"
        assert meta["recipe"] == "generate"
        assert meta["model"] == spec
        assert meta["template_hash"] == template_hash
        assert len(meta["parents"]) == 1 and meta["parents"][0] in parents
        parent = parents[meta["parents"][0]]
        assert meta["source"] == parent["_meta"]["source"] == "rows.jsonl"  # inherited
        assert "source_index" not in meta  # describes the parent alone
        assert meta["id"] == derive_id("gen", parent["_meta"]["id"], meta["sample_index"])
        assert child["text"] == parent["text"] and child["generation"]
    assert Counter(c["_meta"]["sample_index"] for c in children) == {0: 3, 1: 3}
    assert len({c["_meta"]["id"] for c in children}) == 6
    # Ids are stable across runs.
    assert [c["_meta"]["id"] for c in out_rows(tmp_path / "b", "gen")] == [c["_meta"]["id"] for c in children]


# -- seeded randomness -------------------------------------------------------------------------
def test_context_rng_is_seeded_by_its_parts():
    context = StepContext(run_seed=13)

    def draws(ctx, *parts):
        rng = ctx.rng(*parts)
        return [rng.random() for _ in range(5)]

    assert draws(context, "row-1", 0) == draws(context, "row-1", 0)
    assert draws(context, "row-1", 0) == draws(StepContext(run_seed=13), "row-1", 0)
    assert draws(context, "row-1", 0) != draws(context, "row-1", 1)
    assert draws(context, "row-1", 0) != draws(context, "row-2", 0)
    assert draws(context, "row-1", 0) != draws(StepContext(run_seed=14), "row-1", 0)
    assert context.seed_for("a", 1) == StepContext(run_seed=13).seed_for("a", 1)
    assert context.seed_for("a", 1) != context.seed_for("a", 2)


# -- run directory guards ----------------------------------------------------------------------
def test_second_concurrent_run_on_one_run_dir_is_refused(tmp_path):
    write_rows(tmp_path / "rows.jsonl")
    steps = [{"name": "src", "uses": "load", "with": {"path": "rows.jsonl"}}, {"name": "wait", "uses": "pipetest_wait"}]
    outcome: dict = {}

    def first_run():
        try:
            outcome["result"] = run(tmp_path, steps)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert WAIT["started"].wait(30), "the first run never reached its step"
        with pytest.raises(UserError) as info:
            run(tmp_path, steps)
        assert "Another synthwright process is running" in info.value.problem
        assert str(tmp_path / "run") in info.value.problem
        assert "--run-dir" in (info.value.fix or "")
    finally:
        WAIT["release"].set()
        thread.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].outcomes[-1].stats.rows_out == 7
    # The lock went with the first run: a third run may start (and finds nothing to do).
    assert all(o.skipped for o in run(tmp_path, steps).outcomes)


def test_run_dir_of_another_pipeline_is_refused(tmp_path):
    write_rows(tmp_path / "rows.jsonl")
    run(tmp_path, upper_pipeline(), name="first")
    with pytest.raises(UserError) as info:
        run(tmp_path, upper_pipeline(), name="second")
    assert "'first'" in info.value.problem and "'second'" in info.value.problem
    assert RunDirectory(tmp_path / "run").read_manifest()["name"] == "first"
    run(tmp_path, upper_pipeline(), name="first")  # not left locked


# -- the Python API ----------------------------------------------------------------------------
def test_python_api_runs_relative_to_the_current_folder(tmp_path, monkeypatch):
    write_rows(tmp_path / "rows.jsonl")
    monkeypatch.chdir(tmp_path)
    pipeline = Pipeline("api", seed=3)
    pipeline.step("src", "load", path="rows.jsonl").step("up", "pipetest_upper", batch_size=2, suffix=".")
    pipeline.step("keep", "filter", input="up", column="text", min_words=2)
    result = pipeline.run("apirun")
    assert result.run_dir == Path("apirun")
    assert [o.name for o in result.outcomes] == ["src", "up", "keep"]
    kept = out_rows(tmp_path / "apirun", "keep")
    assert [r["text"] for r in kept] == [t.upper() + "." for t in TEXTS if len(t.split()) >= 2]
    assert os.path.isfile(tmp_path / "apirun" / "manifest.json")


def test_export_streams_in_parts_and_keeps_every_row(tmp_path, monkeypatch):
    """An export hands its rows on in parts (one shard each), never as one list; the file and
    the shards hold every row once, in order, and a rerun after a crash leaves no stale part."""
    from synthwright.io import steps as io_steps

    monkeypatch.setattr(io_steps, "PART_ROWS", 7)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(30)), encoding="utf-8")
    p = Pipeline("export-parts").step("rows", "load", path=str(rows)).step("out", "export", path="all.jsonl")
    result = p.run(tmp_path / "run")
    rundir = RunDirectory(result.run_dir)
    assert len(list((tmp_path / "run" / "steps" / "out" / "batches").glob("part-*.json"))) == 5  # 7+7+7+7+2
    assert [row["n"] for row in rundir.rows("out")] == list(range(30))
    exported = [json.loads(line) for line in (tmp_path / "run" / "all.jsonl").read_text().splitlines()]
    assert [row["n"] for row in exported] == list(range(30))
    assert rundir.merged_stats("out").rows_out == 30

    # A stale shard from an interrupted run of the stage is cleared when the stage runs again.
    stale = tmp_path / "run" / "steps" / "out" / "batches" / "part-00009.json"
    stale.write_text((stale.parent / "part-00000.json").read_text())
    state = rundir.read_state("out")
    (tmp_path / "run" / "steps" / "out" / "state.json").write_text(json.dumps({**state, "status": "running"}))
    p.run(tmp_path / "run")
    assert not stale.exists() and rundir.merged_stats("out").rows_out == 30


# -- progress of long LLM work inside one batch ---------------------------------------------------
def test_request_progress_line_counts_and_goes_away():
    """A stage's LLM requests get their own line under the step's while they run."""
    from synthwright.cli.pipeline import ProgressObserver
    from synthwright.llm.records import LLMResponse

    observer = ProgressObserver(live=True)
    observer.progress.start()
    try:
        line = observer.request_progress("teacher as a reranker")
        line.start(3)
        line.advance(LLMResponse(text="Yes"))
        line.advance(LLMResponse(text="", error="timeout"))
        line.advance(LLMResponse(text="No").model_copy(update={"cached": True}))
        [task] = observer.progress.tasks
        assert (task.completed, task.total) == (3, 3)
        assert (task.fields["sent"], task.fields["hits"], task.fields["failed"]) == (2, 1, 1)
        line.finish()
        assert observer.progress.tasks == []
    finally:
        observer.progress.stop()


def test_plain_progress_lines_where_stderr_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    """nohup, CI or a pipe: no live bar (it would show nothing until the end), but log lines
    with batches, rows, requests and an ETA; none at all for work that ends quickly."""
    import synthwright.cli.pipeline as cli_pipeline
    from synthwright.cli.pipeline import ProgressObserver
    from synthwright.llm.records import LLMResponse

    config = validate_pipeline({"name": "p", "steps": [
        {"name": "rows", "uses": "load", "batch_size": 2, "with": {"path": str(write_rows(tmp_path / "rows.jsonl"))}}]}, source="t")
    assert ProgressObserver().live is False  # pytest's stderr is not a terminal
    run_pipeline(config, tmp_path / "quick", observer=ProgressObserver(live=False))
    assert capsys.readouterr().err == ""  # finished within PLAIN_LOG_EVERY_S: nothing extra

    monkeypatch.setattr(cli_pipeline, "PLAIN_LOG_EVERY_S", 0.0)
    observer = ProgressObserver(live=False)
    run_pipeline(config, tmp_path / "logged", observer=observer)
    lines = capsys.readouterr().err.strip().splitlines()
    batches = -(-len(TEXTS) // 2)  # a source step does not know its total ahead, so no ETA
    assert re.fullmatch(r"rows: 1 batches, 2 rows out, 0 sent, 0 cached, 0 failed, ([\d,]+\.\d/s, )?\d+:\d\d:\d\d elapsed, ETA \?", lines[0]), lines[0]
    assert lines[-1].startswith(f"rows: {batches} batches, {len(TEXTS)} rows out") and "done in" in lines[-1]
    log = cli_pipeline.PlainLog("judged", total=4, done=2)  # resumed: the ETA counts this run's pace only
    log.update(3, "batches")
    assert re.fullmatch(r"judged: 3/4 batches, [\d,]+\.\d/s, \d+:\d\d:\d\d elapsed, ETA \d+:\d\d:\d\d", capsys.readouterr().err.strip())
    requests = observer.request_progress("teacher as a reranker")
    requests.start(2)
    requests.advance(LLMResponse(text="Yes").model_copy(update={"cached": True}))
    requests.advance(LLMResponse(text="", error="timeout"))
    assert capsys.readouterr().err.splitlines()[-1].startswith("  teacher as a reranker: 2/2 requests, 1 cached, 1 failed")


def test_plain_progress_eta_follows_the_recent_pace(capsys, monkeypatch):
    """A rerun replays its first batches from the request cache in a blink; the ETA must
    follow the live pace after them, not the mean since the start."""
    import synthwright.cli.pipeline as cli_pipeline

    clock = [0.0]
    monkeypatch.setattr(cli_pipeline.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(cli_pipeline, "PLAIN_LOG_EVERY_S", 0.0)
    log = cli_pipeline.PlainLog("queries", total=100)
    for done in range(1, 21):  # 20 batches from the cache, 0.05 s each
        clock[0] += 0.05
        log.update(done, "batches")
    for done in range(21, 21 + cli_pipeline.ETA_WINDOW_BATCHES):  # then 60 s a batch
        clock[0] += 60.0
        log.update(done, "batches")
    last = capsys.readouterr().err.strip().splitlines()[-1]
    remaining = 100 - (20 + cli_pipeline.ETA_WINDOW_BATCHES)
    assert last.endswith(f"ETA {cli_pipeline._clock(remaining * 60.0)}"), last


def test_a_phase_of_blocks_reports_units_per_second(capsys, monkeypatch):
    """Encoding 6,267 documents in blocks of 1,280: each block is one step of the pace, so the
    line's rate and ETA are in documents per second (each unit counted singly once gave 3.4/s
    and a 25-minute ETA for a phase that took two)."""
    import synthwright.cli.pipeline as cli_pipeline
    from synthwright.cli.pipeline import ProgressObserver
    from synthwright.core.progress import Phase

    clock = [0.0]
    monkeypatch.setattr(cli_pipeline.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(cli_pipeline, "PLAIN_LOG_EVERY_S", 0.0)
    observer = ProgressObserver(live=False)
    with Phase(observer.request_progress, "encode 6400 documents", 6400, "documents") as phase:
        for _ in range(3):
            clock[0] += 32.0
            phase.advance(1280)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[2].startswith("  encode 6400 documents: 3840/6400 documents, 40.0/s"), lines[2]
    assert lines[2].endswith(f"ETA {cli_pipeline._clock(2560 / 40.0)}"), lines[2]


def test_run_pipeline_hands_the_observer_to_steps_but_not_to_workers(tmp_path):
    import pickle

    from synthwright.core.step import StepContext
    from synthwright.pipeline.executor import RunObserver

    asked = []

    class Watching(RunObserver):
        def request_progress(self, description):
            asked.append(description)
            return None

    context = StepContext(workdir=tmp_path)
    config = validate_pipeline({"name": "p", "steps": [{"name": "rows", "uses": "load", "with": {"path": str(write_rows(tmp_path / "rows.jsonl"))}}]}, source="t")
    run_pipeline(config, tmp_path / "run", observer=Watching(), context=context)
    assert context.request_progress("x") is None and asked == ["x"]
    assert pickle.loads(pickle.dumps(context)).progress_factory is None  # a Ray worker shows nothing


def test_a_batch_with_an_empty_dict_column_is_stored_and_read_back(tmp_path):
    """Arrow makes a column of empty dicts a struct without fields, which Parquet refuses (a
    judge whose members gave no criteria wrote such rows): the batch is kept whole as JSON."""
    from synthwright.core.step import BatchResult

    run = RunDirectory(tmp_path / "run")
    rows = [{"text": "a", "judge_criteria": {}, "_meta": {"id": "x"}}, {"text": "b", "judge_criteria": {}, "_meta": {"id": "y"}}]
    run.write_batch("judged", 0, BatchResult(kept=rows))
    assert list(run.rows("judged")) == rows


def test_an_option_added_later_keeps_fingerprints_at_its_default():
    """`added_option`: run folders made before an option existed keep their steps."""
    from synthwright.recipes.generate_step import GenerateOptions

    plain = GenerateOptions(model="m", prompt="hi")
    assert "top_k" not in plain.fingerprinted() and "top_k" in plain.model_dump()
    assert GenerateOptions(model="m", prompt="hi", top_k=5).fingerprinted()["top_k"] == 5
