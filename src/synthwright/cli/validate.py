"""`synthwright validate SYNTH --real REAL`: check a synthetic set against real data and
write one self-contained HTML report, a JSON with every figure, and the plots.

Heavy imports (numpy, torch, spaCy, UMAP, matplotlib) happen inside the command, so the
CLI starts fast and works without the `validate` extra for everything else.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from synthwright.io.outputs import output_lock
from synthwright.cli.console import err, out
from synthwright.errors import UserError

PROJECTIONS = ("umap", "tsne", "pca", "none")


def _text_key(rows: list[dict], given: str | None, which: str) -> str:
    from synthwright.cli.diversity import TEXT_KEYS

    if given:
        return given
    for key in TEXT_KEYS:
        if isinstance(rows[0].get(key), str):
            return key
    raise UserError(f"Cannot tell which column of the {which} rows holds the text (columns: {', '.join(sorted(rows[0]))}).",
                    f"Name it with --{'real-' if which == 'real' else ''}text-key.")


def _texts(rows: list[dict], key: str, label: str) -> list[str]:
    from synthwright.filters.base import row_text

    try:
        return [row_text(row, i, key) for i, row in enumerate(rows)]
    except UserError as exc:
        raise UserError(f"{label}: {exc.problem}", exc.fix) from None


def _summary(report, paths) -> None:
    dist = report.distribution
    table = Table(title="Validation against real data")
    table.add_column("check")
    table.add_column("value", justify="right")
    if dist:
        c = dist.coverage
        table.add_row(f"k-NN precision / recall (k={c.k})", f"{c.precision:.3f} / {c.recall:.3f}")
        table.add_row("density / coverage", f"{c.density:.3f} / {c.coverage:.3f}")
        table.add_row("two-sample AUC (0.5 = indistinguishable)", f"{dist.two_sample.auc:.3f} ± {dist.two_sample.auc_std:.3f}")
        for dim in dist.marginals:
            style = "[red]" if dim.flagged else ""
            table.add_row(f"{style}d / KS {dim.name}", f"{style}{dim.cohen_d:+.2f} / {dim.ks_statistic:.2f} (p={dim.ks_pvalue:.2g})")
        r, s = dist.diversity["real"], dist.diversity["synthetic"]
        table.add_row("mean pairwise distance real / synthetic", f"{r['mean_pairwise_distance']:.3f} / {s['mean_pairwise_distance']:.3f}")
    if report.curves:
        table.add_row("training loop", report.curves.verdict)
    out.print(table)
    flags = report.flags()
    if flags:
        out.print(f"[bold red]{len(flags)} flag(s):[/]")
        for flag in flags:
            out.print(f"  [red]•[/] {flag.section}/{flag.name}: {flag.message}", highlight=False)
    else:
        out.print("[bold green]no flags[/]: the synthetic set passes every check that ran")
    out.print(f"[green]wrote[/] {paths['html']} and {paths['json']}")


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        synthetic: Path = typer.Argument(..., help="Synthetic rows (.jsonl or .parquet); judged rows may sit beside a SYNTH.dropped.jsonl."),
        real: Path = typer.Option(..., "--real", "-r", help="A sample of real rows to compare against."),
        text_key: str = typer.Option(None, "--text-key", "-k", help="Text column of the synthetic rows (default: text, instruction, ...)."),
        real_text_key: str = typer.Option(None, "--real-text-key", help="Text column of the real rows (default: as for the synthetic rows)."),
        out_dir: Path = typer.Option(None, "--out", "-o", help="Report folder (default: ./validate-<synthetic file stem>)."),
        embedder_spec: str = typer.Option("minilm", "--embedder", "-e", help="minilm, st:/path/to/model or openai:MODEL@URL."),
        projection: str = typer.Option("umap", "--projection", help=f"2-D projection: {', '.join(PROJECTIONS)}."),
        syntax: bool = typer.Option(True, "--syntax/--no-syntax", help="Parse-tree features with spaCy."),
        k: int = typer.Option(5, "--k", min=1, help="Neighbours for k-NN precision/recall/density/coverage."),
        d_threshold: float = typer.Option(2.0, "--d-threshold", help="Flag a marginal whose |Cohen's d| exceeds this."),
        ks_alpha: float = typer.Option(None, "--ks-alpha", help="Also flag a marginal whose KS p-value is below this (e.g. 0.01)."),
        max_auc: float = typer.Option(0.7, "--max-auc", help="Flag a two-sample AUC above this."),
        min_coverage: float = typer.Option(0.85, "--min-coverage", help="Flag k-NN coverage below this."),
        min_recall: float = typer.Option(0.8, "--min-recall", help="Flag k-NN recall below this."),
        min_precision: float = typer.Option(0.8, "--min-precision", help="Flag k-NN precision below this."),
        dropped: Path = typer.Option(None, "--dropped", help="Rows a filter dropped (default: SYNTH.dropped.jsonl when present)."),
        judge_prefix: str = typer.Option("judge", "--judge-prefix", help="Judge column prefix (judge_score / judge_p_a)."),
        human: Path = typer.Option(None, "--human", help="Human labels JSONL for judge calibration ({\"id\": ..., \"score\": 1-5})."),
        good: float = typer.Option(3.0, "--good", help="Calibration: a human score at least this is a good row."),
        target: float = typer.Option(0.9, "--precision", help="Calibration: precision the judge threshold must reach."),
        curves: Path = typer.Option(None, "--curves", help="Loss curves (JSON/JSONL or trainer_state.json) to check."),
        student: str = typer.Option(None, "--student", help="The model these rows will train: refuse if they descend from it."),
        min_real_fraction: float = typer.Option(0.2, "--min-real-fraction", help="Real rows (_meta.real) needed to anchor a closed loop."),
        allow_closed_loop: bool = typer.Option(False, "--allow-closed-loop", help="Go on despite a closed loop (the report says so)."),
        numeric_columns: str = typer.Option(None, "--numeric-columns", help="Numeric columns to compare, comma-separated ('' for none; default: all both sets have)."),
        limit: int = typer.Option(None, "--limit", help="Use only the first N rows of each file."),
        seed: int = typer.Option(0, "--seed"),
        strict: bool = typer.Option(False, "--strict", help="Exit with status 1 when any flag is raised."),
    ) -> None:
        """Check a synthetic set against real data: coverage, two-sample AUC, projection,
        marginals, diversity, judge scores, loss curves, closed-loop guard; one HTML report.

        Example: synthwright validate generated.jsonl --real real.jsonl --out report/
        """
        if projection not in PROJECTIONS:
            raise UserError(f"Unknown projection '{projection}'.", f"Use one of: {', '.join(PROJECTIONS)}.")
        from synthwright.cli.diversity import _embed_with_progress
        from synthwright.embed import load_embedder
        from synthwright.io.rows import read_rows
        from synthwright.judges.apply import JudgeColumns, judged_mode
        from synthwright.validate import (
            ValidationConfig,
            ValidationReport,
            check_closed_loop,
            compare_distributions,
            diversity_by_round,
            judge_tier,
        )
        from synthwright.validate.curves import check_curves, load_curves

        config = ValidationConfig(k=k, d_threshold=d_threshold, ks_alpha=ks_alpha, max_auc=max_auc, min_coverage=min_coverage,
                                  min_recall=min_recall, min_precision=min_precision, projection=None if projection == "none" else projection,
                                  syntax=syntax, seed=seed,
                                  columns=None if numeric_columns is None else [c.strip() for c in numeric_columns.split(",") if c.strip()])
        synth_rows, real_rows = read_rows(synthetic)[: limit or None], read_rows(real)[: limit or None]
        report = ValidationReport(config, inputs={"synthetic": str(synthetic), "real": str(real), "embedder": embedder_spec})
        if student:  # fail before minutes of embedding
            report.closed_loop = check_closed_loop(synth_rows, student, min_real_fraction, override=allow_closed_loop)
        if curves:
            report.curves = check_curves(*load_curves(curves))
        key = _text_key(synth_rows, text_key, "synthetic")
        real_key = real_text_key or (key if isinstance(real_rows[0].get(key), str) else _text_key(real_rows, None, "real"))
        synth_texts, real_texts = _texts(synth_rows, key, str(synthetic)), _texts(real_rows, real_key, str(real))
        embedder = load_embedder(embedder_spec)
        vectors = _embed_with_progress(embedder, real_texts + synth_texts)
        real_vectors, synth_vectors = vectors[: len(real_texts)], vectors[len(real_texts):]
        with err.status("comparing distributions (coverage, classifier, marginals, projection)"):
            report.distribution = compare_distributions(real_texts, synth_texts, real_vectors, synth_vectors,
                                                        real_rows=real_rows, synthetic_rows=synth_rows, config=config)
        rounds = {str((r.get("_meta") or {}).get("round")) for r in synth_rows if (r.get("_meta") or {}).get("round") is not None}
        if len(rounds) >= 2:
            report.rounds = diversity_by_round(synth_rows, synth_vectors, texts=synth_texts)
        dropped_path = dropped or synthetic.with_name(synthetic.with_suffix("").name + ".dropped.jsonl")
        dropped_rows = read_rows(dropped_path) if dropped_path.is_file() else []
        mode = judged_mode(synth_rows + dropped_rows, judge_prefix)
        if mode is not None:
            report.judge = judge_tier(synth_rows, dropped_rows, JudgeColumns(prefix=judge_prefix).score_column(mode))
        if human:
            from synthwright.judges.calibration import calibrate, load_human_labels
            from synthwright.judges.report import detect_mode

            judged = synth_rows + [{k: v for k, v in r.items() if k != "_drop_reason"} for r in dropped_rows]
            try:
                mode = detect_mode(judged, judge_prefix)
            except ValueError:
                raise UserError(f"--human was given but '{synthetic}' has no judge columns ({judge_prefix}_score or {judge_prefix}_p_a).",
                                "Run `synthwright judge` on it first.") from None
            report.calibration = calibrate(judged, load_human_labels(human, mode), prefix=judge_prefix, good_at_least=good, target=target)
        folder = out_dir or Path(f"validate-{synthetic.stem}")
        with err.status("writing the report"), output_lock(folder):
            paths = report.write(folder)
        _summary(report, paths)
        if strict and report.flags():
            raise typer.Exit(1)
