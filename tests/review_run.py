"""A small real run folder for the review page, written through `RunDirectory` as a run writes it.

Steps: `questions` (generated rows with personas, perturbation tags, near-duplicates dropped
with their twin named, a failed row, and one hostile row), `judged` (pointwise rubric scores
spread over 1-5, with per-judge reasons), `kept` (a judge filter: kept and dropped), and
`pairs` (pairwise verdicts with both orders).
"""

from __future__ import annotations

import random
from pathlib import Path

from synthwright.core.lineage import add_score, derive_id
from synthwright.core.step import BatchResult
from synthwright.pipeline.rundir import RunDirectory

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> & "quotes"'
PERSONAS = ("student", "nurse", "retiree")
CRITERIA = ("relevance", "naturalness", "difficulty")
N_QUESTIONS = 30
N_PAIRS = 12

STEPS = [
    {"name": "questions", "uses": "generate", "with": {"model": "llamacpp:smollm2-135m"}},
    {"name": "judged", "uses": "judge", "input": "questions",
     "with": {"judges": ["tiny=llamacpp:smollm2-135m"], "text_column": "question", "context_column": "document"}},
    {"name": "kept", "uses": "judge_filter", "input": "judged", "with": {"threshold": 2.0}},
    {"name": "pairs", "uses": "judge", "with": {"judges": ["tiny=llamacpp:smollm2-135m"], "mode": "pairwise", "context_column": "query"}},
]


def _question(i: int) -> dict:
    meta = {"id": derive_id("q", i), "step": "questions", "model": "llamacpp:smollm2-135m", "persona_id": PERSONAS[i % 3], "round": 0}
    if i % 5 == 0:
        meta["perturbations"] = ["typo"]
    if i % 7 == 0:
        meta["perturbations"] = meta.get("perturbations", []) + ["ambiguity"]
    question = XSS if i == 3 else f"Question {i}: how does topic {i} relate to the document about item {i % 4}?"
    return {"question": question, "document": f"Document {i % 4} describes item {i % 4} in some detail.", "_meta": meta}


def _judged(row: dict, i: int, rng: random.Random) -> dict:
    score = 1.0 + 4.0 * (i % 10) / 9  # spread over the whole scale
    criteria = {c: min(5.0, max(1.0, score + rng.uniform(-0.5, 0.5))) for c in CRITERIA}
    row = {**row, "judge_score": score, "judge_criteria": criteria,
           "judge_by": {"tiny": {"score": score, "criteria": {c: {"score": v} for c, v in criteria.items()},
                                 "reason": f"Reason with <b>markup</b> for row {i}"}}}
    row = add_score(row, "judge.tiny", score, model="llamacpp:smollm2-135m", criteria=criteria)
    return add_score(row, "judge", score, mode="pointwise", weights={"tiny": 1.0})


def _pair(i: int) -> dict:
    p_first_ab = 0.2 + 0.6 * (i % 4) / 3
    p_first_ba = 0.5
    p_a = (p_first_ab + (1 - p_first_ba)) / 2
    row = {"query": f"pair query {i}", "a": f"answer A{i}", "b": f"answer B{i}",
           "_meta": {"id": derive_id("pair", i), "step": "pairs"},
           "judge_p_a": p_a, "judge_winner": "a" if p_a > 0.5 else "b" if p_a < 0.5 else "tie",
           "judge_by": {"tiny": {"p_a": p_a, "p_first_ab": p_first_ab, "p_first_ba": p_first_ba, "consistent": p_a != 0.5}}}
    return add_score(row, "judge", p_a, mode="pairwise", weights={"tiny": 1.0})


def _write_step(run: RunDirectory, name: str, result: BatchResult) -> None:
    run.start_step(name, fingerprint=derive_id("fp", name), input_digest=None)
    run.write_batch(name, 0, result)
    run.finish_step(name)


def make_review_run(path: Path) -> Path:
    rng = random.Random(0)
    run = RunDirectory(path)
    run.write_manifest({"name": "review-demo", "config": {"name": "review-demo", "seed": 0, "steps": STEPS}, "seed": 0,
                        "history": [{"started": 0, "status": "done"}]})

    questions = [_question(i) for i in range(N_QUESTIONS)]
    generated = BatchResult.for_input(N_QUESTIONS + 4)
    for row in questions:
        generated.keep(row)
    for i in range(3):  # near-duplicates of kept rows, each naming its twin
        twin = questions[i]
        dup = {"question": twin["question"].replace("?", " ?"), "document": twin["document"],
               "_meta": {**twin["_meta"], "id": derive_id("dup", i), "duplicate_of": twin["_meta"]["id"], "cosine_distance": 0.01 * (i + 1)}}
        generated.drop(dup, "dropped_near_duplicate")
    generated.fail({"question": "unparsed", "_meta": {"id": derive_id("failed", 0), "step": "questions"}}, "parse_error: no question found")
    _write_step(run, "questions", generated)

    judged_rows = [_judged(row, i, rng) for i, row in enumerate(questions)]
    judged = BatchResult.for_input(len(judged_rows))
    for row in judged_rows:
        judged.keep(row)
    _write_step(run, "judged", judged)

    kept = BatchResult.for_input(len(judged_rows))
    for row in judged_rows:
        if row["judge_score"] >= 2.0:
            kept.keep(row)
        else:
            kept.drop(row, "judge_score_below_2")
    _write_step(run, "kept", kept)

    pairs = BatchResult.for_input(N_PAIRS)
    for i in range(N_PAIRS):
        pairs.keep(_pair(i))
    _write_step(run, "pairs", pairs)
    return path
