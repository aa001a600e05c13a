"""The reranker run's HTML report: one self-contained page (figures inline, nothing fetched,
every string from data escaped). Sections: data (rows per step, drops by reason, how often
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
from synthwright.validate.html_report import STYLE, _e, _n, _table
from synthwright.validate.plots import _figure, _png
from synthwright.validate.report import data_uri


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
    return "<h2>Data</h2>" + _table(["step", "in", "out", "dropped (reason)", "failed", "LLM requests", "cache hits", "seconds", "s / request"], rows)


def _queries_section(rows: Sequence[dict], not_round_trip: int = 0, shown: int = 12) -> str:
    """How hard the synthetic queries are for the first stage, and a seeded sample of them
    with what the teacher read (the sentence, under --focus sentence) and the labels."""
    ranks = [row["source_rank"] for row in rows if row.get("source_rank") is not None]
    if not ranks:
        return ""
    first = sum(rank == 1 for rank in ranks)
    dropped = f" ({_n(not_round_trip)} more were dropped because it did not come back within the round-trip depth)" if not_round_trip else ""
    summary = (f"<p>The source document comes back first from the hybrid retriever for {_n(first)} of {_n(len(ranks))} kept "
               f"queries ({first / len(ranks):.0%}), in its top 3 for {_n(sum(rank <= 3 for rank in ranks))}{dropped}. A query "
               "the first stage already answers teaches the student little.</p>")
    sample = np.random.default_rng(0).choice(len(rows), size=min(shown, len(rows)), replace=False)
    lines = []
    for index in sorted(int(i) for i in sample):
        row = rows[index]
        labels = {item["doc_id"]: item["label"] for item in row.get("labels") or ()}
        best_other = max((label for doc, label in labels.items() if doc != row.get("doc_id")), default=None)
        document = row.get("document") or ""
        read = row.get("sentence") or (document[:300] + " ..." if len(document) > 300 else document)
        lines.append([row.get("query"), read, row.get("source_rank"), labels.get(row.get("doc_id")), best_other])
    return ("<h3>Queries</h3>" + summary
            + _table(["query", "what the teacher read", "source rank", "source label", "best other label"], lines))


def _judges_section(run_dir: Path, rows: Sequence[dict]) -> str:
    report = _read_json(run_dir / "labels_report.json")
    if not report:
        return ""
    lines = []
    for name, member in report["members"].items():
        judged = sum(1 for row in rows for c in row.get("comparisons") or () if (c.get("by") or {}).get(name) is not None)
        lines.append([name, judged, member["anchor_pairs"], member["accuracy"], report["weights"].get(name), member.get("scale"), member.get("first_wins")])
    return (
        "<h2>Judges</h2><p class=\"hint\">How often each member picks the right side of anchor pairs (the source document "
        "against a bottom-ranked candidate: the source should win), the weight that follows from it (log-odds), the scale "
        "of its logits (they are divided by it before combining), and for LLM members how often the document shown first "
        "won (0.5 = no position bias; each pair is asked in both orders, so the bias cancels in the label).</p>"
        + _table(["member", "pairs judged", "anchor pairs", "right side", "weight", "logit scale", "first shown wins"], lines)
        + f"<p>{_n(report['queries'])} queries, {_n(report['comparisons'])} comparisons.</p>"
    )


def _calibration_section(run_dir: Path) -> str:
    """Each member on the human calibration sample (calibrate_judges), when the run has one."""
    report = _read_json(run_dir / "calibration.json")
    if not report:
        return ""
    lines = [[name, m["anchor_pairs"], m["accuracy"], m.get("accuracy_hard"), m.get("accuracy_medium"), m["weight"], m.get("first_wins")]
             for name, m in report["members"].items()]
    return (
        "<h3>On the human calibration sample</h3><p class=\"hint\">Real queries with real labels: a relevant document "
        "against the retriever's top non-relevant one (hard) and against one from further down (medium). The "
        "calibrated labels weigh each member by this accuracy instead of the anchor-pair one.</p>"
        + _table(["member", "pairs", "right side", "hard", "medium", "weight", "first shown wins"], lines)
        + f"<p>{_n(report['queries'])} queries, {_n(report['pairs'])} pairs.</p>"
    )


def _labels_png(rows: Sequence[dict]) -> bytes | None:
    source, others = [], []
    for row in rows:
        for item in row.get("labels") or ():
            (source if item["doc_id"] == row.get("doc_id") else others).append(item["label"])
    if not source:
        return None
    figure = _figure(7, 3.4)
    ax = figure.subplots()
    bins = np.linspace(0, 1, 21)
    ax.hist(others, bins=bins, alpha=0.7, label=f"retrieved candidates ({len(others)})", color="#4c72b0")
    ax.hist(source, bins=bins, alpha=0.7, label=f"source documents ({len(source)})", color="#dd8452")
    ax.set_xlabel("recovered label (Thurstone score through Phi)")
    ax.set_ylabel("documents")
    ax.legend()
    return _png(figure)


def _curves_png(curves: dict[str, list]) -> bytes | None:
    if not curves.get("train"):
        return None
    figure = _figure(7, 3.4)
    ax = figure.subplots()
    train = np.asarray(curves["train"], float)
    ax.plot(train[:, 0], train[:, 1], label="training loss (synthetic labels)", color="#dd8452")
    if curves.get("validation"):
        val = np.asarray(curves["validation"], float)
        ax.plot(val[:, 0], val[:, 1], label="validation loss (real labels)", color="#4c72b0", marker="o", markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return _png(figure)


def _img(png: bytes | None, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{data_uri(png)}">' if png else ""


def _students_section(run_dir: Path) -> str:
    parts = []
    for training in sorted(run_dir.glob("*/training.json")):
        info = _read_json(training) or {}
        parts.append(f"<h3>{_e(training.parent.name)}</h3><p>{_e(info.get('kind'))}-encoder, {_n(info.get('examples'))} training examples, "
                     f"{_n(info.get('seconds'), 1)} s</p>" + _img(_curves_png(info.get("curves") or {}), f"loss curves of {training.parent.name}"))
    return "<h2>Student</h2>" + "".join(parts) if parts else ""


def _evaluation_section(run_dir: Path) -> str:
    evaluation = _read_json(run_dir / "evaluation.json")
    if not evaluation:
        return "<h2>Evaluation</h2><p class=\"muted\">No real evaluation queries were given (--eval-queries, --eval-qrels).</p>"
    metrics = list(next(iter(evaluation["table"].values())))
    table = _table(["system", *metrics], [[name, *values.values()] for name, values in evaluation["table"].items()])
    gains = _gain_table(evaluation["gains"], "nDCG@10 gain over hybrid")
    notes = "".join(f"<p>{_e(note)}</p>" for note in evaluation.get("notes") or ())
    return (f"<h2>Evaluation on {evaluation['queries']} real queries</h2>{table}"
            f"<h3>Gain over hybrid (paired bootstrap; sampled rows against hybrid on the same sample)</h3>{gains}"
            f"{_over_control(evaluation.get('over_control') or {})}{notes}")


def _over_control(over_control: dict) -> str:
    """What the student itself adds: BM25 + student against BM25 + the untrained base model."""
    if not over_control:
        return ""
    return ("<h3>Gain over the control (the untrained base model in the student's place: same candidates, same fusion)</h3>"
            + _gain_table(over_control, "nDCG@10 gain over the control"))


def _gain_table(gains: dict, header: str) -> str:
    return _table(["system", header, "95% low", "95% high", "p"],
                  [[name, g["difference"], g["low"], g["high"], g["p_value"]] for name, g in gains.items()])


def render(run_dir: Path, rows: Sequence[dict], title: str) -> str:
    manifest = _read_json(run_dir / "manifest.json") or {}
    head = f"<h1>{_e(title)}</h1><p class=\"muted\">run folder {_e(run_dir)}; pipeline {_e(manifest.get('name', ''))}</p>"
    labels = "<h2>Labels</h2>" + _img(_labels_png(rows), "distribution of recovered labels") if rows else ""
    step_stats = _step_stats(run_dir)
    # Whatever the candidates step is called in this pipeline, its round-trip drops carry this reason.
    not_round_trip = sum(stats.dropped.get("not_round_trip", 0) for stats in step_stats.values())
    body = head + _steps_section(step_stats) + _queries_section(rows, not_round_trip) + _judges_section(run_dir, rows) + _calibration_section(run_dir) + labels + _students_section(run_dir) + _evaluation_section(run_dir)
    return f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"


def write_report(run_dir: Path, rows: Sequence[dict], path: Path, title: str = "Synthetic reranker") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(Path(run_dir), rows, title), encoding="utf-8")
    return path


def summary(run_dir: Path) -> dict[str, Any]:
    return {"evaluation": _read_json(Path(run_dir) / "evaluation.json"), "labels": _read_json(Path(run_dir) / "labels_report.json")}
