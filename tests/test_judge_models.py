"""Judges on real models, fast: the tiny SmolLM2-135M in-process and behind llama-cpp-python's
own OpenAI-compatible server, the offline MiniLM embedder, and the pipeline steps.

SmolLM2 is no judge (it prefers whatever is shown first): good for plumbing, and for showing
that position bias is measured rather than hidden.
"""

from __future__ import annotations

import json

import pytest

from synthwright.core.step import StepContext
from synthwright.judges import (
    EmbeddingJudge, JudgeColumns, JudgeEnsemble, JudgeFailure, PairItem, PairResult, PairwiseJudge, PointItem, PointResult,
    RubricJudge, judge_report, judge_rows,
)
from synthwright.pipeline import Pipeline
from synthwright.pipeline.rundir import RunDirectory

TINY = "llamacpp:smollm2-135m"
DOC_REEF = "The Great Barrier Reef, off the coast of Queensland, is the largest coral reef system in the world."
DOC_RUST = "Rust guarantees memory safety without a garbage collector, using ownership rules checked at compile time."
DOC_BREAD = "A sourdough starter is flour and water colonised by wild yeast; bakers use it to leaven bread."
PAIRS = [
    ("where is the largest coral reef", DOC_REEF, DOC_RUST),
    ("how does rust stay memory safe", DOC_BREAD, DOC_RUST),
    ("what lives in a sourdough starter", DOC_BREAD, DOC_REEF),
    ("is the great barrier reef in queensland", DOC_RUST, DOC_REEF),
    ("rust ownership rules", DOC_RUST, DOC_BREAD),
    ("how to leaven bread without yeast from the shop", DOC_REEF, DOC_BREAD),
]


def test_rubric_judge_expected_scores_from_probabilities():
    judge = RubricJudge(TINY)
    items = [PointItem("Where is the Great Barrier Reef?", context=DOC_REEF), PointItem("reef reef of the", context=None)]
    first, second = judge.score(items)
    assert isinstance(first, PointResult) and set(first.criteria) == {"relevance", "naturalness", "difficulty"}
    for criterion in first.criteria.values():
        assert sum(criterion.probs.values()) == pytest.approx(1.0)
        assert criterion.score == pytest.approx(sum(int(k) * p for k, p in criterion.probs.items()))
        assert 1.0 <= criterion.score <= 5.0 and criterion.argmax in (1, 2, 3, 4, 5)
    assert first.score == pytest.approx(sum(c.score for c in first.criteria.values()) / 3)
    assert set(second.criteria) == {"naturalness", "difficulty"}  # relevance needs a context
    assert judge.usage.sent == 5 and judge.usage.completion_tokens == 0
    # asked again: every judgment comes from the request cache
    again = RubricJudge(TINY)
    assert again.score(items) == [first, second] and again.usage.cache_hits == 5 and again.usage.sent == 0


def test_rubric_judge_json_scoring_with_reason():
    judge = RubricJudge(TINY, scoring="json")
    (result,) = judge.score([PointItem("Where is the Great Barrier Reef?", context=DOC_REEF)])
    assert judge.usage.sent == 1 and judge.usage.completion_tokens > 0
    if isinstance(result, JudgeFailure):  # a tiny model may run out of tokens mid-string: said, not hidden
        assert result.reason.startswith("invalid_json")
        return
    assert set(result.criteria) == {"relevance", "naturalness", "difficulty"}
    assert all(c.score in (1.0, 2.0, 3.0, 4.0, 5.0) and c.probs is None for c in result.criteria.values())
    assert isinstance(result.reason, str)


def test_pairwise_judge_asks_both_orders_and_measures_position_bias():
    judge = PairwiseJudge(TINY)
    results = judge.compare([PairItem(q, a, b) for q, a, b in PAIRS])
    assert judge.usage.sent == 2 * len(PAIRS)
    assert all(isinstance(r, PairResult) for r in results)
    rows = [{"q": q, "a": a, "b": b, "_meta": {"id": str(i)}} for i, (q, a, b) in enumerate(PAIRS)]
    judged = judge_rows(rows, JudgeEnsemble([PairwiseJudge(TINY)]), "pairwise", JudgeColumns(context="q"))
    stats = judge_report(judged.rows)["judges"]["smollm2-135m"]
    # SmolLM2 prefers the first document whatever it says: the report shows it
    assert stats["first_wins_rate"] >= 0.75 and stats["consistency"] <= 0.5
    for row in judged.rows:
        by = row["judge_by"]["smollm2-135m"]
        assert row["judge_p_a"] == pytest.approx((by["p_first_ab"] + 1 - by["p_first_ba"]) / 2)


def test_pairwise_over_http(llama_server):
    # P(first) comes from the server's top-20 logprobs, renormalised over "1" and "2" (a digit
    # outside the top 20 counts as 0), or from the answer text when a server gives none.
    judge = PairwiseJudge(f"openai:smollm@{llama_server}")
    results = judge.compare([PairItem(q, a, b) for q, a, b in PAIRS[:2]])
    assert judge.usage.sent == 4
    for result in results:
        assert isinstance(result, PairResult)
        assert 0.0 <= result.p_first_ab <= 1.0 and 0.0 <= result.p_first_ba <= 1.0


def test_minilm_member_beats_the_tiny_llm():
    judge = EmbeddingJudge()  # the offline MiniLM, through synthwright.embed
    results = judge.compare([PairItem(q, a, b) for q, a, b in PAIRS])
    relevant_is_a = [True, False, True, False, True, False]
    assert [r.p_a > 0.5 for r in results] == relevant_is_a
    (score,) = judge.score([PointItem("where is the largest coral reef", context=DOC_REEF)])
    assert 1.0 < score.score <= 5.0 and score.reason.startswith("cosine")


def test_pipeline_judge_then_filter(tmp_path):
    rows = [{"question": q, "document": a} for q, a, _ in PAIRS] + [{"question": "x y z", "document": DOC_REEF}]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pipeline = Pipeline("judge-test", seed=3)
    pipeline.step("rows", "load", path=str(tmp_path / "rows.jsonl"))
    pipeline.step(
        "judged", "judge", batch_size=4, judges=[TINY, "embedding"], text_column="question", context_column="document",
        rubric="default", generator="llamacpp:smollm2-135m",
    )
    pipeline.step("kept", "judge_filter", drop_bottom=0.3)
    with pytest.warns(UserWarning, match="IS the generator"):
        result = pipeline.run(tmp_path / "run", context=StepContext(run_seed=3, workdir=tmp_path))
    run = RunDirectory(result.run_dir)
    judged = list(run.rows("judged"))
    assert len(judged) == 7 and all(set(r["judge_by"]) == {"smollm2-135m", "embedding"} for r in judged)
    assert all(r["_meta"]["scores"]["judge"]["score"] == pytest.approx(r["judge_score"]) for r in judged)
    kept, dropped = list(run.rows("kept")), list(run.rows("kept", "dropped"))
    assert len(kept) == 5 and len(dropped) == 2  # floor(0.3 * 7)
    assert max(r["judge_score"] for r in dropped) <= min(r["judge_score"] for r in kept)
    assert all("judge_by" in r for r in dropped)  # dropped rows keep their scores
    report = json.loads((result.run_dir / "judge_report.json").read_text())
    assert set(report["judges"]) == {"smollm2-135m", "embedding"}
    assert report["circularity"][0]["same_model"] is True
    assert report["filter"] == {"column": "judge_score", "kept": 5, "dropped": 2, "rule": "bottom 0.3"}
    stats = run.merged_stats("judged")
    assert stats.rows_in == 7 and stats.rows_out == 7 and stats.requests_sent == 7 * 3
