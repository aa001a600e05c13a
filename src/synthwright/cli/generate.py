"""`synthwright generate`: render a template per row, ask a model, write rows.

The command is a two-step pipeline (`load`, then the `generate` step) run by the same executor
as `synthwright run`, so it and the same YAML share cache entries and make the same rows.
Its options are the `generate` step's (recipes/generate_step.py), plus the command's own:
input, output, the request cache and the engine's limits.

Resumable by construction: every completed request is in the request cache, so rerunning the
same command after a crash sends only what is missing. Output rows keep input order; rows that
finally fail go to `<output>.failures.jsonl` with their reason. One process at a time writes an
output (a lock beside it), and a run with failures never replaces an earlier output: its rows
go to `<output>.incomplete.jsonl` instead.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from synthwright.cli.console import err, out
from synthwright.cli.options import Flag, validated, step_with, with_step_options
from synthwright.cli.step_command import RUN_DIR_HELP, SHOW_PIPELINE_HELP, command_pipeline, prepared, run_command, show_pipeline
from synthwright.core.step import StepContext, StepStats
from synthwright.errors import UserError
from synthwright.io.outputs import check_output_target, output_lock, refuse_same_file
from synthwright.io.rows import RowWriter, check_input_file, check_row_format
from synthwright.llm.estimate import DryRunEstimate
from synthwright.recipes.generate_step import GenerateOptions

FLAGS = {
    "model": Flag("--model", "-m"),
    "template": Flag("--template", "-t"),
    "samples": Flag("-n", "--samples"),
    "json_schema": Flag("--json-schema", type=str, help="JSON schema file: constrain the answer to it"),
    "output_column": Flag("--column"),
}
STEP = "generate"  # the step's name: with the input file's name, it decides each row's id and seed
# Rows per batch: one batch holds (nearly) every request, so all of them share the concurrency,
# as one engine run did before the command became a pipeline.
BATCH_ROWS = 1024


def generate_pipeline(options: GenerateOptions, input: Path, *, seed: int = 0, limit: int | None = None,
                      price: str | None = None) -> dict[str, Any]:
    """The pipeline `synthwright generate` runs, as YAML would spell it."""
    step = step_with(options)
    models = None
    if price:  # a backend setting: the model then gets an entry of the `models:` section
        models = [{"id": "model", "spec": options.model, "options": {"price": price}}]
        step["model"] = "model"
    return command_pipeline(STEP, [
        {"name": "input", "uses": "load", "with": {"path": str(input), **({"limit": limit} if limit else {})}},
        {"name": STEP, "uses": "generate", "batch_size": BATCH_ROWS, "with": step},
    ], seed=seed, models=models)


def register(app: typer.Typer) -> None:
    @app.command("generate")
    @with_step_options(GenerateOptions, flags=FLAGS)
    def generate(
        input: Path = typer.Option(..., "--input", "-i", help="Input rows (.jsonl or .parquet)."),
        output: Path = typer.Option(..., "--output", "-o", help="Output rows (.jsonl or .parquet)."),
        seed: int = typer.Option(0, "--seed", help="Run seed; each request's seed derives from it, the row and the sample."),
        limit: int = typer.Option(None, "--limit", min=1, help="Use only the first N input rows."),
        concurrency: int = typer.Option(None, "--concurrency", min=1, help="Requests in flight (default: 64 for HTTP, 1 in-process)."),
        timeout: float = typer.Option(120.0, "--timeout", help="Seconds before one attempt is abandoned."),
        max_attempts: int = typer.Option(6, "--max-attempts", min=1, help="Attempts per request before it goes to the failures file."),
        price: str = typer.Option(None, "--price", help="Dollars per million tokens, INPUT/OUTPUT, e.g. 0.15/0.60."),
        cache: Path = typer.Option(None, "--cache", help="Request cache file (default: $SYNTHWRIGHT_CACHE or ~/.cache/synthwright/requests.sqlite)."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the request cache."),
        refresh: bool = typer.Option(False, "--refresh", help="Ignore cached answers, ask again and overwrite them."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show requests and estimated tokens (and cost); call no model."),
        run_dir: Path = typer.Option(None, "--run-dir", help=RUN_DIR_HELP),
        show: bool = typer.Option(False, "--show-pipeline", help=SHOW_PIPELINE_HELP),
        step_options: dict = None,
    ) -> None:
        """Render TEMPLATE for each input row, ask MODEL, and write one output row per sample.

        Example: synthwright generate -m llamacpp:smollm2-135m -t examples/question.j2 -i examples/topics.jsonl -o out/questions.jsonl
        """
        if not timeout > 0:  # 0 or less would switch the timeout off: a hanging server then wins
            raise UserError(f"--timeout must be more than 0 seconds, not {timeout:g}.", "Give the seconds one attempt may take, e.g. --timeout 120.")
        check_input_file(input)
        check_row_format(output)  # before any work, dry runs included
        check_output_target(output)
        refuse_same_file(output, input)
        options = validated(GenerateOptions, step_options, FLAGS)
        data = generate_pipeline(options, input.resolve(), seed=seed, limit=limit, price=price)
        if show:
            show_pipeline(data)
            return
        context = StepContext(workdir=Path.cwd(), cache_file=cache, read_cache=not (no_cache or refresh), write_cache=not no_cache,
                              max_concurrency=concurrency, timeout_s=timeout, max_attempts=max_attempts)
        try:
            config = prepared(data, context, check_models=(data["steps"][-1]["with"]["model"],))
            load, generate = _checked_plan(config, context)
            if dry_run:
                _print_estimate(_estimate(load, generate, context))
                return
            with output_lock(output, fix="Wait for the other run to finish; its finished requests will be cached."):
                _run(config, context, output, run_dir)
        finally:
            context.close()  # a run closes it too; this is for what stops before one


def _run(config, context: StepContext, output: Path, run_dir: Path | None) -> None:
    started = time.perf_counter()
    writer = RowWriter(output)  # OUTPUT.partial from the start: a killed run leaves nothing under OUTPUT
    with run_command(config, context, run_dir) as done:
        failures = [_failure_record(row) for row in done.run.rows(STEP, "failed")]
        for row in done.run.rows(STEP):
            writer.write(row)
        path = writer.close(complete=not failures)
    written = writer.count
    failures_path = _write_failures(output, failures)
    _print_summary(written, path, done.stats, time.perf_counter() - started)
    if failures:
        reasons = ", ".join(f"{k} ({v})" for k, v in sorted(done.stats.failed.items())) or "see file"
        err.print(f"[red]{len(failures)} rows failed[/]: {reasons}; details in {failures_path}. "
                  "Rerun the same command to retry only those.")
    if path != output:
        err.print(f"[yellow]kept the earlier {output}[/]: an incomplete result does not replace it; this run's rows are in {path}.")
    if failures:
        raise typer.Exit(code=1)


def _checked_plan(config, context: StepContext):
    """The planned `load` and `generate` steps, once the template is known to find its columns
    in the first input row: a missing one stops the command before any step runs."""
    from synthwright.pipeline.executor import check_columns
    from synthwright.pipeline.plan import plan_pipeline

    load, generate = plan_pipeline(config, context)
    check_columns(generate, next(iter(load.step.read())))
    return load, generate


def _estimate(load, generate, context: StepContext) -> DryRunEstimate:
    """What the run would send, without calling any model: the first requests of every row."""
    from synthwright.llm.estimate import estimate

    requests, unrenderable = generate.step.first_requests(list(load.step.read()))
    model = generate.step.options.model
    cache = context.cache() if context.read_cache else None
    found = estimate(requests, context.backend(model), cache, context.model(model).options.parsed_price())
    found.render_failures = unrenderable
    return found


def failures_path_for(output: Path) -> Path:
    """out.jsonl -> out.failures.jsonl; a.v1.parquet -> a.v1.failures.jsonl."""
    return output.with_name(output.with_suffix("").name + ".failures.jsonl")


def _failure_record(row: dict[str, Any]) -> dict[str, Any]:
    """A failed input row as the failures file shows it: where it was, why, and the row itself."""
    meta = row.get("_meta") or {}
    return {"row_index": meta.get("source_index"), "error": row.get("_failure"),
            "row": {k: v for k, v in row.items() if k not in ("_meta", "_failure")}}


def _write_failures(output: Path, failures: list[dict[str, Any]]) -> Path:
    path = failures_path_for(output)
    if not failures:
        path.unlink(missing_ok=True)  # stale from an earlier run
        return path
    with open(path, "w", encoding="utf-8") as handle:
        for record in failures:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    return path


def _print_estimate(estimate: DryRunEstimate) -> None:
    for i, example in enumerate(estimate.examples, 1):
        out.rule(f"request {i} (as the model sees it)")
        out.print(example, markup=False, highlight=False)
    out.rule("dry run: nothing was sent")
    cost = f", estimated cost at most ${estimate.cost:.4f}" if estimate.cost is not None else ""
    out.print(
        f"{estimate.requests} requests ({estimate.cached} already cached, would be free), "
        f"{estimate.prompt_tokens:,} prompt tokens, at most {estimate.max_completion_tokens:,} completion tokens{cost}"
        + (f"; {estimate.render_failures} rows cannot be rendered" if estimate.render_failures else "")
    )


def _print_summary(written: int, path: Path, stats: StepStats, elapsed_s: float) -> None:
    cost = f", ${stats.cost:.4f}" if stats.cost else ""
    out.print(
        f"[green]wrote {written} rows[/] to {path} in {elapsed_s:.1f}s: "
        f"{stats.requests_sent} requests sent, {stats.cache_hits} cache hits, {sum(stats.failed.values())} failed; "
        # The server sees every attempt, retries included: say so, or its count looks like a bug.
        f"{stats.requests_sent + stats.retries} attempts ({stats.retries} retries); "
        f"{stats.prompt_tokens:,} prompt + {stats.completion_tokens:,} completion tokens{cost}"
    )
