"""`classify_report`: one self-contained HTML page for a classify run, verdict first.

The verdict names the best synthetic student and what it does against the teacher it came
from (accuracy gain with its paired-bootstrap interval, and how much cheaper a prediction
is), then against MiniLM zero-shot and the real-label students. The rest is the evidence:
every system on the same real rows, confusion matrices, the learning curve, rows per step
and drops by reason, per-label counts, the label check, and how far the synthetic texts
are from the real style sample (two-sample AUC and coverage, from the validate module).
The page is rendered by Jinja2 with autoescape on: no string from data reaches it unescaped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from pydantic import Field

from synthwright.classify.generation import ReadsTask, TaskOptions
from synthwright import atomic
from synthwright.core.lineage import Row
from synthwright.core.step import PassThroughStage, StepStats, register_step

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("synthwright.classify", "templates"), autoescape=True, undefined=jinja2.StrictUndefined)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def verdict(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The headline: does the best student beat the teacher, by how much, at what cost."""
    systems = {s["name"]: s for s in evaluation["systems"]}
    students = [s for s in evaluation["systems"] if s["kind"] == "student"]
    if not students:
        return {"wins": False, "text": "No student was evaluated.", "details": []}
    best = max(students, key=lambda s: s["accuracy"])
    gains = [g for g in evaluation["gains"] if g["b"] == best["name"]]
    # Against the teacher in its best form (calibrated or not): the harder comparison.
    teachers = [g for g in gains if systems[g["a"]]["kind"] == "teacher"]
    teacher = max(teachers, key=lambda g: g["accuracy"]["a"], default=None)
    details = [_gain_line(g, systems[g["a"]]) for g in gains if g is not teacher]
    if teacher is None:
        return {"wins": False, "text": f"The {best['name']} scores {best['accuracy']:.3f} accuracy on {best['rows']} real rows (no teacher row).",
                "details": details}
    gain = teacher["accuracy"]
    cost = _cost_ratio(systems[teacher["a"]], best)
    wins = gain["low"] > 0
    word = "beats" if wins else ("does not beat" if gain["difference"] <= 0 else "is not shown to beat")
    text = (f"The {best['name']} {word} the teacher: accuracy {gain['b']:.3f} against {gain['a']:.3f}, "
            f"{gain['difference']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}] on the teacher's {teacher['rows']} rows{cost}.")
    return {"wins": wins, "text": text, "details": details}


def _cost_ratio(teacher: dict[str, Any], student: dict[str, Any]) -> str:
    t, s = teacher.get("seconds_per_1000"), student.get("seconds_per_1000")
    if not t or not s:
        return ""
    return f", at 1/{t / s:,.0f} of its cost per prediction ({s:.1f} s against {t:,.0f} s per 1,000)"


def _gain_line(gain: dict[str, Any], other: dict[str, Any]) -> str:
    a = gain["accuracy"]
    return (f"Over {other['name']} ({a['a']:.3f}): {a['difference']:+.3f} [{a['low']:+.3f}, {a['high']:+.3f}] accuracy, "
            f"macro-F1 {gain['macro_f1']['difference']:+.3f} [{gain['macro_f1']['low']:+.3f}, {gain['macro_f1']['high']:+.3f}].")


def curve_png(curve: Sequence[dict[str, Any]], references: dict[str, float]) -> bytes | None:
    if len(curve) < 2:
        return None
    from synthwright.reports.figures import new_figure, png_bytes

    figure = new_figure(7, 4)
    axes = figure.subplots()
    axes.plot([p["examples"] for p in curve], [p["accuracy"] for p in curve], marker="o", label="synthetic student")
    for i, (name, value) in enumerate(references.items()):
        axes.axhline(value, linestyle="--", color=f"C{i + 1}", label=name)
    axes.set_xscale("log")
    axes.set_xlabel("synthetic examples")
    axes.set_ylabel("accuracy on real rows")
    axes.legend(fontsize=8)
    return png_bytes(figure)


# Steps whose time is mostly something else (MiniLM, training) report their LLM seconds themselves.
_OWN_TEACHER_SECONDS = {"label_check": "label_check.json", "evaluate_classifier": "evaluation.json"}


def step_rows(run_dir: Path) -> tuple[list[dict[str, Any]], float]:
    """Rows in, out, dropped by reason per step that has run; and the hours of LLM requests
    actually sent (answers from the cache cost nothing again)."""
    from synthwright.pipeline.rundir import RunDirectory

    rundir = RunDirectory(run_dir)
    manifest = rundir.read_manifest() or {}
    steps = (manifest.get("config") or {}).get("steps", [])
    rows, seconds = [], 0.0
    for step in steps:
        name = step["name"]
        if rundir.read_state(name) is None:
            continue
        stats = rundir.merged_stats(name)
        if step.get("uses") in _OWN_TEACHER_SECONDS:
            seconds += (_read_json(run_dir / (step.get("with") or {}).get("report", _OWN_TEACHER_SECONDS[step["uses"]])) or {}).get(
                "teacher_seconds", 0.0)
        elif stats.requests_sent:
            seconds += stats.seconds
        rows.append({"name": name, "rows_in": stats.rows_in, "rows_out": stats.rows_out,
                     "dropped": ", ".join(f"{r} {c}" for r, c in stats.dropped.most_common()),
                     "failed": ", ".join(f"{r} {c}" for r, c in stats.failed.most_common()),
                     "requests": stats.requests_sent, "cache_hits": stats.cache_hits, "seconds": stats.seconds})
    return rows, seconds / 3600


class ClassifyReportOptions(TaskOptions):
    output: str = "report.html"
    title: str = "Synthetic classifier"
    evaluation: str | None = Field("evaluation.json", description="The evaluation step's output (None: the run has no evaluation)")
    label_check: str = "label_check.json"
    text_column: str = "text"
    label_column: str = "label"
    samples: int = Field(16, ge=0, description="Rows shown as a sample of the data")


@register_step("classify_report")
class ClassifyReportStage(ReadsTask, PassThroughStage):
    Options = ClassifyReportOptions
    description = "One HTML report: the verdict against the teacher first, then every system on real rows, confusion matrices, the learning curve, drops by reason, the label check and the register check."

    def write_output(self, rows: list[Row], stats: StepStats) -> None:
        atomic.write_text(self.context.output_path(self.options.output), self.render(rows))

    def render(self, rows: list[Row]) -> str:
        from synthwright.reports import data_uri, style

        o = self.options
        run_dir = self.context.run_dir or self.context.workdir
        evaluation = (_read_json(self.context.output_path(o.evaluation)) if o.evaluation else None) or {"systems": [], "gains": [], "curve": [], "labels": self.task.names,
                                                                           "eval_rows": 0, "eval_per_label": {}, "synthetic_rows": len(rows)}
        steps, teacher_hours = step_rows(run_dir)
        label_check = _read_json(self.context.output_path(o.label_check))
        references = {s["name"]: s["accuracy"] for s in evaluation["systems"] if s["kind"] in ("teacher", "zero-shot", "real-label")}
        png = curve_png(evaluation["curve"], references)
        per_label, columns = self._per_label(rows, label_check)
        return _TEMPLATES.get_template("report.html.j2").render(
            title=o.title, style=style(), verdict=verdict(evaluation), evaluation=evaluation, steps=steps, teacher_hours=teacher_hours,
            label_check=label_check, curve_png=data_uri(png) if png else None, per_label=per_label, per_label_columns=columns,
            distribution=self._distribution(rows), samples=self._samples(rows),
        )

    def _per_label(self, rows: list[Row], label_check: dict | None) -> tuple[dict[str, dict], list[str]]:
        counts: dict[str, dict[str, int]] = {name: {} for name in self.task.names}
        for name, check in ((label_check or {}).get("per_label") or {}).items():
            counts.setdefault(name, {}).update({f"label check: {k}": v for k, v in check.items()})
        for row in rows:
            label = str(row.get(self.options.label_column))
            counts.setdefault(label, {})
            counts[label]["trained on"] = counts[label].get("trained on", 0) + 1
        columns = sorted({column for c in counts.values() for column in c}, key=lambda c: (c == "trained on", c))
        return counts, columns

    def _distribution(self, rows: list[Row]) -> dict[str, Any] | None:
        """Two-sample AUC and coverage between the synthetic texts and the real style sample."""
        style = self.task.style_sample(self.context.workdir)
        texts = [str(row[self.options.text_column]) for row in rows if row.get(self.options.text_column)]
        if len(style) < 5 or len(texts) < 5:
            return None
        from synthwright.embed import load_embedder
        from synthwright.validate.coverage import knn_coverage, two_sample_auc

        embedder = load_embedder("minilm")
        real, synthetic = embedder.embed(style), embedder.embed(texts)
        test = two_sample_auc(real, synthetic, seed=self.context.seed_for(self.name, "auc"))
        coverage = knn_coverage(real, synthetic, k=min(5, len(style) - 1))
        return {"auc": test.auc, "real_rows": len(style), "coverage": coverage.coverage, "precision": coverage.precision}

    def _samples(self, rows: list[Row]) -> list[dict[str, Any]]:
        if not rows or not self.options.samples:
            return []
        picks = np.random.default_rng(self.context.seed_for(self.name, "samples")).choice(
            len(rows), size=min(self.options.samples, len(rows)), replace=False)
        keys = (self.options.label_column, self.options.text_column, "subtopic", "style", "label_confidence")
        return [{**{k: rows[int(i)].get(k, "") for k in keys}, "label": rows[int(i)].get(self.options.label_column),
                 "text": rows[int(i)].get(self.options.text_column)} for i in sorted(picks)]
