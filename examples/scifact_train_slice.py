"""How much of MiniLM the SciFact student should keep, measured on held-out *train* queries.

The base-weight sweep of docs/results.md. It reads a finished run of examples/scifact-full.yaml,
trains its synthetic student once as trained there but without interpolation (reused when
already in the run folder), moves that student 0, 0.5, ... of the way back to MiniLM (WiSE-FT)
and evaluates each on a seeded slice of SciFact's train queries. Dev queries are never read, so
choosing a weight here does not tune on the evaluation set.

    .venv/bin/python examples/scifact_train_slice.py runs/scifact-full

About 20 minutes to train on 2 cores, then about 2 minutes a weight.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synthwright.embed.local import minilm_path
from synthwright.errors import UserError
from synthwright.io.rows import read_rows
from synthwright.reranker.corpus import corpus_texts, open_corpus
from synthwright.reranker.evaluation import evaluate_students, judged_queries, sample_queries
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="A finished run of examples/scifact-full.yaml (reads dataset.jsonl)")
    parser.add_argument("--weights", type=base_weights, default="0,0.5,0.7,0.8,0.85", help="Base weights to evaluate (0: the student as trained)")
    parser.add_argument("--slice", type=int, default=200, help="Train queries in the held-out slice")
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
    """The run's student without interpolation: as in the YAML (bi, 1 epoch, 128 tokens, seed 0)."""
    out = run_dir / "train_slice" / "unmerged"
    if (out / "model").is_dir():
        return out / "model"
    rows = read_rows(run_dir / "dataset.jsonl")
    groups = [QueryLabels(row["query"], {item["doc_id"]: item["label"] for item in row["labels"]}) for row in rows]
    return train_student(groups, texts, out, TrainSettings(kind="bi", epochs=1.0, max_length=128, seed=0)).path


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
