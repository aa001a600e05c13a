"""Label consistency: does each synthetic text belong to the class it was written for?

The members of `labelling` vote; the ensemble's probabilities decide per row under a policy:
- `drop`: rows whose intended label is not the ensemble's first choice are dropped
  (reason `label_disagrees`);
- `relabel`: such rows take the ensemble's label (kept, marked `relabelled`);
- `weight`: every row is kept, weighted by the ensemble's probability of its label
  (SunGen-style reweighting; students then weigh their loss by it);
- `keep`: only annotate.
`min_confidence` additionally drops rows whose (final) label the ensemble gives less than
that probability (SuperGen keeps only the most confident). A row the teacher could not score
fails (a rerun asks again); no decision is made on less than the members asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from synthwright.classify.generation import ReadsTask, TaskOptions
from synthwright.classify.labelling import (
    MEMBERS, Calibration, crossfit_probabilities, description_probabilities, ensemble, label_texts, teacher_label_probabilities,
)
from synthwright.core.files import write_json_report
from synthwright.core.lineage import Row, add_score, with_meta
from synthwright.core.step import BatchResult, Stage, added_option, register_step
from synthwright.errors import UserError
from synthwright.llm.offline_models import DEFAULT_TEACHER

Policy = Literal["drop", "relabel", "weight", "keep"]


class LabelCheckOptions(TaskOptions):
    model: str = DEFAULT_TEACHER
    members: list[str] = Field(list(MEMBERS), min_length=1, description="Who votes: teacher (label likelihood), embedding (MiniLM to the descriptions), crossfit (out-of-fold student)")
    weights: dict[str, float] = Field({}, description="Weight of each member in the ensemble (default 1 each)")
    teacher_calibration: Calibration = added_option("none", description="Divide a prior out of the teacher's label probabilities: batch (its mean over the checked texts) or content_free (its answer to empty inputs)")
    policy: Policy = "drop"
    min_confidence: float = Field(0.0, ge=0.0, le=1.0, description="Also drop rows whose label the ensemble gives less than this")
    text_column: str = "text"
    label_column: str = "label"
    folds: int = Field(5, ge=2)
    report: str = "label_check.json"

    @field_validator("members")
    @classmethod
    def _known_members(cls, members: list[str]) -> list[str]:
        unknown = [m for m in members if m not in MEMBERS]
        if unknown:
            raise ValueError(f"unknown member '{unknown[0]}' (use {', '.join(MEMBERS)})")
        return members


@register_step("label_check")
class LabelCheckStage(ReadsTask, Stage):
    Options = LabelCheckOptions
    description = "Check each example's label with an ensemble (teacher label likelihood, MiniLM to descriptions, cross-fitted student); drop, relabel or reweight."

    def required_columns(self) -> tuple[str, ...]:
        return (self.options.text_column, self.options.label_column)

    def output_columns(self) -> tuple[str, ...]:
        return ("intended_label", "label_confidence", "weight")

    def fingerprint_extra(self) -> dict[str, Any]:
        from synthwright.classify.labelling import LABEL_PROMPT

        return {**self.task_fingerprint(), "prompt": LABEL_PROMPT}

    def run(self, rows: Iterable[Row]) -> BatchResult:
        o = self.options
        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        names = self.task.names
        unknown = sorted({str(row[o.label_column]) for row in rows} - set(names))
        if unknown:
            raise UserError(f"Step '{self.name}': rows have label(s) {', '.join(unknown)} that the task does not name.",
                            "Make the rows' labels match the task's label names.")
        if not rows:
            raise UserError(f"Step '{self.name}' has no rows to check: every generated text was dropped or failed.",
                            "Look at the earlier steps' drops (synthwright inspect RUN_DIR), then generate more or loosen them.")
        texts = [str(row[o.text_column]) for row in rows]
        intended = np.array([names.index(str(row[o.label_column])) for row in rows])
        members = self._member_probabilities(texts, intended, result)
        combined = ensemble(members, o.weights)
        report = self._decide(rows, intended, members, combined, result)
        write_json_report(self.context.output_path(o.report), report)
        return result

    def _member_probabilities(self, texts: list[str], intended: np.ndarray, result: BatchResult) -> dict[str, np.ndarray]:
        o = self.options
        members: dict[str, np.ndarray] = {}
        vectors = None
        if {"embedding", "crossfit"} & set(o.members):
            from synthwright.embed import load_embedder

            embedder = load_embedder("minilm")
            vectors = embedder.embed(texts)
        if "teacher" in o.members:
            members["teacher"] = self._teacher(texts, result)
        if "embedding" in o.members:
            members["embedding"] = description_probabilities(vectors, embedder.embed(label_texts(self.task)))
        if "crossfit" in o.members:
            members["crossfit"] = crossfit_probabilities(vectors, intended, len(self.task.names), folds=o.folds,
                                                         seed=self.context.seed_for(self.name, "folds"))
        return members

    def _teacher(self, texts: list[str], result: BatchResult) -> np.ndarray:
        teacher = teacher_label_probabilities(self.context, self.options.model, self.name, self.task, texts,
                                              f"teacher label check: {len(texts)} texts",
                                              content_free=self.options.teacher_calibration == "content_free")
        result.stats.add_usage(teacher.usage)
        self._teacher_errors, self._teacher_seconds = teacher.errors, teacher.seconds
        return teacher.calibrated(self.options.teacher_calibration)

    def _decide(self, rows: list[Row], intended: np.ndarray, members: dict[str, np.ndarray], combined: np.ndarray,
                result: BatchResult) -> dict[str, Any]:
        o = self.options
        names = self.task.names
        counts: dict[str, Counter] = {name: Counter() for name in names}
        teacher_errors = getattr(self, "_teacher_errors", [None] * len(rows))
        for i, row in enumerate(rows):
            label = names[intended[i]]
            if teacher_errors[i] or np.isnan(combined[i]).any():
                # Never decided on less than was asked for: the row fails, and a rerun asks again.
                counts[label]["failed"] += 1
                result.fail(row, teacher_errors[i] or "no member scored this row")
                continue
            best = int(np.argmax(combined[i]))
            confidence = float(combined[i][intended[i]])
            out = {**row, "intended_label": label, "label_confidence": round(confidence, 4), "weight": 1.0}
            for member, probs in members.items():
                if not np.isnan(probs[i]).any():
                    out = add_score(out, f"label_{member}", round(float(probs[i][intended[i]]), 4), best=names[int(np.argmax(probs[i]))])
            counts[label]["in"] += 1
            reason = None
            if best != intended[i] and o.policy == "drop":
                reason = "label_disagrees"
            elif float(combined[i][best if o.policy == "relabel" else intended[i]]) < o.min_confidence:
                reason = "low_label_confidence"
            if reason:
                counts[label][reason] += 1
                result.drop(with_meta(out, label_check=names[best]), reason)
                continue
            if best != intended[i] and o.policy == "relabel":
                out = with_meta({**out, o.label_column: names[best], "label_confidence": round(float(combined[i][best]), 4)},
                                relabelled_from=label)
                counts[label]["relabelled"] += 1
            elif o.policy == "weight":
                out["weight"] = round(confidence, 4)
            counts[label]["kept"] += 1
            result.keep(out)
        return {"policy": o.policy, "members": list(members), "weights": {m: o.weights.get(m, 1.0) for m in members},
                "agreement_with_intended": {member: _agreement(p, intended) for member, p in members.items()},
                "ensemble_agreement": _agreement(combined, intended),
                "per_label": {name: dict(c) for name, c in counts.items()},
                "teacher_failures": sum(e is not None for e in teacher_errors),
                "teacher_seconds": round(getattr(self, "_teacher_seconds", 0.0), 1)}


def _agreement(probs: np.ndarray, intended: np.ndarray) -> float | None:
    """Share of the scored rows whose first choice is the intended label."""
    scored = ~np.isnan(probs).any(axis=1)
    return float((probs[scored].argmax(axis=1) == intended[scored]).mean()) if scored.any() else None


class BalanceOptions(TaskOptions):
    label_column: str = "label"
    per_label: int | None = Field(None, ge=1, description="Keep at most this many per label (default: as many as the smallest label has)")
    prefer: Literal["confidence", "order"] = Field("confidence", description="Which rows a full label keeps: the most confident, or the first")


@register_step("balance_classes")
class BalanceClassesStage(ReadsTask, Stage):
    Options = BalanceOptions
    description = "Enforce class balance: every label keeps the same number of rows (the most confident); an empty label is an error."

    def required_columns(self) -> tuple[str, ...]:
        return (self.options.label_column,)

    def fingerprint_extra(self) -> dict[str, Any]:
        return self.task_fingerprint()

    def run(self, rows: Iterable[Row]) -> BatchResult:
        o = self.options
        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        by_label: dict[str, list[Row]] = {name: [] for name in self.task.names}
        unknown = sorted({str(row[o.label_column]) for row in rows} - set(by_label))
        if unknown:
            raise UserError(f"Step '{self.name}': rows have label(s) {', '.join(unknown)} that the task does not name.",
                            "Make the rows' labels match the task's label names.")
        for row in rows:
            by_label[str(row[o.label_column])].append(row)
        empty = [name for name in self.task.names if not by_label[name]]
        if empty:
            raise UserError(f"Step '{self.name}': label(s) {', '.join(empty)} have no examples left after filtering "
                            f"({', '.join(f'{n}: {len(v)}' for n, v in by_label.items())}).",
                            "Generate more examples for them (per_label), loosen the label check (policy: weight or relabel), or improve their description.")
        quota = min(len(v) for v in by_label.values())
        quota = min(quota, o.per_label) if o.per_label else quota
        for name, members in by_label.items():
            if o.prefer == "confidence":
                members = sorted(members, key=lambda row: -float(row.get("label_confidence", 1.0)))
            for row in members[:quota]:
                result.keep(row)
            for row in members[quota:]:
                result.drop(row, "over_label_quota")
        return result
