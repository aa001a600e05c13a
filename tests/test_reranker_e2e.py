"""`synthwright reranker` end to end on a dozen hand-written documents with the tiny teacher
(smollm2-135m): labels, a trained student, an evaluation on real queries, the report, and a
rerun of the pipeline it wrote that does nothing (issue #8's end-to-end check).

About a minute per student kind on two CPU cores, most of it training the student."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from synthwright.pipeline.rundir import RunDirectory
from synthwright.reranker.student import StudentReranker
from tests.conftest import run_cli
from tests.test_pipeline_integration import calls

DOCUMENTS = {
    "bees": ("Honey bees", "Honey bees live in colonies ruled by a single queen. Worker bees collect nectar from flowers and turn it into honey inside the hive."),
    "volcano": ("Volcanoes", "A volcano erupts when molten rock called magma rises through the crust. Lava flows and ash clouds can bury nearby towns."),
    "bread": ("Baking bread", "Bread dough rises because yeast ferments sugar and releases carbon dioxide. Kneading develops gluten, which traps the gas."),
    "chess": ("Chess openings", "In chess, the opening is the first phase of the game. Players develop knights and bishops and try to control the centre of the board."),
    "tides": ("Ocean tides", "Tides are caused by the gravitational pull of the Moon and the Sun on the oceans. Most coasts see two high tides every day."),
    "piano": ("The piano", "The piano produces sound when felt hammers strike steel strings. Pressing the sustain pedal lifts the dampers so notes ring on."),
    "rust": ("Rusting iron", "Iron rusts when it reacts with oxygen and water to form iron oxide. Salt water speeds up corrosion, which is why ships need paint."),
    "vaccines": ("Vaccines", "A vaccine trains the immune system to recognise a pathogen. It contains a weakened virus or a protein that triggers antibodies."),
    "glaciers": ("Glaciers", "Glaciers are slow rivers of ice formed from compressed snow. As they move they carve valleys and carry boulders for miles."),
    "coffee": ("Coffee roasting", "Roasting coffee beans turns them from green to brown. Heat drives the Maillard reaction, which creates the aroma of coffee."),
    "bicycles": ("Bicycle gears", "Bicycle gears change how far the wheel turns for each turn of the pedals. Low gears make climbing hills easier for the rider."),
    "owls": ("Owls", "Owls hunt at night using excellent hearing and silent flight. Their soft feathers muffle the sound of their wings."),
}
EVAL_QUERIES = {"q1": ("why does bread dough rise", "bread"), "q2": ("what causes ocean tides", "tides"),
                "q3": ("how do owls fly silently", "owls"), "q4": ("why does iron rust in salt water", "rust")}
BUDGET = 4
SYSTEMS = ("BM25", "dense (MiniLM)", "hybrid (RRF)", "student: rerank top 30", "hybrid + student (RRF)", "BM25 + student (RRF)",
           "BM25 + untrained MiniLM (RRF, control)")
# The bi-encoder run also evaluates the teacher as a pointwise reranker (2 sampled queries x top 3).
TEACHER_RERANK = {"cross": (), "bi": ("--teacher-rerank", "2", "--teacher-rerank-depth", "3")}
TEACHER_SYSTEMS = ("hybrid (RRF) [2 sampled queries]", "teacher (smollm2-135m, query likelihood): rerank hybrid top 3 [2 sampled queries]")
# The bi-encoder run has the teacher read one sentence at a time, two per document (each has two),
# and keeps half of the base model's weights in the saved student.
FOCUS = {"cross": (), "bi": ("--focus", "sentence", "--sentences-per-doc", "2", "--base-weight", "0.5")}
QUERIES_PER_DOC = {"cross": 1, "bi": 2}
# The cross-encoder run has the teacher judge by query likelihood: one request per document of the
# chosen pairs, not two per pair.
JUDGE_METHOD = {"cross": ("--judge-method", "likelihood"), "bi": ()}


@pytest.fixture
def beir_files(tmp_path) -> dict[str, Path]:
    corpus, queries, qrels = tmp_path / "corpus.jsonl", tmp_path / "queries.jsonl", tmp_path / "qrels.tsv"
    corpus.write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in DOCUMENTS.items()), encoding="utf-8")
    queries.write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in EVAL_QUERIES.items()), encoding="utf-8")
    qrels.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, (_, d) in EVAL_QUERIES.items()), encoding="utf-8")
    return {"corpus": corpus, "queries": queries, "qrels": qrels}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("student", ["cross", "bi"])
def test_reranker_end_to_end_then_rerun_does_nothing(student, beir_files, tmp_path, isolated_cache, smollm_path):
    run_dir = tmp_path / "run"
    started = time.monotonic()
    result = run_cli(
        "reranker", "--corpus", str(beir_files["corpus"]), "--teacher", "llamacpp:smollm2-135m", "--budget", str(BUDGET),
        "--candidates", "4", "--pairs-per-query", "6", "--epochs", "1", "--max-length", "64", "--student", student,
        "--eval-queries", str(beir_files["queries"]), "--eval-qrels", str(beir_files["qrels"]), "--run-dir", str(run_dir),
        "--first-stage", "hybrid",  # forced: the systems' names below are hybrid's (test_reranker_cosqa runs auto)
        *TEACHER_RERANK[student], *FOCUS[student], *JUDGE_METHOD[student], timeout=480,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    print(f"synthwright reranker --student {student}: {took:.1f} s")

    # Queries: one per document (or per drawn sentence), each sent to the teacher; the LLM judged within its budget.
    rundir = RunDirectory(run_dir)
    assert rundir.merged_stats("queries").requests_sent == QUERIES_PER_DOC[student] * len(DOCUMENTS)
    labels_report = json.loads((run_dir / "labels_report.json").read_text())
    llm = [m for m in labels_report["members"] if m not in ("bm25", "embedding")]
    assert set(labels_report["members"]) >= {"bm25", "embedding"} and len(llm) == 1, labels_report
    assert labels_report["members"]["embedding"]["anchor_pairs"] > 0

    # Labels: every kept query grades its source and its candidates in [0, 1].
    rows = read_jsonl(run_dir / "dataset.jsonl")
    assert 0 < len(rows) <= QUERIES_PER_DOC[student] * len(DOCUMENTS)
    if FOCUS[student]:  # each query was written from one sentence of its document
        assert all(row["sentence"] in DOCUMENTS[row["doc_id"]][1] for row in rows)
    llm_judged = sum(1 for row in rows for c in row["comparisons"] if (c["by"] or {}).get(llm[0]) is not None)
    assert 1 <= llm_judged <= BUDGET
    if JUDGE_METHOD[student]:  # each document of the judged pairs scored once
        assert llm == ["smollm2-135m (likelihood)"]
        scored = {(row["query_id"], doc) for row in rows for c in row["comparisons"] if (c["by"] or {}).get(llm[0]) is not None for doc in (c["a"], c["b"])}
        assert rundir.merged_stats("judged").requests_sent == len(scored)
    else:
        assert rundir.merged_stats("judged").requests_sent == 2 * llm_judged  # each pair asked in both orders
    source_best = 0
    for row in rows:
        labels = {item["doc_id"]: item for item in row["labels"]}
        assert set(labels) == {row["doc_id"], *row["candidates"]}
        assert all(set(item) == {"doc_id", "label", "score", "std"} for item in labels.values())
        assert all(0.0 <= item["label"] <= 1.0 and item["std"] > 0 for item in labels.values())
        source_best += labels[row["doc_id"]]["label"] == max(item["label"] for item in labels.values())
    assert source_best >= len(rows) / 2, "the source document should mostly get the highest label"

    # The student: a saved model and a training curve.
    assert (run_dir / "student" / "model").is_dir() and any((run_dir / "student" / "model").iterdir())
    training = json.loads((run_dir / "student" / "training.json").read_text())
    assert training["kind"] == student and training["examples"] > 0
    assert training["base_weight"] == (0.5 if student == "bi" else 0.0)
    assert training["curves"]["train"] and all(loss >= 0 for _, loss in training["curves"]["train"])
    reloaded = StudentReranker(run_dir / "student" / "model")  # the kind is read back from the saved folder
    assert reloaded.kind == student
    assert StudentReranker(run_dir / "student").path == reloaded.path  # the step's folder names its model too
    assert len(reloaded.score("why does bread dough rise", [DOCUMENTS["bread"][1], DOCUMENTS["owls"][1]])) == 2

    # Evaluation on the real queries: every system, every metric in [0, 1].
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["queries"] == len(EVAL_QUERIES)
    with_teacher = bool(TEACHER_RERANK[student])
    # A bi-encoder student is also a retriever over the whole corpus, alone and fused with the first stage's retrieval.
    retriever = {"student: retriever (whole corpus, exact)", "hybrid + student as retriever (RRF)"} if student == "bi" else set()
    assert set(evaluation["table"]) == set(SYSTEMS) | (set(TEACHER_SYSTEMS) if with_teacher else set()) | retriever
    if with_teacher:  # one likelihood request per (sampled query, document), counted in the step's stats
        assert rundir.merged_stats("evaluation").requests_sent == 2 * 3
        assert TEACHER_SYSTEMS[1] in evaluation["gains"] and any("6 documents scored" in note for note in evaluation["notes"])
    for name, metrics in evaluation["table"].items():
        assert set(metrics) == {"ndcg@10", "mrr@10", "recall@100"}, name
        assert all(0.0 <= value <= 1.0 for value in metrics.values()), (name, metrics)
    assert evaluation["table"]["BM25"]["recall@100"] == 1.0  # twelve documents: everything is retrieved
    assert set(evaluation["gains"]) - {TEACHER_SYSTEMS[1]} == {"student: rerank top 30", "hybrid + student (RRF)", "BM25 + student (RRF)",
                                                               "BM25 + untrained MiniLM (RRF, control)"} | retriever
    assert json.loads((run_dir / "first_stage.json").read_text())["chosen"] == "hybrid"  # forced, and still measured
    # The student's own gain: BM25 + student against the same fusion with the untrained MiniLM.
    over = evaluation["over_control"]["BM25 + student (RRF)"]
    table = evaluation["table"]
    assert over["difference"] == pytest.approx(table["BM25 + student (RRF)"]["ndcg@10"] - table[SYSTEMS[-1]]["ndcg@10"])

    report = (run_dir / "report.html").read_text(encoding="utf-8")
    for section in ("<h2>Data</h2>", "<h2>Judges</h2>", "<h2>Labels</h2>", "<h2>Student</h2>", "<h2>Evaluation on 4 real queries</h2>",
                    "<h3>Gain over the control"):
        assert section in report, section
    assert "data:image/png;base64," in report  # label distribution and loss curves inline

    # The pipeline it wrote reruns with every step up to date, asking the teacher nothing.
    assert (run_dir / "pipeline.yaml").is_file()
    calls_before = len(calls(isolated_cache))
    again = run_cli("run", str(run_dir / "pipeline.yaml"), "--run-dir", str(run_dir), timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(0 requests sent)" in again.stdout
    for step in ("documents", "queries", "unique", "candidates", "judged", "labels", "dataset", "student", "evaluation", "report"):
        assert f"{step}: up to date" in again.stderr, (step, again.stderr[-2000:])
    assert len(calls(isolated_cache)) == calls_before


def test_rewrite_queries_keeps_originals_and_adds_checked_rewrites(tmp_path, smollm_path):
    """The rewrite step on three queries with the tiny teacher: each original is kept, each
    rewrite points back to it, and every rewrite is kept or dropped with a reason."""
    from synthwright.core.step import StepContext
    from synthwright.reranker.steps import RewriteQueriesOptions, RewriteQueriesStep

    rows = []
    for doc_id in ("bread", "tides", "owls"):
        title, text = DOCUMENTS[doc_id]
        rows.append({"doc_id": doc_id, "document": f"{title}. {text}", "style": "question", "query": EVAL_QUERIES[
            {"bread": "q1", "tides": "q2", "owls": "q3"}[doc_id]][0], "query_id": f"id-{doc_id}", "_meta": {"id": f"id-{doc_id}"}})
    step = RewriteQueriesStep("rewritten", RewriteQueriesOptions(model="llamacpp:smollm2-135m"), StepContext(workdir=tmp_path))
    result = step.process(rows)
    originals = [row for row in result.kept if "query_original" not in row]
    rewrites = [row for row in result.kept if "query_original" in row]
    assert originals == rows
    assert len(rewrites) + len(result.dropped) + len(result.failed) == 3
    assert result.stats.rows_out == len(result.kept) == 3 + len(rewrites)
    for row in rewrites:
        parent = next(r for r in rows if r["_meta"]["id"] == row["_meta"]["parents"][0])
        assert row["query_original"] == parent["query"] and row["doc_id"] == parent["doc_id"]
        assert row["query_id"] == row["_meta"]["id"] != parent["query_id"] and row["query"] and row["query"] != parent["query"]
    assert {reason for _, reason in result.dropped} <= {"too_short", "too_long", "mentions_document", "copies_document", "unchanged"}
