"""Pipeline stages that train the classifier student and measure it on real rows:
`train_classifier` and `evaluate_classifier`."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from synthwright.classify.evaluation import SystemResult, compare_on_shared_rows, scores
from synthwright.classify.generation import ReadsTask, TaskOptions
from synthwright.classify.labelling import Calibration, label_texts
from synthwright.classify.students import ClassifierSettings, load_student, settings_key, require_students, train_classifier
from synthwright.classify.task import LabelledTexts, load_labelled
from synthwright.core.files import content_digest, write_json_report
from synthwright.core.lineage import Row, derive_id
from synthwright.core.progress import Phase
from synthwright.core.step import PassThroughStage, StepStats, added_option, register_step
from synthwright.errors import UserError
from synthwright.llm.usage import failure_kind

Kind = Literal["lr", "finetune"]


class TrainClassifierOptions(TaskOptions):
    kind: Kind = "lr"
    output: str = Field("student", description="Folder for the trained student (inside the run folder)")
    text_column: str = "text"
    label_column: str = "label"
    use_weights: bool = Field(False, description="Weigh each example's loss by its `weight` column (set by label_check's weight policy)")
    epochs: float = Field(3.0, gt=0)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    max_length: int = Field(128, ge=8)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    regularisation: float = Field(1.0, gt=0, description="lr: inverse regularisation strength C")
    description_prior: float = Field(0.0, ge=0, description="Multiply the student's probabilities by MiniLM's nearness to each "
                                     "label description raised to this power (0 = off; 0.5 is a good start)")

    def settings(self, seed: int) -> ClassifierSettings:
        return ClassifierSettings(kind=self.kind, epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                  max_length=self.max_length, label_smoothing=self.label_smoothing,
                                  regularisation=self.regularisation, description_prior=self.description_prior, seed=seed)


@register_step("train_classifier")
class TrainClassifierStage(ReadsTask, PassThroughStage):
    Options = TrainClassifierOptions
    description = "Train a MiniLM student (logistic regression on its vectors, or fine-tuned with a head) on the labelled rows; rows pass through."

    def required_columns(self) -> tuple[str, ...]:
        weight = ("weight",) if self.options.use_weights else ()
        return (self.options.text_column, self.options.label_column, *weight)

    def fingerprint_extra(self) -> dict[str, Any]:
        return {"task": self.task.model_dump(mode="json", by_alias=True, exclude={"style_examples"}), "version": 1}

    def write_output(self, rows: list[Row], stats: StepStats) -> None:
        o = self.options
        require_students(o.kind)
        texts, labels = [str(r[o.text_column]) for r in rows], [str(r[o.label_column]) for r in rows]
        unknown = sorted(set(labels) - set(self.task.names))
        if unknown:
            raise UserError(f"Step '{self.name}': rows have label(s) {', '.join(unknown)} that the task does not name.",
                            "Make the rows' labels match the task's label names.")
        empty = [name for name in self.task.names if name not in labels]
        if empty:
            raise UserError(f"Step '{self.name}': no training rows for label(s) {', '.join(empty)}.",
                            "Every label needs examples: generate more, or loosen the label check.")
        weights = [float(r["weight"]) for r in rows] if o.use_weights else None
        settings = o.settings(self.context.seed_for(self.name))
        folder = self.context.output_path(o.output)
        # Steps chain (so the evaluation re-runs after any retraining); a student whose data and
        # settings are unchanged is not trained again just because a step before it re-ran.
        key = derive_id(json.dumps([texts, labels, weights, settings_key(settings), self.task.names]))
        if _trained_key(folder) != key:
            train_classifier(texts, labels, self.task.names, settings, folder, weights, key=key, label_descriptions=label_texts(self.task))


class EvaluateClassifierOptions(TaskOptions):
    eval_data: str = Field(description="Real labelled rows (JSONL/Parquet) to report on")
    text_columns: list[str] = Field(["text"], min_length=1, description="Columns joined into the text (e.g. [title, text])")
    label_column: str = "label_text"
    limit: int | None = Field(None, ge=1, description="Evaluate on a stratified sample of this many rows (default: all)")
    students: dict[str, str] = Field({"synthetic student": "student"}, description="Name -> trained student folder")
    teacher: str | None = Field(None, description="Also evaluate the teacher zero-shot by label likelihood (a model spec)")
    teacher_limit: int | None = Field(None, ge=1, description="The teacher predicts a stratified sample of this many rows (default: all)")
    teacher_calibrations: list[Calibration] = added_option([], description="Also report the teacher calibrated: batch (its mean answer over the evaluation texts divided out) or content_free (its answer to empty inputs; three more prompts)")
    zero_shot: bool = Field(True, description="Also evaluate MiniLM zero-shot (nearest label description)")
    real_train: str | None = Field(None, description="Real labelled training rows: students trained on them are the 'what real labels give' rows")
    real_text_columns: list[str] | None = None
    real_label_column: str | None = None
    real_few_shot: int = Field(8, ge=0, description="Also a real-label student on this many rows per label (0: off)")
    real_limit: int | None = Field(None, ge=1, description="The all-real student uses at most this many rows (stratified)")
    real_kinds: list[Kind] = Field(["lr"], description="Student kinds trained on real labels")
    real_settings: dict[str, Any] = Field({}, description="Training options for the real-label students (as train_classifier's)")
    curve: list[Annotated[int, Field(ge=1)]] = Field([], description="Learning curve: train a student on this many synthetic rows each (stratified)")
    curve_kind: Kind = "lr"
    curve_settings: dict[str, Any] = Field({}, description="Training options for the curve's students (as train_classifier's)")
    text_column: str = "text"
    label_column_synthetic: str = "label"
    output: str = "evaluation.json"

    @model_validator(mode="after")
    def _settings_are_training_options(self) -> "EvaluateClassifierOptions":
        allowed = [f for f in ClassifierSettings.__dataclass_fields__ if f not in ("kind", "seed")]
        for field in ("real_settings", "curve_settings"):
            unknown = sorted(set(getattr(self, field)) - set(allowed))
            if unknown:
                raise ValueError(f"{field} has unknown option(s) {', '.join(unknown)} (use {', '.join(allowed)})")
        return self


@register_step("evaluate_classifier")
class EvaluateClassifierStage(ReadsTask, PassThroughStage):
    Options = EvaluateClassifierOptions
    description = "Score the students, the teacher (label likelihood), MiniLM zero-shot and real-label students on the same real rows; paired bootstrap gains; a learning curve."

    def fingerprint_extra(self) -> dict[str, Any]:
        o = self.options
        files = {"eval": content_digest(self.context.resolve(o.eval_data))}
        if o.real_train:
            files["real"] = content_digest(self.context.resolve(o.real_train))
        return {"task": self.task.model_dump(mode="json", by_alias=True, exclude={"style_examples"}), "files": files, "version": 1}

    def write_output(self, rows: list[Row], stats: StepStats) -> None:
        evaluation = self._load_eval()
        truth = [self.task.index(label) for label in evaluation.labels]
        systems = self._systems(evaluation, rows, stats)
        report = self._report(evaluation, truth, systems, rows)
        write_json_report(self.context.output_path(self.options.output), report)

    # -- inputs --------------------------------------------------------------------------------
    def _load_eval(self) -> LabelledTexts:
        o = self.options
        data = load_labelled(self.context.resolve(o.eval_data), self.task, text_columns=o.text_columns, label_column=o.label_column)
        return data.stratified_sample(o.limit, self.context.seed_for(self.name, "eval"))

    def _real_train(self) -> LabelledTexts:
        o = self.options
        return load_labelled(self.context.resolve(o.real_train), self.task, text_columns=o.real_text_columns or o.text_columns,
                             label_column=o.real_label_column or o.label_column, what="real training file")

    # -- systems -------------------------------------------------------------------------------
    def _systems(self, evaluation: LabelledTexts, rows: list[Row], stats: StepStats) -> list[SystemResult]:
        o = self.options
        everyone = list(range(len(evaluation)))
        systems = []
        for name, folder in o.students.items():
            student = load_student(self.context.output_path(folder))
            systems.append(_predict(name, "student", student, evaluation, everyone, self.context.request_progress))
        if o.zero_shot:
            systems.append(self._zero_shot(evaluation, everyone))
        if o.teacher:
            systems += self._teacher(evaluation, stats)
        if o.real_train:
            systems += self._real_label_students(evaluation, everyone)
        return systems

    def _zero_shot(self, evaluation: LabelledTexts, positions: list[int]) -> SystemResult:
        from synthwright.classify.labelling import description_probabilities
        from synthwright.embed import load_embedder

        embedder = load_embedder("minilm", cache=False)
        started = time.perf_counter()
        probs = description_probabilities(embedder.embed(evaluation.texts), embedder.embed(label_texts(self.task)))
        seconds = time.perf_counter() - started
        return SystemResult("MiniLM zero-shot (nearest label description)", "zero-shot", positions, probs.argmax(axis=1).tolist(),
                            round(1000 * seconds / max(1, len(positions)), 2))

    def _teacher(self, evaluation: LabelledTexts, stats: StepStats) -> list[SystemResult]:
        """The teacher zero-shot, and calibrated as asked: the same answers read several ways."""
        from synthwright.classify.labelling import teacher_label_probabilities

        o = self.options
        positions = evaluation.stratified_positions(o.teacher_limit, self.context.seed_for(self.name, "teacher"))
        texts = [evaluation.texts[p] for p in positions]
        teacher = teacher_label_probabilities(self.context, o.teacher, self.name, self.task, texts, f"teacher zero-shot: {len(texts)} texts",
                                              content_free="content_free" in o.teacher_calibrations)
        stats.add_usage(teacher.usage)
        self._teacher_seconds = teacher.seconds
        failed = [e for e in teacher.errors if e]
        if len(failed) == len(texts):
            raise UserError(f"Step '{self.name}': the teacher {o.teacher} answered none of its {len(texts)} evaluation texts "
                            f"(first error: {failed[0]}).", "Check that the model or server works, then rerun (answers so far are cached).")
        for error in failed:  # counted as the step's failures, so a rerun asks again
            stats.failed[failure_kind(error)] += 1
        systems = []
        for how in dict.fromkeys(["none", *o.teacher_calibrations]):  # each reading once, raw first
            method = teacher.method if how == "none" else f"{teacher.method}, {how.replace('_', '-')} calibrated"
            probs = teacher.calibrated(how)
            scored = [(p, int(np.argmax(row))) for p, row, e in zip(positions, probs, teacher.errors) if not e]
            per_1000 = round(1000 * teacher.seconds / len(scored), 1) if scored and teacher.seconds else None
            systems.append(SystemResult(f"teacher zero-shot ({o.teacher.split(':')[-1]}, {method})", "teacher", [p for p, _ in scored],
                                        [q for _, q in scored], per_1000, note=f"{len(failed)} failed" if failed else ""))
        return systems

    def _real_label_students(self, evaluation: LabelledTexts, positions: list[int]) -> list[SystemResult]:
        o = self.options
        real = self._real_train()
        sets = []
        if o.real_few_shot:
            sets.append((f"{o.real_few_shot} per label", real.sample_per_label(o.real_few_shot, self.context.seed_for(self.name, "few"))))
        sets.append((f"{'all ' if not o.real_limit or o.real_limit >= len(real) else ''}{min(len(real), o.real_limit or len(real))} real rows",
                     real.stratified_sample(o.real_limit, self.context.seed_for(self.name, "real"))))
        systems = []
        for kind in o.real_kinds:
            options = {**o.real_settings, "kind": kind, "seed": self.context.seed_for(self.name, "real", kind)}
            settings = ClassifierSettings(**options)
            for description, data in sets:
                folder = self._trained("real_students", data, settings)
                systems.append(_predict(f"real-label student ({kind}, {description})", "real-label", load_student(folder), evaluation, positions,
                                        self.context.request_progress))
        return systems

    # -- report --------------------------------------------------------------------------------
    def _report(self, evaluation: LabelledTexts, truth: list[int], systems: list[SystemResult], rows: list[Row]) -> dict[str, Any]:
        o = self.options
        n_labels = len(self.task.names)
        for system in systems:
            system.metrics = scores([truth[p] for p in system.positions], system.predicted, n_labels)
        seed = self.context.seed_for(self.name, "bootstrap")
        students = [s for s in systems if s.kind == "student"]
        gains = [gain for student in students for other in systems if other.kind != "student"
                 if (gain := compare_on_shared_rows(truth, other, student, n_labels, seed)) is not None]
        curve = self._curve(rows, evaluation, truth) if o.curve else []
        return {
            "labels": self.task.names, "eval_rows": len(evaluation), "eval_per_label": dict(evaluation.per_label()),
            "synthetic_rows": len(rows), "systems": [s.to_dict() for s in systems], "gains": gains, "curve": curve,
            "curve_sizes_beyond_the_data": sorted(size for size in o.curve if size > len(rows)),
            "teacher_seconds": round(getattr(self, "_teacher_seconds", 0.0), 1),
        }

    def _curve(self, rows: list[Row], evaluation: LabelledTexts, truth: list[int]) -> list[dict[str, Any]]:
        o = self.options
        synthetic = LabelledTexts([str(i) for i in range(len(rows))], [str(r[o.text_column]) for r in rows],
                                  [str(r[o.label_column_synthetic]) for r in rows])
        points = []
        sizes = sorted({size for size in o.curve if size < len(synthetic)} | {len(synthetic)})  # the whole set is the last point
        for size in sizes:
            subset = synthetic.stratified_sample(size, self.context.seed_for(self.name, "curve", size))
            folder = self._trained("curve_students", subset, ClassifierSettings(**{**o.curve_settings, "kind": o.curve_kind, "seed": self.context.seed_for(self.name, "curve")}))
            system = _predict(f"learning-curve student ({size} examples)", "curve", load_student(folder), evaluation, list(range(len(evaluation))), self.context.request_progress)
            points.append({"examples": len(subset), "kind": o.curve_kind, **{k: v for k, v in scores(truth, system.predicted, len(self.task.names)).items()
                                                       if k in ("accuracy", "macro_f1")}})
        return points

    def _trained(self, parent: str, data: LabelledTexts, settings: ClassifierSettings) -> Path:
        """A student trained on `data`, kept under a folder named by what it learnt from (texts,
        labels, settings, label set): a rerun reuses it, changed data trains a new one."""
        key = derive_id(json.dumps([data.texts, data.labels, None, settings_key(settings), self.task.names]))
        folder = self.context.output_path(f"{parent}/{settings.kind}-{len(data)}-{key[:10]}")
        if _trained_key(folder) != key:
            train_classifier(data.texts, data.labels, self.task.names, settings, folder, key=key, label_descriptions=label_texts(self.task))
        return folder


def _trained_key(folder: Path) -> str | None:
    """What the student in `folder` was trained on (the key its card records), if any."""
    try:
        return json.loads((folder / "student.json").read_text(encoding="utf-8")).get("key")
    except (OSError, ValueError):
        return None


PREDICT_BLOCK = 250  # rows a student predicts between progress updates


def _predict(name: str, kind: str, student, evaluation: LabelledTexts, positions: Sequence[int], progress=None) -> SystemResult:
    """The student's predictions on `positions`, in blocks, so a slow student (a fine-tuned
    one on a busy machine takes minutes for 2,000 rows) shows its rate and ETA."""
    texts = [evaluation.texts[p] for p in positions]
    started = time.perf_counter()
    blocks = []
    with Phase(progress, f"evaluation: {name} on {len(texts)} rows", len(texts), "rows") as phase:
        for start in range(0, len(texts), PREDICT_BLOCK):
            blocks.append(student.predict_proba(texts[start: start + PREDICT_BLOCK]))
            phase.advance(len(blocks[-1]))
    probs = np.concatenate(blocks) if blocks else np.zeros((0, len(student.labels)))
    seconds = time.perf_counter() - started
    return SystemResult(name, kind, list(positions), probs.argmax(axis=1).tolist(), round(1000 * seconds / max(1, len(texts)), 2))

