"""`synthwright run`, `inspect`, `export` and `steps`: pipelines from the command line."""

from __future__ import annotations

import json
import time
from collections import deque
from datetime import timedelta
from pathlib import Path

import typer
from pydantic import BaseModel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from synthwright.cli.console import err, out
from synthwright.core.step import STEP_TYPES, BatchResult, StepStats
from synthwright.errors import UserError
from synthwright.io.export import FORMATS, export_rows
from synthwright.io.outputs import incomplete_path_for, is_set_aside, output_lock
from synthwright.llm.backends.base import backend_types
from synthwright.pipeline.config import load_pipeline
from synthwright.pipeline.executor import Executor, LocalExecutor, RunObserver
from synthwright.pipeline.pipeline import run_pipeline
from synthwright.pipeline.plan import PlannedStep, default_run_dir
from synthwright.pipeline.rundir import RunDirectory
from synthwright.pipeline.steps import load_step_types


# Where stderr is not a terminal (nohup, CI, a pipe), a live bar shows nothing until the end:
# a step that runs longer than this writes a plain line this often instead.
PLAIN_LOG_EVERY_S = 30.0
# The ETA follows the pace of the last this-many batches: batches replayed from the request
# cache at the start of a rerun finish in a blink and would make an ETA from the mean far
# too hopeful.
ETA_WINDOW_BATCHES = 10


def _clock(seconds: float | None) -> str:
    return "?" if seconds is None else str(timedelta(seconds=int(seconds)))


class PlainLog:
    """Progress as log lines: at most one per PLAIN_LOG_EVERY_S, none for work that ends sooner
    (a quick run, or an error at once, prints nothing extra)."""

    def __init__(self, name: str, total: int | None, done: int = 0):
        self.name, self.total, self.done = name, total, done
        self._started = self._last = time.monotonic()
        # (time, batches done) at the start and after each recent batch; batches done before
        # this run (resumed) never count towards the pace.
        self._recent: deque[tuple[float, int]] = deque([(self._started, done)], maxlen=ETA_WINDOW_BATCHES + 1)

    def update(self, done: int, detail: str, *, final: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        self._recent.append((now, done))
        if now - self._last < PLAIN_LOG_EVERY_S and not (final and now - self._started >= PLAIN_LOG_EVERY_S):
            return
        self._last = now
        elapsed = now - self._started
        eta = self._eta(now)
        of = f"/{self.total}" if self.total else ""
        rate = (self.done - self._recent[0][1]) / max(now - self._recent[0][0], 1e-9)
        tail = f"done in {_clock(elapsed)}" if final else f"{rate:,.1f}/s, {_clock(elapsed)} elapsed, ETA {_clock(eta)}"
        err.print(f"{self.name}: {self.done}{of} {detail}, {tail}", highlight=False)

    def _eta(self, now: float) -> float | None:
        since, done_then = self._recent[0]
        progressed = self.done - done_then
        if not self.total or progressed <= 0:
            return None
        return (self.total - self.done) * (now - since) / progressed


class ProgressObserver(RunObserver):
    """One progress line per step: batches done, rows, requests, failures, ETA. A live bar on a
    terminal; plain log lines elsewhere."""

    def __init__(self, live: bool | None = None):
        self.live = err.is_terminal if live is None else live
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rows]} rows out"), TextColumn("{task.fields[sent]} sent"),
            TextColumn("[cyan]{task.fields[hits]} cached"), TextColumn("[red]{task.fields[failed]} failed"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=err,
        )
        self._task = None
        self._log: PlainLog | None = None
        self._totals = StepStats()

    def step_skipped(self, planned: PlannedStep, stats: StepStats) -> None:
        err.print(f"[dim]= {planned.step.name}: up to date ({stats.rows_out} rows)[/]")

    def step_started(self, planned: PlannedStep, total_batches: int | None, done_batches: int) -> None:
        self._totals = StepStats()
        if not self.live:
            self._log = PlainLog(planned.step.name, total_batches, done_batches)
            return
        if self._task is None:
            self.progress.start()
        else:
            self.progress.remove_task(self._task)
        resumed = f" (resuming: {done_batches} batches done)" if done_batches else ""
        self._task = self.progress.add_task(
            f"{planned.step.name}{resumed}", total=total_batches, completed=done_batches, rows=0, sent=0, hits=0, failed=0
        )

    def batch_finished(self, planned: PlannedStep, result: BatchResult) -> None:
        self._totals = self._totals.merge(result.stats)
        t = self._totals
        if self._log is not None:
            self._log.update(self._log.done + 1, self._detail())
            return
        self.progress.update(
            self._task, advance=1, rows=t.rows_out, sent=t.requests_sent, hits=t.cache_hits, failed=sum(t.failed.values())
        )

    def _detail(self) -> str:
        t = self._totals
        return f"batches, {t.rows_out} rows out, {t.requests_sent} sent, {t.cache_hits} cached, {sum(t.failed.values())} failed"

    def step_finished(self, planned: PlannedStep, stats: StepStats) -> None:
        if self._log is not None:
            self._log.update(self._log.total or self._log.done, self._detail(), final=True)
            return
        task = next(t for t in self.progress.tasks if t.id == self._task)
        self.progress.update(self._task, completed=task.total or 1)

    def close(self) -> None:
        if self._task is not None:
            self.progress.stop()

    def request_progress(self, description: str) -> "RequestsLine":
        return RequestsLine(self.progress if self.live else None, description)


class RequestsLine:
    """A second line under the step's, for a stage's long run of LLM requests (calibration,
    the teacher as a reranker): requests done of all, cached, failed, rate and ETA."""

    def __init__(self, progress: Progress | None, description: str):
        self.progress, self.description = progress, description  # no progress: plain log lines
        self._task = None
        self._log: PlainLog | None = None
        self._done = self._hits = self._failed = 0
        self._unit: str | None = None

    def start(self, total: int) -> None:
        if self.progress is None:
            self._log = PlainLog(f"  {self.description}", total)
            return
        self._task = self.progress.add_task(f"  {self.description}", total=total, rows=0, sent=0, hits=0, failed=0)

    def advance(self, response) -> None:
        count = getattr(response, "count", 1)  # a block of other work (core.progress.Done) counts its units
        self._done += count
        self._hits += bool(response.cached)
        self._failed += not response.ok
        if self._log is not None:
            # A phase of other work (core.progress.Done) names its own unit, and has no cache or failures.
            self._unit = getattr(response, "unit", None)
            self._log.update(self._done, self._unit or f"requests, {self._hits} cached, {self._failed} failed")
            return
        self.progress.update(self._task, advance=count, rows=self._done, sent=self._done - self._hits, hits=self._hits, failed=self._failed)

    def finish(self) -> None:
        if self._log is not None:
            self._log.update(self._done, self._unit or "requests", final=True)  # "done in": only after a long run
        if self._task is not None:
            self.progress.remove_task(self._task)
            self._task = None


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        pipeline: Path = typer.Argument(..., help="Pipeline YAML file."),
        run_dir: Path = typer.Option(None, "--run-dir", help="Run folder (default: runs/NAME, so a rerun resumes it)."),
        cache: Path = typer.Option(None, "--cache", help="Request cache file."),
        concurrency: int = typer.Option(
            None, "--concurrency", min=1, help="Requests in flight per model (default: the backend's; 64 in all with --executor ray)."
        ),
        executor: str = typer.Option("local", "--executor", help="local (this process) or ray (a Ray cluster; needs synthwright's ray extra)."),
        ray_address: str = typer.Option(None, "--ray-address", help="With --executor ray: the cluster to join (default: start Ray on this machine)."),
    ) -> None:
        """Run (or resume) a pipeline. Finished steps are skipped; a changed step reruns with what follows it.

        Example: synthwright run examples/pipeline.yaml --executor ray
        """
        from synthwright.core.step import StepContext

        config = load_pipeline(pipeline)
        folder = run_dir or default_run_dir(config)
        context = StepContext(run_seed=config.seed, workdir=pipeline.resolve().parent, cache_file=cache, max_concurrency=concurrency)
        observer = ProgressObserver()
        chosen = make_executor(executor, observer, ray_address)
        try:
            result = run_pipeline(config, folder, workdir=pipeline.resolve().parent, executor=chosen, context=context)
        finally:
            observer.close()
        print_step_table(RunDirectory(result.run_dir), title=f"run {config.name}")
        out.print(f"run folder: {result.run_dir}  ({result.requests_sent} requests sent)")
        if _report_failures(result, planned_exports(config, context)):
            raise typer.Exit(code=1)

    @app.command("inspect")
    def inspect(run_dir: Path = typer.Argument(..., help="A run folder.")) -> None:
        """Per-step counts: rows in/out, drops by reason, failures, tokens, cost, time.

        Example: synthwright inspect runs/beginner-questions
        """
        rundir = _existing_run(run_dir)
        manifest = rundir.read_manifest()
        print_step_table(rundir, title=f"{manifest['name']}  ({run_dir})")
        last = manifest["history"][-1]
        out.print(f"last run: {last['status']}; models: {json.dumps(manifest.get('models', {}))}")

    @app.command("export")
    def export(
        run_dir: Path = typer.Argument(..., help="A run folder."),
        step: str = typer.Option(..., "--step", help="The step whose rows to export."),
        format: str = typer.Option("jsonl", "--format", help=f"One of: {', '.join(FORMATS)}."),
        output: Path = typer.Option(None, "--output", "-o", help="Where to write (default: RUN_DIR/exports/STEP.FORMAT)."),
        kind: str = typer.Option("out", "--rows", help="out (kept), dropped or failed rows."),
        no_meta: bool = typer.Option(False, "--no-meta", help="Leave the `_meta` lineage column out."),
    ) -> None:
        """Export a step's rows as JSONL, Parquet or a Hugging Face datasets folder.

        Example: synthwright export runs/beginner-questions --step clean --format hf
        """
        rundir = _existing_run(run_dir)
        if rundir.read_state(step) is None:
            steps = ", ".join(p.name for p in sorted((rundir.path / "steps").iterdir()))
            raise UserError(f"Run {run_dir} has no step '{step}'.", f"Use one of: {steps}.")
        if kind not in ("out", "dropped", "failed"):
            raise UserError(f"--rows must be out, dropped or failed, not '{kind}'.")
        suffix = {"jsonl": ".jsonl", "parquet": ".parquet", "hf": ""}.get(format, "")
        target = output or rundir.path / "exports" / f"{step}{'' if kind == 'out' else '.' + kind}{suffix}"
        complete = kind != "out" or not sum(rundir.merged_stats(step).failed.values())
        with output_lock(target):
            rows = list(rundir.rows(step, kind))
            written = export_rows(rows, target, format, include_meta=not no_meta, complete=complete)
        out.print(f"exported {len(rows)} rows of step '{step}' to {written}")
        if is_set_aside(written):
            err.print(f"[yellow]kept the earlier {target}[/]: step '{step}' has failed rows, so this export is incomplete.")

    @app.command("steps")
    def steps() -> None:
        """List the step types a pipeline can use, with their options, and the model backends
        with the options a `models:` entry may give them."""
        load_step_types()
        for name, cls in sorted(STEP_TYPES.items()):
            out.print(f"[bold]{name}[/]  {cls.description}")
            _print_options(cls.Options)
        out.print("\n[bold]Model backends[/] (a `models:` entry: id, spec, options)")
        for name, cls in sorted(backend_types().items()):
            out.print(f"[bold]{name}[/]  {cls.summary()}")
            _print_options(cls.Options)


def _print_options(options: type[BaseModel]) -> None:
    for field_name, field in options.model_fields.items():
        default = "required" if field.is_required() else f"default {field.default!r}"
        out.print(f"    {field_name}: {default}" + (f"  ({field.description})" if field.description else ""))


def planned_exports(config, context) -> dict[str, Path]:
    """Step name -> the file each export step of `config` writes."""
    return {
        s.name: context.output_path(s.options().path) for s in config.steps if s.uses == "export"
    }


def _report_failures(result, exports: dict[str, Path]) -> bool:
    """Say, in the run's last lines, which steps failed rows and what became of the exports.
    True when any step failed rows (the run then exits 1, as `generate` does)."""
    failed = [(o.name, o.stats.failed) for o in result.outcomes if sum(o.stats.failed.values())]
    for name, reasons in failed:
        err.print(f"[red]step '{name}' failed {sum(reasons.values())} rows[/] ({_reasons(reasons)}); "
                  f"see them with `synthwright export {result.run_dir} --step {name} --rows failed`.")
    for name, path in exports.items():
        if failed and incomplete_path_for(path).exists():
            err.print(f"[yellow]kept the earlier {path}[/]: export '{name}' is incomplete; its rows are in {incomplete_path_for(path)}.")
    if failed:
        err.print("Rerun the same command to retry the failed rows (finished requests are cached).")
    return bool(failed)


def make_executor(name: str, observer: RunObserver, ray_address: str | None) -> Executor:
    if name == "local":
        if ray_address:
            raise UserError("--ray-address needs --executor ray.", "Add --executor ray, or leave --ray-address out.")
        return LocalExecutor(observer)
    if name == "ray":
        from synthwright.pipeline.ray_executor import RayExecutor

        return RayExecutor(observer, address=ray_address)
    raise UserError(f"--executor must be local or ray, not '{name}'.")


def _existing_run(run_dir: Path) -> RunDirectory:
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"'{run_dir}' is a file, not a run folder.", "Give the folder `synthwright run` printed.")
    rundir = RunDirectory(run_dir)
    if rundir.read_manifest() is None:
        raise UserError(f"'{run_dir}' is not a run folder (no manifest.json).", "Give the folder `synthwright run` printed.")
    return rundir


def print_step_table(rundir: RunDirectory, title: str) -> None:
    table = Table(title=title)
    for column in ("step", "state", "in", "out", "dropped", "failed", "sent", "cached", "tokens", "cost $", "time"):
        table.add_column(column, justify="left" if column in ("step", "state", "dropped", "failed") else "right")
    manifest = rundir.read_manifest() or {}
    for step in (s["name"] for s in manifest.get("config", {}).get("steps", [])):
        state = rundir.read_state(step)
        if state is None:
            table.add_row(step, "pending", *[""] * 9)
            continue
        stats = rundir.merged_stats(step)
        table.add_row(
            step, state["status"], f"{stats.rows_in:,}", f"{stats.rows_out:,}", _reasons(stats.dropped), _reasons(stats.failed),
            f"{stats.requests_sent:,}", f"{stats.cache_hits:,}", f"{stats.prompt_tokens + stats.completion_tokens:,}",
            f"{stats.cost:.4f}", f"{stats.seconds:.1f}s",
        )
    out.print(table)


def _reasons(counter) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in counter.most_common()) or "0"
