"""The reranker run's HTML report: one self-contained page (figures inline, nothing fetched),
from the templates in reports/templates/reranker/ (autoescaped: every string from data is
escaped by the template engine). Sections: data (rows per step, drops by reason, how often
the first stage already finds each query's source, a sample of queries), judges
(reliability, weight, position bias per member, LLM cost), labels (distribution, source vs
candidates), student (loss curves), evaluation on real queries (table, gains with intervals).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthwright.core.step import StepStats
from synthwright.reports import render as render_template
from synthwright.reports.figures import new_figure, png_bytes


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _step_stats(run_dir: Path) -> dict[str, StepStats]:
    """StepStats of every step that has run, in pipeline order (the report itself has not, on
    its first run)."""
    from synthwright.pipeline.rundir import RunDirectory

    rundir = RunDirectory(run_dir)
    manifest = rundir.read_manifest() or {}
    names = [step["name"] for step in (manifest.get("config") or {}).get("steps", [])]
    return {name: rundir.merged_stats(name) for name in names if rundir.read_state(name) is not None}


def _steps_section(step_stats: dict[str, StepStats]) -> str:
    rows = []
    for name, stats in step_stats.items():
        drops = ", ".join(f"{reason} {count}" for reason, count in stats.dropped.most_common()) or "–"
        failed = ", ".join(f"{reason} {count}" for reason, count in stats.failed.most_common()) or "–"
        per = stats.seconds / stats.requests_sent if stats.requests_sent else None
        rows.append([name, stats.rows_in, stats.rows_out, drops, failed, stats.requests_sent, stats.cache_hits, stats.seconds, per])
    return render_template("reranker/data.html", rows=rows)


def _queries_section(rows: Sequence[dict], not_round_trip: int = 0, shown: int = 12) -> str:
    """How hard the synthetic queries are for the first stage, and a seeded sample of them
    with what the teacher read (the sentence, under --focus sentence) and the labels."""
    ranks = [row["source_rank"] for row in rows if row.get("source_rank") is not None]
    if not ranks:
        return ""
    sample = np.random.default_rng(0).choice(len(rows), size=min(shown, len(rows)), replace=False)
    lines = []
    for index in sorted(int(i) for i in sample):
        row = rows[index]
        labels = {item["doc_id"]: item["label"] for item in row.get("labels") or ()}
        best_other = max((label for doc, label in labels.items() if doc != row.get("doc_id")), default=None)
        document = row.get("document") or ""
        read = row.get("sentence") or (document[:300] + " ..." if len(document) > 300 else document)
        lines.append([row.get("query"), read, row.get("source_rank"), labels.get(row.get("doc_id")), best_other])
    return render_template("reranker/queries.html", first=sum(rank == 1 for rank in ranks), total=len(ranks),
                           top3=sum(rank <= 3 for rank in ranks), not_round_trip=not_round_trip, rows=lines)


def _judges_section(run_dir: Path, rows: Sequence[dict]) -> str:
    report = _read_json(run_dir / "labels_report.json")
    if not report:
        return ""
    lines = []
    for name, member in report["members"].items():
        judged = sum(1 for row in rows for c in row.get("comparisons") or () if (c.get("by") or {}).get(name) is not None)
        lines.append([name, judged, member["anchor_pairs"], member["accuracy"], report["weights"].get(name), member.get("scale"), member.get("first_wins")])
    return render_template("reranker/judges.html", rows=lines, queries=report["queries"], comparisons=report["comparisons"])


def _calibration_section(run_dir: Path) -> str:
    """Each member on the human calibration sample (calibrate_judges), when the run has one."""
    report = _read_json(run_dir / "calibration.json")
    if not report:
        return ""
    lines = [[name, m["anchor_pairs"], m["accuracy"], m.get("accuracy_hard"), m.get("accuracy_medium"), m["weight"], m.get("first_wins")]
             for name, m in report["members"].items()]
    return render_template("reranker/calibration.html", rows=lines, queries=report["queries"], pairs=report["pairs"])


def _labels_png(rows: Sequence[dict]) -> bytes | None:
    source, others = [], []
    for row in rows:
        for item in row.get("labels") or ():
            (source if item["doc_id"] == row.get("doc_id") else others).append(item["label"])
    if not source:
        return None
    figure = new_figure(7, 3.4)
    ax = figure.subplots()
    bins = np.linspace(0, 1, 21)
    ax.hist(others, bins=bins, alpha=0.7, label=f"retrieved candidates ({len(others)})", color="#4c72b0")
    ax.hist(source, bins=bins, alpha=0.7, label=f"source documents ({len(source)})", color="#dd8452")
    ax.set_xlabel("recovered label (Thurstone score through Phi)")
    ax.set_ylabel("documents")
    ax.legend()
    return png_bytes(figure)


def _curves_png(curves: dict[str, list]) -> bytes | None:
    if not curves.get("train"):
        return None
    figure = new_figure(7, 3.4)
    ax = figure.subplots()
    train = np.asarray(curves["train"], float)
    ax.plot(train[:, 0], train[:, 1], label="training loss (synthetic labels)", color="#dd8452")
    if curves.get("validation"):
        val = np.asarray(curves["validation"], float)
        ax.plot(val[:, 0], val[:, 1], label="validation loss (real labels)", color="#4c72b0", marker="o", markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return png_bytes(figure)


def _students_section(run_dir: Path) -> str:
    students = []
    for training in sorted(run_dir.glob("*/training.json")):
        info = _read_json(training) or {}
        students.append({"name": training.parent.name, "kind": info.get("kind"), "examples": info.get("examples"),
                         "seconds": info.get("seconds"), "curves": _curves_png(info.get("curves") or {})})
    return render_template("reranker/students.html", students=students) if students else ""


def _evaluation_section(run_dir: Path) -> str:
    evaluation = _read_json(run_dir / "evaluation.json")
    if not evaluation:
        return render_template("reranker/evaluation.html", evaluation=None)
    metrics = list(next(iter(evaluation["table"].values())))
    return render_template(
        "reranker/evaluation.html", evaluation=evaluation, header=["system", *metrics],
        table=[[name, *values.values()] for name, values in evaluation["table"].items()],
        gains=_gain_rows(evaluation["gains"]), over_control=_gain_rows(evaluation.get("over_control") or {}),
    )


def _first_stage_section(run_dir: Path) -> str:
    """The first stage chosen, why, and the register check of the synthetic queries."""
    choice = _read_json(run_dir / "first_stage.json")
    if not choice:
        return ""
    rows = [[method, scores["mrr@10"], scores[f"recall@{choice['k']}"]] for method, scores in choice["measured"].items()]
    register = _read_json(run_dir / "register.json")
    pairs = [list(pair) for pair in zip(register.get("real_examples") or (), register.get("synthetic_examples") or ())] if register else []
    return render_template("reranker/first_stage.html", choice=choice, rows=rows, register=register, pairs=pairs)


def _gain_rows(gains: dict) -> list[list]:
    """What the student adds over a baseline (hybrid, or the untrained control): one row a system."""
    return [[name, g["difference"], g["low"], g["high"], g["p_value"]] for name, g in gains.items()]


def render(run_dir: Path, rows: Sequence[dict], title: str) -> str:
    manifest = _read_json(run_dir / "manifest.json") or {}
    step_stats = _step_stats(run_dir)
    # Whatever the candidates step is called in this pipeline, its round-trip drops carry this reason.
    not_round_trip = sum(stats.dropped.get("not_round_trip", 0) for stats in step_stats.values())
    labels = render_template("reranker/labels.html", png=_labels_png(rows)) if rows else ""
    sections = [_steps_section(step_stats), _queries_section(rows, not_round_trip), _first_stage_section(run_dir), _judges_section(run_dir, rows),
                _calibration_section(run_dir), labels, _students_section(run_dir), _evaluation_section(run_dir)]
    return render_template("reranker/page.html", title=title, run_dir=str(run_dir), pipeline=manifest.get("name", ""), sections=sections)


def write_report(run_dir: Path, rows: Sequence[dict], path: Path, title: str = "Synthetic reranker") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(Path(run_dir), rows, title), encoding="utf-8")
    return path


def summary(run_dir: Path) -> dict[str, Any]:
    return {"evaluation": _read_json(Path(run_dir) / "evaluation.json"), "labels": _read_json(Path(run_dir) / "labels_report.json"),
            "first_stage": _read_json(Path(run_dir) / "first_stage.json"), "register": _read_json(Path(run_dir) / "register.json")}
