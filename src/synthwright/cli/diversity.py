"""`synthwright diversity DATA`: choose the dedup epsilon and measure a set's diversity;
`synthwright dedup IN OUT`: drop near-duplicates (semantic, exact, MinHash or ROUGE-L).

Heavy imports (numpy, torch, faiss, matplotlib) happen inside the commands, so the CLI
starts fast and works without the `embed` extra for everything else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from synthwright.cli.console import err, out
from synthwright.cli.options import Flag, step_with, validated, with_step_options
from synthwright.cli.step_command import RUN_DIR_HELP, SHOW_PIPELINE_HELP, command_pipeline, prepared, run_command, show_pipeline
from synthwright.core.step import StepContext
from synthwright.errors import UserError
from synthwright.filters.steps import DedupOptions
from synthwright.io.outputs import check_output_target, output_lock, refuse_same_file

TEXT_KEYS = ("text", "instruction", "prompt", "query", "question", "input", "content")
METHODS = ("semantic", "exact", "minhash", "rouge-l")
DEDUP_FLAGS = {"embedder": Flag("--embedder", "-e"), "score_column": Flag("--score-key")}
DEDUP_STEP = "dedup"


def _text_key(rows: list[dict[str, Any]], given: str | None) -> str:
    if given:
        return given
    for key in TEXT_KEYS:
        if isinstance(rows[0].get(key), str):
            return key
    raise UserError(f"Cannot tell which column holds the text (columns: {', '.join(sorted(rows[0]))}).", "Name it with --text-key.")


def _thresholds(text: str) -> list[float]:
    try:
        values = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--thresholds '{text}' is not a comma-separated list of numbers.", "Write it like 0.05,0.1,0.2.") from None
    if not values or not all(0 <= v < 2 for v in values):
        raise UserError(f"--thresholds '{text}' must list cosine distances in [0, 2).", "Write it like 0.05,0.1,0.2.")
    return values


def _embed_with_progress(embedder, texts: list[str]):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]embedding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("embed", total=len(texts))
        vectors = embedder.embed(texts, on_progress=lambda n: bar.advance(task, n))
    stats = embedder.stats
    err.print(f"embedded {stats.texts:,} texts with {embedder.identity}: {stats.encoded:,} encoded, {stats.cache_hits:,} from cache, {stats.duplicates_in_call:,} repeats")
    return vectors


def _print_report(report, text_key: str) -> None:
    measures = report.measures
    table = Table(title=f"Diversity of {report.rows:,} rows ('{text_key}')")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("mean pairwise cosine distance", f"{measures.mean_pairwise_distance:.3f}")
    for name, value in measures.nn_distance_quantiles.items():
        table.add_row(f"nearest-neighbour distance {name}", f"{value:.3f}")
    table.add_row(f"clusters (average linkage at {measures.cluster_distance:g})", f"{measures.clusters:,}")
    table.add_row("clusters covering 90% of rows", f"{measures.clusters_for_90pct:,}")
    for name, value in measures.distinct_ngrams.items():
        table.add_row(name, f"{value:.3f}")
    out.print(table)
    thresholds = Table(title="Semantic dedup at each epsilon (cosine distance)")
    for column in ("epsilon", "kept", "dropped", "kept %", "rows with a neighbour this close"):
        thresholds.add_column(column, justify="right")
    for row in report.thresholds:
        thresholds.add_row(f"{row.threshold:g}", f"{row.kept:,}", f"{row.dropped:,}", f"{row.kept_share:.1%}", f"{row.rows_with_neighbour_within:,}")
    out.print(thresholds)
    low = None
    for high, pairs in report.examples.items():
        band = f"[0, {high}]" if low is None else f"({low}, {high}]"
        out.print(f"[bold]pairs at distance {band}[/]" + ("" if pairs else "  none"))
        for pair in pairs:
            out.print(f"  [cyan]{pair.distance:.3f}[/]  [{pair.id}] {_clip(pair.text)}\n         [{pair.neighbour_id}] {_clip(pair.neighbour_text)}", highlight=False, markup=True)
        low = high


def _clip(text: str, width: int = 110) -> str:
    from rich.markup import escape

    text = " ".join(text.split())
    return escape(text if len(text) <= width else text[: width - 1] + "…")


def register(app: typer.Typer) -> None:
    @app.command("diversity")
    def diversity(
        data: Path = typer.Argument(..., help="Rows to analyse (.jsonl or .parquet)."),
        text_key: str = typer.Option(None, "--text-key", "-k", help=f"Column with the text (default: the first of {', '.join(TEXT_KEYS)})."),
        id_key: str = typer.Option(None, "--id-key", help="Column with row ids (default: row positions)."),
        embedder_spec: str = typer.Option("minilm", "--embedder", "-e", help="minilm, st:/path/to/model or openai:MODEL@URL."),
        thresholds: str = typer.Option("0.02,0.05,0.1,0.15,0.2,0.3,0.4", "--thresholds", help="Candidate epsilons (cosine distance)."),
        pairs: int = typer.Option(3, "--pairs", help="Example pairs to show per threshold band."),
        cluster_distance: float = typer.Option(0.5, "--cluster-distance", help="Average-linkage distance that defines a cluster."),
        limit: int = typer.Option(None, "--limit", help="Use only the first N rows."),
        out_dir: Path = typer.Option(None, "--out", "-o", help="Folder for the plot and report (default: ./diversity-<file stem>)."),
    ) -> None:
        """Choose the dedup epsilon: neighbour distances, rows kept, example pairs, diversity.

        Prints and plots (PNG) the nearest-neighbour distance distribution, the rows a
        semantic dedup keeps at each candidate epsilon, example pairs just inside each
        threshold, and diversity measures; writes them to diversity.json as well.

        Example: synthwright diversity data/instructions.jsonl --thresholds 0.05,0.1,0.2
        """
        from synthwright.diversity import analyse_epsilon
        from synthwright.diversity.plot import plot_epsilon
        from synthwright.embed import load_embedder
        from synthwright.filters.base import row_id, row_text
        from synthwright.io.rows import read_rows

        candidates = _thresholds(thresholds)  # fail on a typo before minutes of embedding
        folder = out_dir or Path(f"diversity-{data.stem}")
        check_output_target(folder, folder=True)
        rows = read_rows(data)[: limit or None]
        key = _text_key(rows, text_key)
        texts = [row_text(row, i, key) for i, row in enumerate(rows)]
        ids = [row_id(row, i, id_key) for i, row in enumerate(rows)]
        embedder = load_embedder(embedder_spec)
        vectors = _embed_with_progress(embedder, texts)
        report = analyse_epsilon(vectors, texts, ids, thresholds=candidates, pairs_per_threshold=pairs, cluster_distance=cluster_distance)
        _print_report(report, key)
        summary = {"data": str(data), "text_key": key, "embedder": embedder.identity, **report.to_dict()}
        with output_lock(folder):
            plot = plot_epsilon(report, folder / "nn_distances.png", title=f"{data.name}: {report.rows:,} rows, {embedder.identity}")
            (folder / "diversity.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        out.print(f"[green]wrote[/] {plot} and {folder / 'diversity.json'}")

    @app.command("dedup")
    @with_step_options(DedupOptions, flags=DEDUP_FLAGS, skip=("column", "method"))
    def dedup(
        data: Path = typer.Argument(..., help="Rows to deduplicate (.jsonl or .parquet)."),
        output: Path = typer.Argument(..., help="Where the kept rows go."),
        method: str = typer.Option("semantic", "--method", "-m", help=f"One of: {', '.join(METHODS)}."),
        text_key: str = typer.Option(None, "--text-key", "-k", help=f"Column with the text (default: the first of {', '.join(TEXT_KEYS)})."),
        id_key: str = typer.Option(None, "--id-key", help="Column with row ids, used to name each dropped row's twin (default: its position)."),
        dropped_path: Path = typer.Option(None, "--dropped", help="Also write dropped rows here, each with a '_dropped' record of its twin."),
        run_dir: Path = typer.Option(None, "--run-dir", help=RUN_DIR_HELP),
        show: bool = typer.Option(False, "--show-pipeline", help=SHOW_PIPELINE_HELP),
        step_options: dict = None,
    ) -> None:
        """Drop near-duplicate rows, keeping the first (or best-scored) of each group.

        Example: synthwright dedup generated.jsonl deduped.jsonl --epsilon 0.1 --dropped dropped.jsonl
        """
        from synthwright.io.rows import check_input_file, read_rows

        if method not in METHODS:
            raise UserError(f"Unknown dedup method '{method}'.", f"Use one of: {', '.join(METHODS)}.")
        if step_options.get("score_column") and method != "semantic":
            raise UserError(f"--score-key works with --method semantic only, not {method}.", "Drop --score-key, or use --method semantic.")
        outputs = [output, dropped_path] if dropped_path else [output]
        for path, option in zip(outputs, ("OUTPUT", "--dropped")):
            refuse_same_file(path, data, option)
        if dropped_path:
            refuse_same_file(dropped_path, output, "--dropped")
        check_input_file(data)
        column = _text_key(read_rows(data), text_key)
        options = validated(DedupOptions, {**step_options, "column": column, "method": method.replace("-", "_")}, DEDUP_FLAGS)
        pipeline = command_pipeline("dedup", [
            {"name": "input", "uses": "load", "with": {"path": str(data.resolve()), "keep_meta": True}},
            {"name": DEDUP_STEP, "uses": "dedup", "with": step_with(options)},
        ], seed=0)
        if show:
            show_pipeline(pipeline)
            return
        context = StepContext(workdir=Path.cwd())
        try:
            config = prepared(pipeline, context)
            with output_lock(*outputs):
                _dedup(config, context, output, dropped_path, id_key, run_dir)
        finally:
            context.close()


def _dedup(config, context: StepContext, output: Path, dropped_path: Path | None, id_key: str | None, run_dir: Path | None) -> None:
    from synthwright.io.rows import RowWriter

    with run_command(config, context, run_dir) as done:
        names = {row["_meta"]["id"]: _name_of(row, id_key) for row in done.run.rows("input")}
        kept = RowWriter(output)
        for row in done.run.rows(DEDUP_STEP):
            kept.write(row)
        kept.close()
        if dropped_path is not None:
            dropped = RowWriter(dropped_path)
            for row in done.run.rows(DEDUP_STEP, "dropped"):
                twin = row["_meta"].get("duplicate_of")
                record = {"reason": row.pop("_drop_reason"), "duplicate_of": names.get(twin, twin)}
                dropped.write({**row, "_dropped": record})
            dropped.close()
    stats = done.stats
    reasons = ", ".join(f"{n:,} {reason}" for reason, n in stats.dropped.items()) or "none"
    out.print(f"{stats.rows_in:,} rows in, {stats.rows_out:,} kept, dropped: {reasons}")
    out.print(f"[green]wrote[/] {output}" + (f" and {dropped_path}" if dropped_path else ""))


def _name_of(row: dict[str, Any], id_key: str | None) -> Any:
    """How a dropped row's twin is named: its id column, else its position in the input."""
    return row.get(id_key) if id_key else row["_meta"].get("source_index")
