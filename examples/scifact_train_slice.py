"""How much of MiniLM the SciFact student should keep, measured on held-out *train* queries.

The base-weight sweep of docs/results.md. It reads a finished run of examples/scifact-full.yaml,
trains its synthetic student once with that run's settings but without interpolation (reused
while those settings and the dataset are unchanged), moves that student 0, 0.5, ... of the way back to MiniLM (WiSE-FT)
and evaluates each on a seeded slice of SciFact's train queries. Dev queries are never read, so
choosing a weight here does not tune on the evaluation set.

    .venv/bin/python examples/scifact_train_slice.py runs/scifact-full

About 20 minutes to train on 2 cores, then about 2 minutes a weight.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from synthwright.core.files import content_digest
from synthwright.embed.local import minilm_path
from synthwright.errors import UserError
from synthwright.io.rows import read_rows
from synthwright.pipeline.rundir import RunDirectory
from synthwright.reranker.corpus import corpus_texts, open_corpus
from synthwright.reranker.evaluation import evaluate_students, judged_queries, sample_queries
from synthwright.reranker.steps import StudentOptions, row_labels
from synthwright.reranker.student import QueryLabels, StudentReranker, TrainSettings, interpolate_with_base, train_student

SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "scifact"


def base_weights(text: str) -> list[float]:
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers, e.g. 0,0.5,0.7") from None
    if not all(0.0 <= w < 1.0 for w in weights):
        raise argparse.ArgumentTypeError(f"base weights must be at least 0 and below 1, not {text}")
    return weights


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="A finished run of examples/scifact-full.yaml (reads dataset.jsonl)")
    parser.add_argument("--weights", type=base_weights, default="0,0.5,0.7,0.8,0.85", help="Base weights to evaluate (0: the student as trained)")
    parser.add_argument("--slice", type=positive_int, default=200, help="Train queries in the held-out slice")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the slice")
    args = parser.parse_args()
    try:
        sweep(args)
    except UserError as error:
        sys.exit(f"error: {error.problem}" + (f"\n  fix: {error.fix}" if error.fix else ""))


def sweep(args: argparse.Namespace) -> None:
    texts = corpus_texts(open_corpus(str(SCIFACT)))
    student = unmerged_student(args.run_dir, texts)
    weights = args.weights
    students = {f"base weight {w}": StudentReranker(merged_copy(student, w, args.run_dir)) for w in weights}
    queries, qrels = judged_queries(SCIFACT / "queries.jsonl", SCIFACT / "qrels" / "train.tsv")
    queries = sample_queries(queries, args.slice, args.seed)
    evaluation = evaluate_students(str(SCIFACT), queries, {q: qrels[q] for q in queries}, students, depth=100, resamples=1000)
    print(f"{len(queries)} held-out train queries (seed {args.seed}), nDCG@10, gain over hybrid with 95% interval")
    for name, metrics in evaluation.table.items():
        gain = evaluation.gains.get(name)
        interval = f"  {gain['difference']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]" if gain else ""
        print(f"  {name:40s} {metrics['ndcg@10']:.3f}{interval}")


def unmerged_student(run_dir: Path, texts) -> Path:
    """The run's synthetic student trained with the run's own settings, without interpolation."""
    settings = dataclasses.replace(run_student_settings(run_dir), base_weight=0.0)
    dataset = run_dir / "dataset.jsonl"
    key = {"settings": dataclasses.asdict(settings), "dataset_sha256": content_digest(dataset)}
    out = run_dir / "train_slice" / "unmerged"
    stamp = out / "settings.json"
    if (out / "model").is_dir() and stamp.is_file() and json.loads(stamp.read_text()) == key:
        return out / "model"
    rows = read_rows(dataset)
    groups = [QueryLabels(row["query"], row_labels(row)) for row in rows]
    student = train_student(groups, texts, out, settings).path
    stamp.write_text(json.dumps(key, indent=2))
    return student


def run_student_settings(run_dir: Path) -> TrainSettings:
    """The `student` step's settings as the run recorded them in its manifest."""
    manifest = RunDirectory(run_dir).read_manifest()
    if manifest is None:
        raise UserError(f"'{run_dir}' is not a run folder (no manifest.json).",
                        "Give the folder of a finished `synthwright run examples/scifact-full.yaml --run-dir ...`.")
    steps = [step for step in manifest["config"]["steps"] if step.get("name") == "student" and step.get("uses") == "train_student"]
    if not steps:
        raise UserError(f"The run in '{run_dir}' has no train_student step named 'student'.",
                        "Give a run of examples/scifact-full.yaml.")
    options = StudentOptions.model_validate(steps[0].get("with") or {})
    if options.label_source != "recovered":
        raise UserError(f"The run's student learns from {options.label_source} labels, not the recovered ones this sweep reads.",
                        "Give a run whose `student` step keeps label_source: recovered.")
    return options.settings(manifest["config"].get("seed", 0))  # the pipeline seeds its steps with config.seed


def merged_copy(student: Path, base_weight: float, run_dir: Path) -> Path:
    if not base_weight:
        return student
    from sentence_transformers import SentenceTransformer

    out = run_dir / "train_slice" / f"base_weight_{base_weight}"
    model = SentenceTransformer(str(student), local_files_only=True, device="cpu")
    interpolate_with_base(model, minilm_path(), base_weight)
    model.save(str(out))
    return out


if __name__ == "__main__":
    main()
