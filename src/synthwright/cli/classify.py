"""`synthwright classify`: a text classifier from synthetic data, measured on real rows.

Like `reranker`, the command writes the pipeline it runs (RUN_DIR/pipeline.yaml, and the
task as RUN_DIR/task.yaml): `synthwright run` on that file does the same thing, and editing
it is how to go beyond the flags.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
import yaml

from synthwright.cli.console import out
from synthwright.cli.pipeline import ProgressObserver, print_step_table
from synthwright.errors import UserError
from synthwright.llm.offline_models import DEFAULT_TEACHER


class StudentKind(str, Enum):
    lr = "lr"
    finetune = "finetune"


class Policy(str, Enum):
    drop = "drop"
    relabel = "relabel"
    weight = "weight"
    keep = "keep"


def parse_labels(values: list[str]) -> dict[str, str]:
    """`--label NAME="description"` (repeatable) as {name: description}."""
    labels: dict[str, str] = {}
    for value in values:
        name, _, description = value.partition("=")
        name = name.strip()
        if not name:
            raise UserError(f"--label '{value}' has no name.", 'Write --label NAME="one-line description".')
        if name in labels:
            raise UserError(f"--label {name} is given twice.", "Give each label once.")
        labels[name] = description.strip().strip('"')
    return labels


def classify_steps(task: str, *, teacher: str, per_label: int, subtopics: int, styles: list[str], lengths: list[str] | None,
                   policy: str, students: list[str], epochs: float, eval_data: str | None, text_columns: list[str],
                   label_column: str, eval_limit: int | None, teacher_limit: int | None, real_train: str | None,
                   curve: list[int], novelty: float, description_prior: float = 0.0) -> list[dict]:
    """The pipeline's steps, as YAML would spell them."""
    prompt_options = {"task": task, "model": teacher, "per_label": per_label, "subtopics": subtopics,
                      **({"styles": styles} if styles else {}), **({"lengths": lengths} if lengths else {})}
    steps = [
        {"name": "prompts", "uses": "class_prompts", "with": prompt_options},
        {"name": "examples", "uses": "write_examples", "with": {"model": teacher, "novelty_epsilon": novelty}},
        {"name": "unique", "uses": "dedup", "with": {"column": "text", "method": "semantic", "epsilon": novelty}},
        {"name": "checked", "uses": "label_check", "with": {"task": task, "model": teacher, "policy": policy}},
        {"name": "balanced", "uses": "balance_classes", "with": {"task": task}},
        {"name": "dataset", "uses": "export", "with": {"path": "dataset.jsonl"}},
    ]
    names = {}
    for kind in students:
        steps.append({"name": f"student_{kind}", "uses": "train_classifier", "input": steps[-1]["name"] if kind != students[0] else "balanced",
                      "with": {"task": task, "kind": kind, "output": f"student_{kind}", "use_weights": policy == "weight",
                               **({"epochs": epochs} if kind == "finetune" else {}),
                               **({"description_prior": description_prior} if description_prior else {})}})
        names[f"synthetic student ({kind})"] = f"student_{kind}"
    if eval_data:
        evaluation = {"task": task, "eval_data": eval_data, "text_columns": text_columns, "label_column": label_column,
                      "limit": eval_limit, "students": names, "teacher": teacher, "teacher_limit": teacher_limit,
                      "real_train": real_train, "real_kinds": students, "curve": curve, "curve_kind": "lr"}
        if "finetune" in students:
            evaluation["real_settings"] = {"epochs": epochs}
        steps.append({"name": "evaluation", "uses": "evaluate_classifier", "with": {k: v for k, v in evaluation.items() if v not in (None, [])}})
    steps.append({"name": "report", "uses": "classify_report", "with": {"task": task, **({} if eval_data else {"evaluation": None})}})
    return steps


def register(app: typer.Typer) -> None:
    @app.command("classify")
    def classify(
        labels_file: Path = typer.Option(None, "--labels", help="Task YAML: labels {NAME: description}, register, style_examples (see examples/ag_news.task.yaml)."),
        label: list[str] = typer.Option([], "--label", help='A label and its one-line description: --label Sports="games, athletes, teams" (repeatable; instead of --labels).'),
        register_: str = typer.Option(None, "--register", help="What the texts are, e.g. 'movie-review sentence' (with --label)."),
        style_examples: Path = typer.Option(None, "--style-examples", help="Real texts in the register (at most 50 used; never the evaluation file)."),
        style_columns: list[str] = typer.Option(["text"], "--style-column", help="Style file column(s) joined into one text (repeatable)."),
        eval_data: Path = typer.Option(None, "--eval-data", help="Real labelled rows to report on (JSONL/Parquet)."),
        text_columns: list[str] = typer.Option(["text"], "--text-column", help="Evaluation column(s) joined into the text (repeatable: --text-column title --text-column text)."),
        label_column: str = typer.Option("label_text", "--label-column", help="Evaluation column holding the label name."),
        eval_limit: int = typer.Option(None, "--eval-limit", min=1, help="Evaluate on a stratified sample of this many rows."),
        teacher_limit: int = typer.Option(None, "--teacher-limit", min=1, help="The teacher predicts a stratified sample of this many evaluation rows (it is slow)."),
        real_train: Path = typer.Option(None, "--real-train", help="Real labelled training rows: the 'what real labels give' students."),
        per_label: int = typer.Option(100, "--per-label", min=1, help="Examples to ask for per label."),
        subtopics: int = typer.Option(24, "--subtopics", min=0, help="Subtopics the teacher proposes per label (0: none)."),
        styles: list[str] = typer.Option([], "--style", help="A writing style to draw from (repeatable)."),
        policy: Policy = typer.Option(Policy.drop, "--policy", help="What the label check does with a text whose label loses: drop, relabel, weight (keep all, weighted) or keep."),
        students: list[StudentKind] = typer.Option([StudentKind.lr], "--student", help="lr (MiniLM vectors + logistic regression, seconds) or finetune (MiniLM fine-tuned, minutes); repeatable."),
        epochs: float = typer.Option(3.0, "--epochs", min=0.1, help="Fine-tuning epochs."),
        description_prior: float = typer.Option(0.0, "--description-prior", min=0.0, help="Multiply each student's probabilities by MiniLM's nearness to each label description raised to this power (0: off; 0.5 lifted AG News by about +0.02, and did not help SST-2)."),
        curve: list[int] = typer.Option([], "--curve", min=1, help="Learning-curve sizes (repeatable), e.g. --curve 100 --curve 300."),
        teacher: str = typer.Option(DEFAULT_TEACHER, "--teacher", "-m", help="Teacher model spec (writes, checks labels, and is the baseline)."),
        run_dir: Path = typer.Option(Path("runs/classify"), "--run-dir"),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Train a small text classifier on a teacher's synthetic data, and measure it on real rows against the teacher.

        Example: synthwright classify --label positive="the reviewer liked the film" --label negative="the reviewer disliked it"
        --register "movie-review sentence" --eval-data dev.jsonl --per-label 50
        """
        from synthwright.classify.task import load_task
        from synthwright.pipeline.config import validate_pipeline
        from synthwright.pipeline.pipeline import run_pipeline
        from synthwright.pipeline.rundir import RunDirectory

        task_data = _task_data(labels_file, label, register_, style_examples, style_columns)
        task = load_task(task_data, Path.cwd())  # a bad spec fails here, before anything runs
        if eval_data is not None:
            from synthwright.classify.task import load_labelled

            load_labelled(eval_data, task, text_columns=text_columns, label_column=label_column)  # unknown labels fail up front
        if real_train is not None:
            from synthwright.classify.task import load_labelled

            load_labelled(real_train, task, text_columns=text_columns, label_column=label_column, what="real training file")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "task.yaml").write_text(yaml.safe_dump(task_data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        steps = classify_steps(
            "task.yaml", teacher=teacher, per_label=per_label, subtopics=subtopics, styles=styles, lengths=None, policy=policy.value,
            students=list(dict.fromkeys(s.value for s in students)), epochs=epochs, eval_data=_path(eval_data), text_columns=text_columns,
            label_column=label_column, eval_limit=eval_limit, teacher_limit=teacher_limit, real_train=_path(real_train),
            curve=curve, novelty=0.08, description_prior=description_prior)
        data = {"name": "classify", "seed": seed, "steps": steps}
        config = validate_pipeline(data, source="synthwright classify")
        (run_dir / "pipeline.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        observer = ProgressObserver()
        try:
            result = run_pipeline(config, run_dir, observer=observer, workdir=run_dir.resolve())
        finally:
            observer.close()
        print_step_table(RunDirectory(result.run_dir), title="classify")
        _print_outcome(result.run_dir)


def _path(value: Path | None) -> str | None:
    return str(value.resolve()) if value is not None else None


def _task_data(labels_file: Path | None, labels: list[str], register_: str | None, style_examples: Path | None,
               style_columns: list[str]) -> dict:
    """The task as a mapping, from a task file or from --label/--register (paths made absolute)."""
    if labels_file is not None and labels:
        raise UserError("Give the labels once: --labels FILE or --label NAME=description, not both.")
    if labels_file is None and not labels:
        raise UserError("No labels: a classifier needs at least two.", 'Give --labels task.yaml, or --label NAME="description" for each label.')
    if labels_file is not None:
        if not labels_file.is_file():
            raise UserError(f"Task file '{labels_file}' does not exist.", "Check the --labels path.")
        try:
            data = yaml.safe_load(labels_file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"Task file '{labels_file}' is not valid YAML: {exc}.".replace("\n", " "), "Fix the file.") from None
        if not isinstance(data, dict):
            raise UserError(f"Task file '{labels_file}' holds no mapping.", "Write `labels:` and `register:` at the top level.")
        if data.get("style_examples") and not Path(data["style_examples"]).expanduser().is_absolute():
            data["style_examples"] = str((labels_file.parent / data["style_examples"]).resolve())
    else:
        data = {"labels": parse_labels(labels)}
    if register_:
        data["register"] = register_
    if style_examples is not None:
        data["style_examples"] = str(style_examples.resolve())
        data["style_columns"] = style_columns
    return data


def _print_outcome(run_dir: Path) -> None:
    import json

    from synthwright.classify.report import verdict

    path = run_dir / "evaluation.json"
    if not path.is_file() or path.stat().st_mtime < (run_dir / "pipeline.yaml").stat().st_mtime:
        out.print(f"  report: {run_dir / 'report.html'}")
        return
    evaluation = json.loads(path.read_text(encoding="utf-8"))
    out.print(verdict(evaluation)["text"])
    for system in evaluation["systems"]:
        out.print(f"  {system['name']:<58} accuracy {system['accuracy']:.3f}  macro-F1 {system['macro_f1']:.3f}  ({system['rows']} rows)")
    out.print(f"  report: {run_dir / 'report.html'}")
