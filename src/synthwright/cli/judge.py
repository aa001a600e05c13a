"""`synthwright judge` and `synthwright calibrate`: judge rows, then check the judge against humans."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from synthwright.cli.console import err, out
from synthwright.cli.progress import RichProgress
from synthwright.errors import UserError
from synthwright.io.outputs import check_output_target, output_lock, put_in_place, refuse_same_file
from synthwright.io.rows import RowWriter, check_row_format, read_rows


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


def register(app: typer.Typer) -> None:
    @app.command("judge")
    def judge(
        data: Path = typer.Argument(..., help="Rows to judge (.jsonl or .parquet)."),
        judges: list[str] = typer.Option(..., "--judge", "-j", help="Judge: a model spec (llamacpp:qwen2.5-coder-1.5b, openai:gpt-4o-mini) or `embedding`; NAME=SPEC names it. Repeat for an ensemble."),
        rubric: str = typer.Option("default", "--rubric", help="Pointwise rubric: `default` (relevance, naturalness, difficulty) or a YAML file."),
        pairwise: bool = typer.Option(False, "--pairwise", help="Judge (context, A, B) pairs in both orders instead of single texts."),
        text: str = typer.Option("text", "--text", help="Pointwise: the column to judge."),
        context: str = typer.Option(None, "--context", help="The context column (document, query, instruction); required with --pairwise."),
        a: str = typer.Option("a", "--a", help="Pairwise: the column holding candidate A."),
        b: str = typer.Option("b", "--b", help="Pairwise: the column holding candidate B."),
        output: Path = typer.Option(None, "--output", "-o", help="Judged rows (default: DATA.judged.jsonl beside DATA)."),
        scoring: str = typer.Option("probs", "--scoring", help="probs: expected score from next-token probabilities; json: one structured answer with a reason."),
        reasons: bool = typer.Option(None, "--reasons/--no-reasons", help="Ask for a one-sentence reason (default: only with --scoring json)."),
        weights: str = typer.Option(None, "--weights", help="equal (default), agreement, or a JSON file of judge weights (from `calibrate --weights-out`)."),
        generator: str = typer.Option(None, "--generator", help="The model that generated DATA, when rows lack `_meta.model` (for the circularity check)."),
        drop_bottom: float = typer.Option(None, "--drop-bottom", min=0.0, max=0.99, help="Also filter: drop this lowest-scoring fraction (e.g. 0.15)."),
        threshold: float = typer.Option(None, "--threshold", help="Also filter: drop rows scoring below this (e.g. from `calibrate`)."),
        max_chars: int = typer.Option(None, "--max-chars", min=20, help="Truncate each text to this many characters (cheaper judging)."),
        instruction: str = typer.Option(None, "--instruction", help="Pairwise question (default: 'Which of the two documents answers the search query? Reply with 1 or 2.')."),
        text_label: str = typer.Option(None, "--text-label", help="What the judged text is called in the rubric prompt (default: Query)."),
        context_label: str = typer.Option(None, "--context-label", help="What the context is called in the rubric prompt (default: Document)."),
        limit: int = typer.Option(None, "--limit", min=1, help="Judge only the first N rows."),
        prefix: str = typer.Option("judge", "--prefix", help="Prefix of the columns written (judge_score, judge_by, ...)."),
        cache: Path = typer.Option(None, "--cache", help="Request cache file."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the request cache."),
        refresh: bool = typer.Option(False, "--refresh", help="Ignore cached answers and ask again."),
    ) -> None:
        """Judge rows with one or more judges; write per-judge and combined scores and a bias report.

        Example: synthwright judge queries.jsonl --judge llamacpp:qwen2.5-coder-1.5b --judge embedding --text query --context document
        """
        from synthwright.core.step import StepContext
        from synthwright.judges.apply import JudgeColumns, judge_rows
        from synthwright.judges.ensemble import JudgeEnsemble
        from synthwright.judges.factory import build_judge
        from synthwright.judges.filtering import select_by_score
        from synthwright.judges.prompts import PairwisePrompt
        from synthwright.judges.report import judge_report
        from synthwright.judges.rubric import load_rubric

        mode = "pairwise" if pairwise else "pointwise"
        if pairwise and not context:
            raise UserError("--pairwise needs --context: the column holding the query or instruction A and B answer.")
        if scoring not in ("probs", "json"):
            raise UserError(f"--scoring must be probs or json, not '{scoring}'.")
        if drop_bottom is not None and threshold is not None:
            raise UserError("Give --drop-bottom or --threshold, not both.")
        output = output or data.with_name(data.with_suffix("").name + ".judged.jsonl")
        check_row_format(output)
        check_output_target(output)
        refuse_same_file(output, data)
        rows = read_rows(data)
        rows = rows[:limit] if limit else rows
        columns = JudgeColumns(text=text, context=context, a=a, b=b, prefix=prefix)
        _check_columns_exist(rows, columns.needed(mode), data)
        the_rubric = load_rubric(rubric)
        labels = {k: v for k, v in (("text_label", text_label), ("context_label", context_label)) if v}
        the_rubric = the_rubric.model_copy(update=labels) if labels else the_rubric
        step_context = StepContext(cache_file=cache, read_cache=not (no_cache or refresh), write_cache=not no_cache)
        prompt = PairwisePrompt(instruction=instruction) if instruction else PairwisePrompt()
        members = [
            build_judge(spec, mode, rubric=the_rubric, scoring=scoring, reasons=reasons, max_chars=max_chars,
                        prompt=prompt, context=step_context)
            for spec in judges
        ]
        ensemble = JudgeEnsemble(members, _load_weights(weights))
        with output_lock(output):  # held while judging: a second judge of the same output is refused at once
            try:
                judged = judge_rows(
                    rows, ensemble, mode, columns, generator=generator, warn=False,
                    progress=lambda j: RichProgress(f"judge {j.name}") if j.model else None,
                )
            finally:
                step_context.close()
            _shout_circularity([c.to_dict() for c in judged.circularity])
            kept, dropped = judged.rows, []
            if drop_bottom is not None or threshold is not None:
                kept, dropped = select_by_score(judged.rows, columns.score_column(mode), drop_bottom=drop_bottom, threshold=threshold)
            complete = not judged.failed
            written = _write_rows(output, kept, complete)
            report = judge_report(judged.rows, prefix, generator) if judged.rows else {"mode": mode, "rows": 0, "judges": {}, "agreement": [], "circularity": []}
            report["failed"] = len(judged.failed)
            if dropped:
                report["filter"] = {"kept": len(kept), "dropped": len(dropped), "reason": dropped[0][1]}
                _write_rows(_sibling(output, "dropped.jsonl"), [{**row, "_drop_reason": reason} for row, reason in dropped])
            report_path = _sibling(output, "report.json")
            report_path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
            if judged.rows:
                _print_judge_report(report)
            failures_path = _sibling(output, "failures.jsonl")
            if judged.failed:
                _write_rows(failures_path, [{"error": reason, "row": row} for row, reason in judged.failed])
            else:
                failures_path.unlink(missing_ok=True)
            out.print(
                f"[green]judged {len(judged.rows)} rows[/] ({len(judged.failed)} failed"
                + (f", {len(dropped)} dropped" if dropped else "") + f"): {written}; report: {report_path}"
            )
            if judged.circularity:
                out.print("[bold red]circular judging: see the warning above; the report lists it under 'circularity'.[/]")
            if written != output:
                err.print(f"[yellow]kept the earlier {output}[/]: an incomplete result does not replace it; this run's rows are in {written}.")
            if judged.failed:
                err.print(f"[red]{len(judged.failed)} rows failed[/]: details in {failures_path}. {_failure_advice(judged.failed)}")
                raise typer.Exit(code=1)

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
        id_column: str = typer.Option("id", "--id-column", help="Row id column in DATA when rows have no _meta.id (else row position)."),
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
