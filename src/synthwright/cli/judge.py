"""`synthwright judge` and `synthwright calibrate`: judge rows, then check the judge against humans."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from synthwright.cli.console import err, out
from synthwright.cli.options import Flag, step_with, validated, with_step_options
from synthwright.cli.step_command import RUN_DIR_HELP, SHOW_PIPELINE_HELP, command_pipeline, prepared, run_command, show_pipeline
from synthwright.core.step import StepContext
from synthwright.errors import UserError
from synthwright.io.outputs import check_output_target, output_lock, put_in_place, refuse_same_file
from synthwright.io.rows import RowWriter, check_input_file, check_row_format, read_rows
from synthwright.judges.steps import JudgeOptions

JUDGE_FLAGS = {
    "judges": Flag("--judge", "-j"),
    "text_column": Flag("--text"),
    "context_column": Flag("--context"),
    "a_column": Flag("--a"),
    "b_column": Flag("--b"),
}
JUDGE_STEP, FILTER_STEP = "judge", "filter"  # step names: with the input file's name, they decide row ids


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _estimate(e: dict | None) -> str:
    if not e or e.get("value") is None:
        return "n/a"
    if e.get("low") is None:
        return f"{e['value']:.3f}"
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def _threshold_text(value: float) -> str:
    """Four decimals, rounded down: a threshold rounded up would drop the row it was chosen at."""
    return f"{math.floor(value * 10_000) / 10_000:g}"


def _load_weights(value: str | None):
    """None/"equal"/"agreement", or a JSON file: {name: weight} or a calibrate report."""
    if value in (None, "equal", "agreement"):
        return value
    path = Path(value)
    if not path.is_file():
        raise UserError(
            f"--weights '{value}' is neither equal, agreement nor an existing JSON file.",
            "Give a file written by `synthwright calibrate --weights-out`.",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"Weights file '{path}' is not valid JSON ({exc.msg}).") from None
    weights = data.get("suggested_weights", data) if isinstance(data, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, (int, float)) for v in weights.values()):
        raise UserError(f"Weights file '{path}' must map judge names to numbers.", 'E.g. {"qwen2.5-coder-1.5b": 0.4, "embedding": 0.8}.')
    return {str(k): float(v) for k, v in weights.items()}


def _shout_circularity(items: list[dict]) -> None:
    for item in items:
        err.print(f"[bold red]WARNING: circular judging[/]: {item['message']}")


def _print_judge_report(report: dict) -> None:
    pairwise = report["mode"] == "pairwise"
    table = Table(title=f"judges ({report['mode']}, {report['rows']} rows)")
    columns = ["judge", "model", "n", "A wins", "first wins", "both orders agree"] if pairwise else ["judge", "model", "n", "mean", "sd", "scores 1/2/3/4/5"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("judge", "model") else "right")
    for name, stats in report["judges"].items():
        model = stats["model"] or "(not an LLM)"
        if pairwise:
            table.add_row(name, model, str(stats["n"]), _fmt(stats["a_wins_rate"]), _fmt(stats["first_wins_rate"]), _fmt(stats["consistency"]))
        else:
            hist = "/".join(str(stats["histogram"][k]) for k in "12345")
            table.add_row(name, model, str(stats["n"]), _fmt(stats["mean"]), _fmt(stats["std"]), hist)
    out.print(table)
    if report["agreement"]:
        agreement = Table(title="agreement between judges")
        for column in ("judge A", "judge B", "n", "Spearman", "Cohen's kappa"):
            agreement.add_column(column)
        for row in report["agreement"]:
            kappa = _fmt(row["kappa"]) + (" (quadratic)" if row["kappa_weights"] == "quadratic" else "")
            agreement.add_row(row["a"], row["b"], str(row["n"]), _fmt(row["spearman"]), kappa)
        out.print(agreement)
    if report.get("weights"):
        out.print("weights: " + ", ".join(f"{k} {v:.3f}" for k, v in report["weights"].items()))
    if pairwise:
        out.print(
            "first wins: share of single-order verdicts won by the document shown first (0.5 = no position bias); "
            "both orders agree: share of pairs judged the same way in both orders."
        )


def _write_rows(path: Path, rows: list[dict], complete: bool = True) -> Path:
    writer = RowWriter(path)
    for row in rows:
        writer.write(row)
    return writer.close(complete)


def _write_json(path: Path, data: Any) -> None:
    """A small JSON result, held against other writers and swapped in whole."""
    check_output_target(path)
    with output_lock(path):
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(data, indent=2), encoding="utf-8")
        put_in_place(partial, path, complete=True)


def _check_columns_exist(rows: list[dict], needed: tuple[str, ...], data: Path) -> None:
    """A column no row has is a mistake in the command, not a row to fail: refuse before any work."""
    present = {key for row in rows for key in row}
    missing = [c for c in needed if c not in present]
    if missing:
        columns = ", ".join(sorted(k for k in present if k != "_meta"))
        raise UserError(f"'{data}' has no column {', '.join(missing)} (its columns: {columns}).",
                        "Name the column to judge with --text (and --context, --a, --b).")


def _failure_advice(failed: list[tuple[dict, str]]) -> str:
    """A rerun helps only where a judge failed; a row without the judged text fails again."""
    if all(reason.startswith("missing_column") for _, reason in failed):
        return "Those rows lack a judged column: fill it in, or leave them out."
    return "Rerun to retry them (finished judgments are cached)."


def _sibling(output: Path, suffix: str) -> Path:
    """out.jsonl -> out.SUFFIX (report.json, dropped.jsonl, failures.jsonl)."""
    return output.with_name(output.with_suffix("").name + "." + suffix)


def _judged_rows(judged: Path, step: str | None) -> tuple[list[dict], Path]:
    """Judged rows, with the rows judging set aside (they were judged too), and where
    `synthwright review` saves labels for them."""
    if judged.is_dir():
        from synthwright.pipeline.rundir import RunDirectory

        run = RunDirectory(judged)
        steps = sorted(p.name for p in (judged / "steps").glob("*") if (p / "state.json").is_file())
        if run.read_manifest() is None or not steps:
            raise UserError(f"'{judged}' is not a run folder with steps.", "Give a judged rows file, or the folder `synthwright run` printed.")
        if step not in steps:
            raise UserError(f"Give --step: the judged step of {judged}{f' (not {step!r})' if step else ''}.", f"Steps: {', '.join(steps)}.")
        rows = list(run.rows(step)) + list(run.rows(step, "dropped"))
        from synthwright.review.source import RunSource

        return [{k: v for k, v in row.items() if k != "_drop_reason"} for row in rows], RunSource(judged).labels_path(step)
    if step:
        raise UserError("--step goes with a run folder, not a rows file.", f"Leave it out, or give the run folder instead of '{judged}'.")
    rows = read_rows(judged)
    # Rows `judge --drop-bottom/--threshold` set aside were judged too: calibrate on all of them.
    dropped_path = _sibling(judged, "dropped.jsonl")
    if dropped_path.is_file():
        rows += [{k: v for k, v in row.items() if k != "_drop_reason"} for row in read_rows(dropped_path)]
        out.print(f"(with the {dropped_path.name} rows that judging set aside)")
    return rows, _sibling(judged, "human.jsonl")


def judge_pipeline(options: JudgeOptions, data: Path, *, seed: int = 0, limit: int | None = None,
                   drop_bottom: float | None = None, threshold: float | None = None) -> dict[str, Any]:
    """The pipeline `synthwright judge` runs, as YAML would spell it. The rows keep the lineage
    they bring (a generator's `_meta.model` is what the circularity check reads)."""
    load = {"path": str(data), "keep_meta": True, **({"limit": limit} if limit else {})}
    steps = [{"name": "input", "uses": "load", "with": load}, {"name": JUDGE_STEP, "uses": "judge", "with": step_with(options)}]
    if drop_bottom is not None or threshold is not None:
        rule = {"drop_bottom": drop_bottom} if drop_bottom is not None else {"threshold": threshold}
        # No report from the filter: the command writes its own beside the output.
        steps.append({"name": FILTER_STEP, "uses": "judge_filter", "with": {**rule, "prefix": options.prefix, "report": None}})
    return command_pipeline("judge", steps, seed=seed)


def _judge(config, context: StepContext, options: JudgeOptions, output: Path, run_dir: Path | None) -> None:
    from synthwright.judges.family import CircularJudgeWarning
    from synthwright.judges.report import judge_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CircularJudgeWarning)  # said once, loudly, from the report below
        with run_command(config, context, run_dir) as done:
            judged = list(done.run.rows(JUDGE_STEP))
            failed = [({k: v for k, v in row.items() if k != "_failure"}, row["_failure"]) for row in done.run.rows(JUDGE_STEP, "failed")]
            filtered = config.steps[-1].name == FILTER_STEP
            kept = list(done.run.rows(FILTER_STEP)) if filtered else judged
            dropped = list(done.run.rows(FILTER_STEP, "dropped")) if filtered else []
    written = _write_rows(output, kept, complete=not failed)
    if judged:
        report = judge_report(judged, options.prefix, options.generator)
    else:
        report = {"mode": options.mode, "rows": 0, "judges": {}, "agreement": [], "circularity": []}
    _shout_circularity(report["circularity"])
    report["failed"] = len(failed)
    if dropped:
        report["filter"] = {"kept": len(kept), "dropped": len(dropped), "reason": dropped[0]["_drop_reason"]}
        _write_rows(_sibling(output, "dropped.jsonl"), dropped)
    report_path = _sibling(output, "report.json")
    report_path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    if judged:
        _print_judge_report(report)
    _say_what_was_written(output, written, report_path, judged, failed, dropped, report["circularity"])


def _say_what_was_written(output: Path, written: Path, report_path: Path, judged: list, failed: list, dropped: list, circular: list) -> None:
    failures_path = _sibling(output, "failures.jsonl")
    if failed:
        _write_rows(failures_path, [{"error": reason, "row": row} for row, reason in failed])
    else:
        failures_path.unlink(missing_ok=True)
    out.print(
        f"[green]judged {len(judged)} rows[/] ({len(failed)} failed"
        + (f", {len(dropped)} dropped" if dropped else "") + f"): {written}; report: {report_path}"
    )
    if circular:
        out.print("[bold red]circular judging: see the warning above; the report lists it under 'circularity'.[/]")
    if written != output:
        err.print(f"[yellow]kept the earlier {output}[/]: an incomplete result does not replace it; this run's rows are in {written}.")
    if failed:
        err.print(f"[red]{len(failed)} rows failed[/]: details in {failures_path}. {_failure_advice(failed)}")
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    @app.command("judge")
    @with_step_options(JudgeOptions, flags=JUDGE_FLAGS, skip=("mode", "weights"))
    def judge(
        data: Path = typer.Argument(..., help="Rows to judge (.jsonl or .parquet)."),
        pairwise: bool = typer.Option(False, "--pairwise", help="Judge (context, A, B) pairs in both orders instead of single texts."),
        weights: str = typer.Option(None, "--weights", help="equal (default), agreement, or a JSON file of judge weights (from `calibrate --weights-out`)."),
        output: Path = typer.Option(None, "--output", "-o", help="Judged rows (default: DATA.judged.jsonl beside DATA)."),
        drop_bottom: float = typer.Option(None, "--drop-bottom", min=0.0, max=0.99, help="Also filter: drop this lowest-scoring fraction (e.g. 0.15)."),
        threshold: float = typer.Option(None, "--threshold", help="Also filter: drop rows scoring below this (e.g. from `calibrate`)."),
        limit: int = typer.Option(None, "--limit", min=1, help="Judge only the first N rows."),
        seed: int = typer.Option(0, "--seed", help="Run seed (judges that sample derive their seeds from it)."),
        cache: Path = typer.Option(None, "--cache", help="Request cache file."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the request cache."),
        refresh: bool = typer.Option(False, "--refresh", help="Ignore cached answers and ask again."),
        run_dir: Path = typer.Option(None, "--run-dir", help=RUN_DIR_HELP),
        show: bool = typer.Option(False, "--show-pipeline", help=SHOW_PIPELINE_HELP),
        step_options: dict = None,
    ) -> None:
        """Judge rows with one or more judges; write per-judge and combined scores and a bias report.

        Example: synthwright judge queries.jsonl --judge llamacpp:qwen2.5-coder-1.5b --judge embedding --text query --context document
        """
        from synthwright.judges.apply import JudgeColumns

        mode = "pairwise" if pairwise else "pointwise"
        if pairwise and not step_options.get("context_column"):
            raise UserError("--pairwise needs --context: the column holding the query or instruction A and B answer.")
        if drop_bottom is not None and threshold is not None:
            raise UserError("Give --drop-bottom or --threshold, not both.")
        options = validated(JudgeOptions, {**step_options, "mode": mode, "weights": _load_weights(weights)}, JUDGE_FLAGS)
        output = output or data.with_name(data.with_suffix("").name + ".judged.jsonl")
        check_input_file(data)
        check_row_format(output)
        check_output_target(output)
        refuse_same_file(output, data)
        rows = read_rows(data)
        columns = JudgeColumns(text=options.text_column, context=options.context_column, a=options.a_column, b=options.b_column, prefix=options.prefix)
        _check_columns_exist(rows[:limit] if limit else rows, columns.needed(mode), data)
        pipeline = judge_pipeline(options, data.resolve(), seed=seed, limit=limit, drop_bottom=drop_bottom, threshold=threshold)
        if show:
            show_pipeline(pipeline)
            return
        context = StepContext(workdir=Path.cwd(), cache_file=cache, read_cache=not (no_cache or refresh), write_cache=not no_cache)
        try:
            config = prepared(pipeline, context)
            with output_lock(output):  # held while judging: a second judge of the same output is refused at once
                _judge(config, context, options, output, run_dir)
        finally:
            context.close()

    @app.command("calibrate")
    def calibrate(
        judged: Path = typer.Option(..., "--judged", help="Rows written by `synthwright judge`, or a run folder (with --step)."),
        human: Path = typer.Option(None, "--human", help='Human labels, JSONL: {"id": ..., "score": 1-5} or {"id": ..., "preference": "a"|"b"} (default: those `synthwright review` saved).'),
        step: str = typer.Option(None, "--step", help="With a run folder: the judged step (its kept and dropped rows are read)."),
        good: float = typer.Option(3.0, "--good", help="Pointwise: a human score at least this is a row worth keeping."),
        target: float = typer.Option(0.9, "--target", "--precision", min=0.0, max=1.0, help="Precision (pointwise) or accuracy (pairwise) the kept rows must reach."),
        conservative: bool = typer.Option(False, "--conservative", help="Choose the threshold by the interval's lower bound, not the estimate."),
        min_kept: int = typer.Option(5, "--min-kept", min=1, help="Ignore thresholds that keep fewer labelled rows than this."),
        prefix: str = typer.Option("judge", "--prefix", help="Prefix of the judge columns."),
        id_column: str = typer.Option("id", "--id-column", help="Row id column in DATA (a label may name its row by this, by its _meta.id or by its 0-based position)."),
        id_key: str = typer.Option("id", "--id-key", help="Id field in the human labels file."),
        label_key: str = typer.Option(None, "--label-key", help="Label field in the human labels file (default: score, preference, label or human)."),
        resamples: int = typer.Option(1000, "--bootstrap", min=100, help="Bootstrap resamples for the intervals."),
        level: float = typer.Option(0.95, "--level", min=0.5, max=0.999, help="Confidence level of the intervals."),
        seed: int = typer.Option(0, "--seed"),
        output: Path = typer.Option(None, "--output", "-o", help="Write the full report as JSON here."),
        weights_out: Path = typer.Option(None, "--weights-out", help="Write judge weights (agreement with humans) for `judge --weights`."),
    ) -> None:
        """Agreement of judge scores with human labels (with intervals), and the threshold that meets a target.

        Example: synthwright calibrate --judged queries.judged.jsonl --human human.jsonl --good 3 --precision 0.9
        Example: synthwright calibrate --judged runs/demo --step judged   (labels from `synthwright review runs/demo`)
        """
        from synthwright.judges.calibration import calibrate as run_calibration
        from synthwright.judges.calibration import load_human_labels
        from synthwright.judges.report import detect_mode

        rows, labels_default = _judged_rows(judged, step)
        human = human or labels_default
        if not human.is_file():
            raise UserError(f"Human labels file '{human}' does not exist.",
                            f"Label a sample with `synthwright review {judged}`, or give --human LABELS.jsonl.")
        try:
            mode = detect_mode(rows, prefix)
        except ValueError:
            raise UserError(f"'{judged}' has no judge columns ({prefix}_score or {prefix}_p_a).", "Run `synthwright judge` on it first.") from None
        labels = load_human_labels(human, mode, id_key=id_key, label_key=label_key)
        report = run_calibration(
            rows, labels, prefix=prefix, id_column=id_column, good_at_least=good, target=target, resamples=resamples,
            level=level, seed=seed, conservative=conservative, min_kept=min_kept,
        )
        _shout_circularity(report["circularity"])
        _print_calibration(report, prefix)
        if output:
            _write_json(output, report)
            out.print(f"report: {output}")
        if weights_out:
            if report["suggested_weights"] is None:
                err.print("[yellow]no judge agrees with the humans better than chance: no weights written[/]")
            else:
                _write_json(weights_out, report["suggested_weights"])
                out.print(f"weights: {weights_out} (use with `synthwright judge --weights {weights_out}`)")


def _print_calibration(report: dict, prefix: str) -> None:
    pct = int(round(report["level"] * 100))
    out.print(
        f"{report['matched']} human labels matched judged rows"
        + (f" ({report['unmatched_labels']} unmatched" + (f", {report['ties_left_out']} ties left out" if report["ties_left_out"] else "") + ")"
           if report["unmatched_labels"] or report["ties_left_out"] else "")
    )
    table = Table(title=f"agreement with humans ({report['mode']}; {pct}% bootstrap intervals, {report['resamples']} resamples)")
    names = list(report["judges"])
    table.add_column("statistic")
    table.add_column("combined")
    for name in names:
        table.add_column(name)
    if report["mode"] == "pointwise":
        labels = {"spearman": "Spearman", "kendall": "Kendall tau-b", "qwk": "quadratic-weighted kappa", "mae": "MAE"}
        for key, label in labels.items():
            table.add_row(label, _estimate(report["agreement"]["combined"][key]), *[_estimate(report["judges"][n][key]) for n in names])
    else:
        labels = {"accuracy": "accuracy (both orders)", "accuracy_a_first": "accuracy, A-first order only",
                  "accuracy_b_first": "accuracy, B-first order only", "first_wins_rate": "first shown wins",
                  "consistency": "both orders agree"}
        for key, label in labels.items():
            combined = _estimate(report["agreement"]["combined"][key]) if key in report["agreement"]["combined"] else ""
            table.add_row(label, combined, *[_estimate(report["judges"][n][key]) for n in names])
    out.print(table)
    choice = report["threshold"]
    target = report["target"]
    if report["mode"] == "pointwise":
        goal = f"keep rows a human rates >= {target['good_at_least']:g} with precision >= {target['value']:g}"
        column = f"{prefix}_score"
    else:
        goal = f"keep pairs whose verdict agrees with humans with accuracy >= {target['value']:g}"
        column = f"confidence of {prefix}_p_a (|P(A) - 0.5| * 2)"
    if not choice["met"]:
        out.print(f"[yellow]target: {goal}: not reachable[/]: {choice['note']}")
        return
    kept_word = "precision" if report["mode"] == "pointwise" else "accuracy"
    out.print(
        f"[bold]recommended threshold: {column} >= {_threshold_text(choice['threshold'])}[/]  (target: {goal})\n"
        f"  expected {kept_word} {_estimate(choice['precision'])}, recall {_estimate(choice['recall'])}, "
        f"keeps {_estimate(choice['kept'])} of the labelled rows ({pct}% Wilson intervals)\n"
        f"  on all judged rows it drops {choice['data_drop_fraction']:.1%}\n"
        f"  {choice['note']}"
    )
    if report["mode"] == "pointwise":
        t = _threshold_text(choice["threshold"])
        out.print(f"  apply it: synthwright judge ... --threshold {t}   or in a pipeline: uses: judge_filter, with: {{threshold: {t}}}")
