"""`synthwright reranker`: the synthetic reranker pipeline end to end, as a resumable run.

The command writes the pipeline it runs to RUN_DIR/pipeline.yaml: `synthwright run` on that
file does the same thing, and editing it is how to go beyond the flags.
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
from synthwright.reranker.teacher import TEACHER_METHODS


# The same values as the evaluation step's `teacher_method`, as typer wants them (an Enum).
TeacherMethodChoice = Enum("TeacherMethodChoice", {method: method for method in TEACHER_METHODS}, type=str)


class JudgeMethod(str, Enum):
    pairwise = "pairwise"
    likelihood = "likelihood"


class Focus(str, Enum):
    document = "document"
    sentence = "sentence"


class FirstStage(str, Enum):
    auto = "auto"
    bm25 = "bm25"
    dense = "dense"
    hybrid = "hybrid"


class StudentKind(str, Enum):
    cross = "cross"
    bi = "bi"


def _path(value: Path | None) -> str | None:
    return str(value.resolve()) if value is not None else None


def reranker_steps(
    corpus: str, *, teacher: str, styles: list[str], documents: int | None, budget: int, candidates: int,
    pairs_per_query: int, student: str, epochs: float, max_length: int, eval_queries: str | None, eval_qrels: str | None,
    real_queries: str | None = None, real_qrels: str | None = None, real_limit: int | None = None, depth: int = 30,
    judges: list[str] | None = None, corpus_size: int | None = None, teacher_queries: int = 0, teacher_depth: int = 10,
    calibration_queries: str | None = None, calibration_qrels: str | None = None, calibration_limit: int = 50,
    rewrite: bool = False, focus: str = "document", sentences_per_doc: int = 1, base_weight: float = 0.0,
    teacher_method: str = "likelihood", style_examples: str | None = None, first_stage: str = "auto",
) -> list[dict]:
    """The pipeline's steps, as YAML would spell them. `corpus_size` (documents in the corpus)
    spreads the LLM budget over the queries there will be when `documents` samples none or more."""
    sampled = min(documents, corpus_size) if documents and corpus_size else documents or corpus_size or 100
    per_doc = len(styles) * (sentences_per_doc if focus == "sentence" else 1)
    n_queries = max(1, sampled * per_doc) * (2 if rewrite else 1)  # a rewrite adds about one query per query
    judges = judges or ["bm25", "embedding", teacher]
    training = {"corpus": corpus, "kind": student, "epochs": epochs, "max_length": max_length, **({"base_weight": base_weight} if base_weight else {})}
    steps = [
        {"name": "documents", "uses": "corpus", "with": {"corpus": corpus, "sample": documents, "styles": styles, "style_examples": style_examples, **(
            {"focus": focus, "sentences_per_doc": sentences_per_doc} if focus == "sentence" else {})}},
        {"name": "queries", "uses": "doc_queries", "with": {"model": teacher}},
        *([{"name": "rewritten", "uses": "rewrite_queries", "with": {"model": teacher}}] if rewrite else []),
        {"name": "unique", "uses": "dedup", "with": {"column": "query", "method": "semantic", "epsilon": 0.1}},
        *([{"name": "register", "uses": "query_register", "with": {"style_examples": style_examples}}] if style_examples else []),
        {"name": "first_stage", "uses": "first_stage", "with": {"corpus": corpus, "retriever": first_stage}},
        {"name": "candidates", "uses": "candidates", "with": {"corpus": corpus, "k": candidates, "retriever": "chosen"}},
        {"name": "judged", "uses": "pair_judge", "with": {
            "corpus": corpus, "judges": judges, "pairs_per_query": pairs_per_query,
            "llm_pairs_per_query": round(budget / n_queries, 4)}},
        {"name": "labels", "uses": "recover_labels"},
        {"name": "dataset", "uses": "export", "with": {"path": "dataset.jsonl"}},
        {"name": "student", "uses": "train_student", "input": "labels", "with": {**training, "output": "student"}},
    ]
    # The stages after the student read the step before them (rows pass through), so their
    # fingerprints include the student's: a retrained student re-runs the evaluation and report.
    students = {"student": "student/model"}
    if real_queries and real_qrels:
        steps.append({"name": "student_real", "uses": "train_student", "input": "student", "with": {
            **training, "output": "student_real", "label_source": "real", "real_queries": real_queries,
            "real_qrels": real_qrels, "real_limit": real_limit}})
        students["real-label student"] = "student_real/model"
    if calibration_queries and calibration_qrels:
        # Same judgments, members weighted by their accuracy on the human sample instead of on anchors.
        steps += [
            {"name": "calibration", "uses": "calibrate_judges", "input": steps[-1]["name"], "with": {
                "corpus": corpus, "queries": calibration_queries, "qrels": calibration_qrels, "limit": calibration_limit,
                "judges": judges, "style": styles[0]}},
            {"name": "labels_calibrated", "uses": "recover_labels", "with": {"calibration": "calibration.json", "report": "labels_calibrated.json"}},
            {"name": "student_calibrated", "uses": "train_student", "with": {**training, "output": "student_calibrated"}},
        ]
        students["student (calibrated weights)"] = "student_calibrated/model"
    if eval_queries and eval_qrels:
        evaluation = {"corpus": corpus, "queries": eval_queries, "qrels": eval_qrels, "students": students, "depth": depth,
                      "first_stage": "chosen"}
        if teacher_queries:
            evaluation.update(teacher=teacher, teacher_queries=teacher_queries, teacher_depth=teacher_depth, teacher_style=styles[0],
                              teacher_method=teacher_method)
        steps.append({"name": "evaluation", "uses": "evaluate_reranker", "input": steps[-1]["name"], "with": evaluation})
    steps.append({"name": "report", "uses": "reranker_report", "input": steps[-1]["name"]})
    for step in steps:  # drop unset options, so the YAML shows only what was chosen
        if "with" in step:
            step["with"] = {k: v for k, v in step["with"].items() if v is not None}
    return steps


def register(app: typer.Typer) -> None:
    @app.command("reranker")
    def reranker(
        corpus: str = typer.Option(..., "--corpus", help="JSONL of {_id, title, text}, a BEIR folder, or pydoc:topics."),
        budget: int = typer.Option(200, "--budget", min=0, help="LLM pairwise judgments in all (each asked in both orders)."),
        documents: int = typer.Option(None, "--documents", min=1, help="Documents to sample (default: all)."),
        styles: list[str] = typer.Option(["question"], "--style", help="Query style: claim, question, keyword or code (what a programmer would search for to find the code; repeatable)."),
        style_examples: Path = typer.Option(None, "--style-examples", help="Real queries of the corpus's register shown to the teacher (at most 20, a few per prompt, rotating): a BEIR qrels TSV such as qrels/train.tsv, a JSONL of {text}, or one query a line. Never the evaluation queries."),
        first_stage: FirstStage = typer.Option(FirstStage.auto, "--first-stage", help="What gives candidates, hard negatives and the reranked list at evaluation: auto = the best of BM25, dense and hybrid on the round trip of the synthetic queries (never the evaluation labels), or force one."),
        focus: Focus = typer.Option(Focus.document, "--focus", help="What the teacher reads for a query: the whole document, or its title and one sentence (a query about one finding; shorter prompts, harder queries)."),
        sentences_per_doc: int = typer.Option(1, "--sentences-per-doc", min=1, help="--focus sentence: sentences drawn per document, one query each (fewer where a document has fewer; the LLM budget is spread as if each had N)."),
        teacher: str = typer.Option(DEFAULT_TEACHER, "--teacher", "-m", help="Teacher model spec (queries and LLM judge)."),
        judge_method: JudgeMethod = typer.Option(JudgeMethod.pairwise, "--judge-method", help="How the teacher judges a pair: pairwise (asked both orders), or likelihood (log P(query | document) for each document, one request a document however many pairs it is in; llamacpp: teachers)."),
        candidates: int = typer.Option(10, "--candidates", min=1, help="Retrieved candidates per query."),
        pairs_per_query: int = typer.Option(16, "--pairs-per-query", min=1, help="Comparison graph size per query."),
        student: StudentKind = typer.Option(StudentKind.cross, "--student", help="cross-encoder or bi-encoder student."),
        epochs: float = typer.Option(1.0, "--epochs", min=0.01),
        base_weight: float = typer.Option(0.0, "--base-weight", min=0.0, max=0.99, help="--student bi: keep this share of the base model's weights in the saved student (WiSE-FT; 0.7 on SciFact, docs/results.md)."),
        max_length: int = typer.Option(256, "--max-length", min=32, help="Student input tokens (query + document)."),
        depth: int = typer.Option(30, "--depth", min=1, help="First-stage documents the student reranks at evaluation."),
        eval_queries: Path = typer.Option(None, "--eval-queries", help="Real queries (BEIR queries.jsonl) to evaluate on."),
        eval_qrels: Path = typer.Option(None, "--eval-qrels", help="Their qrels (BEIR TSV)."),
        real_queries: Path = typer.Option(None, "--real-train-queries", help="Also train a student on these real queries (comparison)."),
        real_qrels: Path = typer.Option(None, "--real-train-qrels", help="Their qrels."),
        real_limit: int = typer.Option(None, "--real-train-limit", min=1),
        rewrite: bool = typer.Option(False, "--rewrite", help="Also have the teacher rewrite each query in everyday words (a harder query for the same document)."),
        teacher_queries: int = typer.Option(0, "--teacher-rerank", min=0, help="Also evaluate the teacher as a pointwise reranker on this many sampled evaluation queries (one LLM call per document; 0: off)."),
        teacher_depth: int = typer.Option(10, "--teacher-rerank-depth", min=1, help="Hybrid documents per query the teacher rescores."),
        teacher_method: TeacherMethodChoice = typer.Option(TeacherMethodChoice("likelihood"), "--teacher-rerank-method", help="How the teacher scores a document: likelihood = log P(query | document) (llamacpp: models only), yes_no = P(Yes) to 'does it answer the query?'."),
        calibration_queries: Path = typer.Option(None, "--calibration-queries", help="A human calibration sample: real training queries (never the evaluation ones); members are weighted by their accuracy on it, and a second student is trained that way."),
        calibration_qrels: Path = typer.Option(None, "--calibration-qrels", help="Their qrels."),
        calibration_limit: int = typer.Option(50, "--calibration-limit", min=1, max=50, help="Queries in the calibration sample (at most 50)."),
        run_dir: Path = typer.Option(Path("runs/reranker"), "--run-dir"),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Train a reranker on synthetic data from a teacher, and evaluate it on real queries.

        Example: synthwright reranker --corpus pydoc:topics --budget 60
        """
        from synthwright.pipeline.config import validate_pipeline
        from synthwright.pipeline.pipeline import run_pipeline
        from synthwright.pipeline.rundir import RunDirectory

        if (eval_queries is None) != (eval_qrels is None):
            raise UserError("Give --eval-queries and --eval-qrels together.", "Both come from the same BEIR folder (queries.jsonl, qrels/*.tsv).")
        if (real_queries is None) != (real_qrels is None):
            raise UserError("Give --real-train-queries and --real-train-qrels together.")
        if (calibration_queries is None) != (calibration_qrels is None):
            raise UserError("Give --calibration-queries and --calibration-qrels together.")
        if teacher_queries and eval_queries is None:
            raise UserError("--teacher-rerank evaluates the teacher on real queries: it needs --eval-queries and --eval-qrels.")
        if sentences_per_doc > 1 and focus != Focus.sentence:
            raise UserError("--sentences-per-doc draws sentences for --focus sentence; with the whole document it does nothing.",
                            "Add --focus sentence, or leave --sentences-per-doc out.")
        if base_weight and student != StudentKind.bi:
            raise UserError("--base-weight interpolates a bi-encoder student with its base model: it needs --student bi.", "Add --student bi, or leave --base-weight out.")
        bad = [s for s in styles if s not in ("claim", "question", "keyword", "code")]
        if bad:
            raise UserError(f"Unknown query style '{bad[0]}'.", "Use claim, question, keyword or code.")
        if style_examples is not None:
            _check_style_examples(style_examples, eval_queries, eval_qrels)  # a bad file fails here, before any step runs
        corpus_spec = corpus if corpus.startswith("pydoc:") else _path(Path(corpus))
        # A bad corpus fails here, before the progress display starts (read once per process anyway).
        from synthwright.reranker.corpus import open_corpus

        corpus_size = len(open_corpus(corpus_spec))
        llm_judge = teacher if judge_method == JudgeMethod.pairwise else f"likelihood:{teacher}"
        steps = reranker_steps(
            corpus_spec, teacher=teacher, styles=styles, documents=documents, budget=budget, candidates=candidates,
            pairs_per_query=pairs_per_query, student=student.value, epochs=epochs, max_length=max_length,
            eval_queries=_path(eval_queries), eval_qrels=_path(eval_qrels), real_queries=_path(real_queries),
            real_qrels=_path(real_qrels), real_limit=real_limit, depth=depth, corpus_size=corpus_size,
            teacher_queries=teacher_queries, teacher_depth=teacher_depth, calibration_queries=_path(calibration_queries),
            calibration_qrels=_path(calibration_qrels), calibration_limit=calibration_limit, rewrite=rewrite,
            focus=focus.value, sentences_per_doc=sentences_per_doc, base_weight=base_weight, teacher_method=teacher_method.value,
            judges=["bm25", "embedding", llm_judge], style_examples=_path(style_examples), first_stage=first_stage.value,
        )
        data = {"name": "reranker", "seed": seed, "steps": steps}
        config = validate_pipeline(data, source="synthwright reranker")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "pipeline.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        observer = ProgressObserver()
        try:
            result = run_pipeline(config, run_dir, observer=observer)
        finally:
            observer.close()
        print_step_table(RunDirectory(result.run_dir), title="reranker")
        _print_outcome(result.run_dir)


def _check_style_examples(path: Path, eval_queries: Path | None, eval_qrels: Path | None) -> None:
    """The style sample must be readable and hold no evaluation query: the teacher would see them."""
    from synthwright.reranker.evaluation import judged_queries
    from synthwright.reranker.style import read_style_queries

    style = set(read_style_queries(path))
    if eval_queries is None or eval_qrels is None:
        return
    shared = style & set(judged_queries(eval_queries, eval_qrels)[0].values())
    if shared:
        raise UserError(f"--style-examples holds {len(shared)} of the evaluation queries (e.g. '{sorted(shared)[0]}').",
                        "Take style examples from a training split (CoSQA: qrels/train.tsv), never the one you evaluate on.")


def _print_outcome(run_dir: Path) -> None:
    from synthwright.reranker.report import summary

    info = summary(run_dir)
    if info.get("first_stage"):
        out.print(f"first stage: {info['first_stage']['why']}")
    register = info.get("register") or {}
    if register.get("two_sample_auc"):
        out.print(f"register: two-sample AUC {register['two_sample_auc']['auc']:.3f} against {register['real']} real queries "
                  f"(0.5 = indistinguishable), coverage {register['coverage']['coverage']:.3f}")
    evaluation = info.get("evaluation")
    if evaluation:
        for name, values in evaluation["table"].items():
            out.print(f"  {name:<42} nDCG@10 {values['ndcg@10']:.3f}  MRR@10 {values['mrr@10']:.3f}  R@100 {values['recall@100']:.3f}")
    out.print(f"dataset: {run_dir / 'dataset.jsonl'}")
    out.print(f"student: {run_dir / 'student' / 'model'}")
    out.print(f"report:  {run_dir / 'report.html'}")
    out.print(f"pipeline (rerun with `synthwright run`): {run_dir / 'pipeline.yaml'}")
