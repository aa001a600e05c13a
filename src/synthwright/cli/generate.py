"""`synthwright generate`: render a template per row, ask a model, write rows."""

from __future__ import annotations

from pathlib import Path

import typer

from synthwright.cli.console import err, out
from synthwright.cli.progress import RichProgress
from synthwright.generate import DryRunEstimate, GenerateConfig, GenerateJob, GenerateSummary
from synthwright.recipes.template import load_json_schema
from synthwright.llm.records import SamplingParams
from synthwright.llm.usage import Price
from synthwright.io.outputs import refuse_same_file


def register(app: typer.Typer) -> None:
    @app.command("generate")
    def generate(
        model: str = typer.Option(..., "--model", "-m", help="Model spec: llamacpp:smollm2-135m, llamacpp:/path/m.gguf, openai:gpt-4o-mini, openai:NAME@http://127.0.0.1:8080/v1."),
        template: Path = typer.Option(..., "--template", "-t", help="Jinja template file; input columns are its variables."),
        input: Path = typer.Option(..., "--input", "-i", help="Input rows (.jsonl or .parquet)."),
        output: Path = typer.Option(..., "--output", "-o", help="Output rows (.jsonl or .parquet)."),
        samples: int = typer.Option(1, "-n", "--samples", min=1, help="Samples per input row."),
        temperature: float = typer.Option(0.7, "--temperature", min=0.0),
        max_tokens: int = typer.Option(256, "--max-tokens", min=1),
        top_p: float = typer.Option(None, "--top-p"),
        top_k: int = typer.Option(None, "--top-k"),
        stop: list[str] = typer.Option(None, "--stop", help="Stop string (repeatable)."),
        seed: int = typer.Option(0, "--seed", help="Run seed; each request's seed derives from it, the row and the sample."),
        system: str = typer.Option(None, "--system", help="System message."),
        raw: bool = typer.Option(False, "--raw", help="Send the rendered template as a raw completion prompt, not a chat message."),
        json_schema: Path = typer.Option(None, "--json-schema", help="JSON schema file: constrain the answer to it."),
        column: str = typer.Option("generation", "--column", help="Name of the output column."),
        limit: int = typer.Option(None, "--limit", min=1, help="Use only the first N input rows."),
        concurrency: int = typer.Option(None, "--concurrency", min=1, help="Requests in flight (default: 64 for HTTP, 1 in-process)."),
        timeout: float = typer.Option(120.0, "--timeout", help="Seconds before one attempt is abandoned."),
        max_attempts: int = typer.Option(6, "--max-attempts", min=1, help="Attempts per request before it goes to the failures file."),
        price: str = typer.Option(None, "--price", help="Dollars per million tokens, INPUT/OUTPUT, e.g. 0.15/0.60."),
        cache: Path = typer.Option(None, "--cache", help="Request cache file (default: $SYNTHWRIGHT_CACHE or ~/.cache/synthwright/requests.sqlite)."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the request cache."),
        refresh: bool = typer.Option(False, "--refresh", help="Ignore cached answers, ask again and overwrite them."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show requests and estimated tokens (and cost); call no model."),
    ) -> None:
        """Render TEMPLATE for each input row, ask MODEL, and write one output row per sample.

        Example: synthwright generate -m llamacpp:smollm2-135m -t examples/question.j2 -i examples/topics.jsonl -o out/questions.jsonl
        """
        refuse_same_file(output, input)
        params = SamplingParams(temperature=temperature, max_tokens=max_tokens, top_p=top_p, top_k=top_k, stop=tuple(stop or ()))
        config = GenerateConfig(
            model=model, template=template, input=input, output=output, samples_per_row=samples, params=params,
            seed=seed, system=system, raw_prompt=raw, json_schema=load_json_schema(json_schema) if json_schema else None,
            output_column=column, limit=limit, cache_file=cache, read_cache=not (no_cache or refresh),
            write_cache=not no_cache, concurrency=concurrency, timeout_s=timeout, max_attempts=max_attempts,
            price=Price.parse(price) if price else None,
        )
        job = GenerateJob(config)
        if dry_run:
            _print_estimate(job.estimate())
            return
        summary = job.run(RichProgress(f"generate {model}"))
        _print_summary(summary)
        if summary.failed:
            raise typer.Exit(code=1)


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


def _print_summary(summary: GenerateSummary) -> None:
    usage = summary.usage
    cost = f", ${usage.cost:.4f}" if usage.cost else ""
    out.print(
        f"[green]wrote {summary.rows_written} rows[/] to {summary.output} in {summary.elapsed_s:.1f}s: "
        f"{usage.sent} requests sent, {usage.cache_hits} cache hits, {usage.failed} failed; "
        # The server sees every attempt, retries included: say so, or its count looks like a bug.
        f"{usage.sent + usage.retries} attempts ({usage.retries} retries); "
        f"{usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens{cost}"
    )
    if summary.failed:
        reasons = ", ".join(f"{k} ({v})" for k, v in sorted(summary.usage.failure_reasons.items())) or "see file"
        err.print(
            f"[red]{summary.failed} rows failed[/]: {reasons}; details in {summary.failures_path}. "
            "Rerun the same command to retry only those."
        )
    if summary.kept_earlier:
        err.print(
            f"[yellow]kept the earlier {summary.intended}[/]: an incomplete result does not replace it; "
            f"this run's rows are in {summary.output}."
        )
