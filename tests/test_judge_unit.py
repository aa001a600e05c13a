"""Judges without a model: ensemble arithmetic, agreement, rubric files, families and
circularity, filtering, the columns and lineage `judge_rows` writes, and the report.

Judges here are real `Judge` subclasses with known verdicts (the plugin interface a judge
implements), and the embedding judge runs on a small bag-of-words embedder whose cosines can
be worked out by hand.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from synthwright.errors import UserError
from synthwright.judges import (
    CircularJudgeWarning, EmbeddingJudge, JudgeColumns, JudgeEnsemble, JudgeFailure, PairItem, PairResult, PointItem,
    PointResult, agreement_table, agreement_weights, check_circularity, expected_score, judge_report, judge_rows,
    load_rubric, model_family, select_by_score,
)
from synthwright.judges.base import Judge
from synthwright.judges.factory import build_judge
from synthwright.judges.members import parse_member, parse_members
from synthwright.judges.prompts import PairwisePrompt, criterion_request, rubric_json_request, truncate
from synthwright.judges.rubric import DEFAULT_RUBRIC


class FixedJudge(Judge):
    """A judge whose verdicts are given up front: value per item text (or a failure reason)."""

    kinds = ("pointwise", "pairwise")

    def __init__(self, name: str, values: dict[str, float | str], model: str | None = None):
        super().__init__(name, model)
        self.values = values

    def describe(self):
        return {"kind": "fixed"}

    def score(self, items, progress=None):
        out = []
        for item in items:
            value = self.values[item.text]
            out.append(JudgeFailure(value) if isinstance(value, str) else PointResult(value))
        return out

    def compare(self, items, progress=None):
        out = []
        for item in items:
            p = self.values[item.context]
            out.append(PairResult(p_first_ab=p, p_first_ba=1 - p))
        return out


VOCAB = ["coral", "reef", "ocean", "bread", "flour", "oven", "rust", "memory", "safety"]


def bag_of_words(texts):
    """Counts of the VOCAB words: cosines are easy to work out by hand."""
    return np.array([[text.lower().split().count(word) for word in VOCAB] for text in texts], float)


# -- expected scores and pair results -----------------------------------------------------------
def test_expected_score_is_probability_weighted_not_argmax():
    score, argmax = expected_score({"1": 0.0, "2": 0.0, "3": 0.45, "4": 0.1, "5": 0.45})
    assert score == pytest.approx(4.0) and argmax in (3.0, 5.0)
    # probabilities that do not sum to one (renormalised among the choices)
    assert expected_score({"1": 0.2, "2": 0.0, "3": 0.0, "4": 0.0, "5": 0.2})[0] == pytest.approx(3.0)
    yes = expected_score({"Yes": 0.75, "No": 0.25}, binary=True)
    assert yes == (pytest.approx(4.0), 5.0)


def test_pair_result_averages_both_orders():
    # A first: P(first) 0.9; B first: P(first) 0.6 -> P(A) = (0.9 + 0.4) / 2
    r = PairResult(p_first_ab=0.9, p_first_ba=0.6)
    assert r.p_a == pytest.approx(0.65)
    assert not r.consistent  # the first document won both times
    assert PairResult(0.8, 0.3).consistent and PairResult(0.2, 0.7).consistent


# -- ensembles ------------------------------------------------------------------------------------
def test_ensemble_weighted_mean_and_per_member_values():
    items = [PointItem("x"), PointItem("y")]
    ensemble = JudgeEnsemble([FixedJudge("a", {"x": 4.0, "y": 2.0}), FixedJudge("b", {"x": 2.0, "y": 5.0})], {"a": 3, "b": 1})
    outcome = ensemble.score(items)
    assert outcome.weights == {"a": 0.75, "b": 0.25}
    assert outcome.combined == [pytest.approx(3.5), pytest.approx(2.75)]
    assert outcome.member_value("b", 1) == 5.0
    equal = JudgeEnsemble(ensemble.judges).score(items)
    assert equal.combined == [pytest.approx(3.0), pytest.approx(3.5)]


def test_ensemble_fails_an_item_when_a_member_fails():
    ensemble = JudgeEnsemble([FixedJudge("a", {"x": 4.0, "y": 3.0}), FixedJudge("b", {"x": "model said nonsense", "y": 1.0})])
    outcome = ensemble.score([PointItem("x"), PointItem("y")])
    assert outcome.combined == [None, pytest.approx(2.0)]
    assert outcome.failures == ["b: model said nonsense", None]


def test_agreement_weights_down_weight_the_odd_one_out():
    values = {"a": [1, 2, 3, 4, 5], "b": [1, 2, 3, 5, 4], "odd": [5, 4, 3, 2, 1]}
    weights = agreement_weights(values)
    assert weights["odd"] == 0.0 and weights["a"] > 0 and weights["b"] > 0
    # two judges: symmetric, so equal
    two = agreement_weights({"a": [1, 2, 3], "b": [1, 3, 2]})
    assert two["a"] == two["b"]
    ensemble = JudgeEnsemble(
        [FixedJudge(n, {str(i): v for i, v in enumerate(vs)}) for n, vs in values.items()], "agreement"
    )
    outcome = ensemble.score([PointItem(str(i)) for i in range(5)])
    assert outcome.weights["odd"] == 0.0 and sum(outcome.weights.values()) == pytest.approx(1.0)


def test_ensemble_rejects_bad_configurations():
    with pytest.raises(UserError, match="named 'a'"):
        JudgeEnsemble([FixedJudge("a", {}), FixedJudge("a", {})])
    with pytest.raises(UserError, match="unknown judge"):
        JudgeEnsemble([FixedJudge("a", {})], {"b": 1.0})
    with pytest.raises(UserError, match="positive sum"):
        JudgeEnsemble([FixedJudge("a", {})], {"a": 0.0})


def test_agreement_table_values():
    table = agreement_table({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.2, 2.1, 2.9, 4.4, 4.6]}, "pointwise")
    assert table == [{"a": "a", "b": "b", "n": 5, "spearman": pytest.approx(1.0), "kappa": pytest.approx(1.0), "kappa_weights": "quadratic"}]
    pairs = agreement_table({"x": [0.9, 0.2, 0.7, 0.4], "y": [0.6, 0.3, 0.4, 0.1]}, "pairwise")[0]
    # winners A,B,A,B vs A,B,B,B: agreement 3/4, chance (2*1 + 2*3)/16 = 1/2 -> kappa 0.5
    assert pairs["kappa"] == pytest.approx(0.5) and pairs["kappa_weights"] == "none"


# -- embedding judge ------------------------------------------------------------------------------
def test_embedding_judge_pointwise_and_pairwise_by_hand():
    judge = EmbeddingJudge(bag_of_words, temperature=0.1)
    point = judge.score([PointItem("coral reef", context="coral reef ocean"), PointItem("bread", context="coral reef"), PointItem("x")])
    # cos((1,1,0), (1,1,1)) = 2 / sqrt(6)
    assert point[0].score == pytest.approx(1 + 4 * 2 / math.sqrt(6))
    assert point[1].score == 1.0
    assert isinstance(point[2], JudgeFailure) and "context" in point[2].reason
    pair = judge.compare([PairItem("coral reef", a="coral reef ocean", b="bread flour")])[0]
    expected = 1 / (1 + math.exp(-(2 / math.sqrt(6) - 0) / 0.1))
    assert pair.p_a == pytest.approx(expected)
    assert pair.consistent and pair.p_first_ab == pytest.approx(1 - pair.p_first_ba)  # no position, no bias


# -- families and circularity -------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, family",
    [
        ("llamacpp:qwen2.5-coder-1.5b", "qwen"), ("llamacpp:smollm2-135m", "smollm"), ("openai:gpt-4o-mini", "gpt"),
        ("openai:Qwen/Qwen2.5-72B-Instruct@http://127.0.0.1:8000/v1", "qwen"), ("llamacpp:/models/Meta-Llama-3-8B.Q4.gguf", "llama"),
        ("openai:claude-3-5-sonnet", "claude"), ("openai:mixtral-8x7b", "mistral"), ("openai:o3-mini", "gpt"),
        ("openai:gemma-2-9b-it", "gemma"), ("openai:phi-3-mini", "phi"), ("openai:my-finetune", None), (None, None),
    ],
)
def test_model_family(spec, family):
    assert model_family(spec) == family


def test_circularity_names_same_family_and_same_model():
    found = check_circularity(
        {"big": "llamacpp:qwen2.5-coder-1.5b", "tiny": "llamacpp:smollm2-135m", "embedding": None},
        ["llamacpp:qwen2.5-coder-1.5b", "openai:Qwen2.5-72B-Instruct"],
    )
    assert [(c.judge, c.generator, c.same_model) for c in found] == [
        ("big", "llamacpp:qwen2.5-coder-1.5b", True), ("big", "openai:Qwen2.5-72B-Instruct", False)
    ]
    assert "IS the generator" in found[0].message() and "circular" in found[1].message()


def test_judge_rows_warns_loudly_and_reports_circularity():
    rows = [{"text": "x", "_meta": {"id": "1", "model": "llamacpp:qwen2.5-coder-0.5b"}}]
    ensemble = JudgeEnsemble([FixedJudge("qwenjudge", {"x": 4.0}, model="llamacpp:qwen2.5-coder-1.5b")])
    with pytest.warns(CircularJudgeWarning, match="shares the model family 'qwen'"):
        judged = judge_rows(rows, ensemble)
    assert judged.circularity and judge_report(judged.rows)["circularity"][0]["family"] == "qwen"
    # a generator given explicitly counts too; a different family does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        judge_rows([{"text": "x"}], JudgeEnsemble([FixedJudge("s", {"x": 1.0}, model="llamacpp:smollm2-135m")]), generator="openai:gpt-4o")


# -- rubric files and prompts -------------------------------------------------------------------
def test_custom_rubric_from_yaml(tmp_path):
    path = tmp_path / "support.yaml"
    path.write_text(
        "text_label: Question\ncriteria:\n"
        "  - name: clarity\n    question: Is it clear?\n    anchors: [a, b, c, d, e]\n"
        "  - name: polite\n    question: Is the question polite?\n    binary: true\n    weight: 0.5\n"
    )
    rubric = load_rubric(path)
    assert rubric.name == "support" and [c.name for c in rubric.criteria] == ["clarity", "polite"]
    assert rubric.overall({"clarity": 4.0, "polite": 1.0}) == pytest.approx(3.0)
    binary = criterion_request(rubric, rubric.criteria[1], "hi", None, None)
    assert binary.choices == ("Yes", "No") and binary.messages[1].content.startswith("Is the question polite? Answer Yes or No.")
    scale = criterion_request(rubric, rubric.criteria[0], "hi", None, None)
    assert scale.choices == ("1", "2", "3", "4", "5") and "1 = a\n2 = b" in scale.messages[1].content
    schema = rubric_json_request(rubric, rubric.criteria, "hi", None, None).json_schema
    assert list(schema["properties"]) == ["reason", "clarity", "polite"] and schema["properties"]["polite"] == {"type": "boolean"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("criteria:\n  - name: x\n    question: q\n    anchors: [only, three, anchors]\n")
    with pytest.raises(UserError, match="one anchor per point"):
        load_rubric(bad)
    with pytest.raises(UserError, match="does not exist"):
        load_rubric(tmp_path / "missing.yaml")


def test_default_rubric_skips_context_criteria_without_context():
    assert [c.name for c in DEFAULT_RUBRIC.usable(has_context=False)] == ["naturalness", "difficulty"]
    assert len(DEFAULT_RUBRIC.usable(has_context=True)) == 3


def test_prompt_wording_puts_the_instruction_first():
    request = PairwisePrompt().request("what is rust", "doc one", "doc two", None)
    system, user = request.messages
    assert system.content == "You are an impartial search relevance judge."
    assert user.content.startswith("Which of the two documents answers the search query? Reply with 1 or 2.")
    assert user.content.index("Document 1: doc one") < user.content.index("Document 2: doc two")
    assert request.choices == ("1", "2")
    assert truncate("one two three four", 9) == "one two ..."


def test_judge_specs():
    strict = parse_member("strict=llamacpp:qwen2.5-coder-1.5b")
    assert (strict.name, strict.kind, strict.target) == ("strict", "llm", "llamacpp:qwen2.5-coder-1.5b")
    assert build_judge("strict=llamacpp:qwen2.5-coder-1.5b").name == "strict"
    assert build_judge("llamacpp:qwen2.5-coder-1.5b").name == "qwen2.5-coder-1.5b"
    assert build_judge("embedding").name == "embedding" and build_judge("embedding").model is None
    assert build_judge("llamacpp:qwen2.5-coder-1.5b", "pairwise").kinds == ("pairwise",)
    with pytest.raises(UserError):
        build_judge("nosuchbackend:model")
    with pytest.raises(UserError, match="pair_judge"):
        build_judge("bm25")  # a reranker member: it needs the candidates' BM25 scores


def test_members_are_parsed_once_into_kinds_and_names():
    members = parse_members(["bm25", "embedding", "llamacpp:qwen2.5-coder-1.5b", "likelihood:llamacpp:smollm2-135m",
                             "mine=embedding:st:/models/e5", " openai:gpt-4o@http://127.0.0.1:8080/v1 "])
    assert [m.kind for m in members] == ["bm25", "embedding", "llm", "likelihood", "embedding", "llm"]
    assert [m.name for m in members] == ["bm25", "embedding", "qwen2.5-coder-1.5b", "smollm2-135m (likelihood)", "mine", "gpt-4o"]
    assert [m.target for m in members] == [None, "minilm", "llamacpp:qwen2.5-coder-1.5b", "llamacpp:smollm2-135m",
                                           "st:/models/e5", "openai:gpt-4o@http://127.0.0.1:8080/v1"]
    assert [m.uses_llm for m in members] == [False, False, True, True, False, True]
    assert members[-1].spec == "openai:gpt-4o@http://127.0.0.1:8080/v1"  # as written, trimmed
    for malformed in ("likelihood:", "bm25:extra"):
        with pytest.raises(ValueError):
            parse_member(malformed)


# -- columns, lineage, report, filtering -----------------------------------------------------------
def _pointwise_rows(n=10):
    return [{"text": f"t{i}", "_meta": {"id": f"id{i}"}} for i in range(n)]


def test_judge_rows_columns_lineage_and_failures():
    rows = _pointwise_rows(4) + [{"other": "no text", "_meta": {"id": "id9"}}]
    a = FixedJudge("a", {"t0": 1.0, "t1": 2.0, "t2": 3.0, "t3": "cannot"}, model="llamacpp:smollm2-135m")
    b = FixedJudge("b", {"t0": 3.0, "t1": 4.0, "t2": 5.0, "t3": 1.0})
    judged = judge_rows(rows, JudgeEnsemble([a, b]))
    assert [r["text"] for r in judged.rows] == ["t0", "t1", "t2"]
    assert [reason for _, reason in judged.failed] == ["a: cannot", "missing_column: text"]
    first = judged.rows[0]
    assert first["judge_score"] == pytest.approx(2.0)
    assert first["judge_by"] == {"a": {"score": 1.0}, "b": {"score": 3.0}}
    scores = first["_meta"]["scores"]
    assert scores["judge"] == {"score": 2.0, "mode": "pointwise", "weights": {"a": 0.5, "b": 0.5}}
    assert scores["judge.a"] == {"score": 1.0, "model": "llamacpp:smollm2-135m"}
    assert rows[0].get("judge_score") is None  # input rows are not modified


def test_pairwise_rows_and_bias_report():
    rows = [{"q": f"q{i}", "a": "A", "b": "B", "_meta": {"id": f"p{i}"}} for i in range(4)]
    judge = FixedJudge("j", {"q0": 0.9, "q1": 0.8, "q2": 0.3, "q3": 0.5})
    judged = judge_rows(rows, JudgeEnsemble([judge]), "pairwise", JudgeColumns(context="q"))
    assert [r["judge_winner"] for r in judged.rows] == ["a", "a", "b", "tie"]
    assert judged.rows[0]["judge_by"]["j"]["p_first_ab"] == 0.9
    report = judge_report(judged.rows)
    stats = report["judges"]["j"]
    assert report["mode"] == "pairwise" and stats["n"] == 4
    # order AB: first wins for 0.9, 0.8; order BA (P(first) = 1 - p): 0.7 -> 3 of 8 single-order wins
    assert stats["first_wins_rate"] == pytest.approx(3 / 8)
    assert stats["a_wins_rate"] == pytest.approx(0.5)


def test_pointwise_report_histogram_and_agreement():
    rows = _pointwise_rows(5)
    a = FixedJudge("a", {f"t{i}": float(i + 1) for i in range(5)})
    b = FixedJudge("b", {f"t{i}": float(5 - i) for i in range(5)})
    report = judge_report(judge_rows(rows, JudgeEnsemble([a, b])).rows)
    assert report["judges"]["a"]["histogram"] == {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1}
    assert report["agreement"][0]["spearman"] == pytest.approx(-1.0)
    assert report["combined"]["mean"] == pytest.approx(3.0)


def test_filter_drops_bottom_fraction_and_keeps_scores():
    rows = [{"judge_score": s, "_meta": {"id": f"r{i}"}} for i, s in enumerate([3.0, 1.0, 4.0, 2.0, 5.0, 2.0, 4.5, 3.5, 1.5, 4.8])]
    kept, dropped = select_by_score(rows, "judge_score")  # default: bottom 15%, floor(1.5) = 1 row
    assert dropped == [(rows[1], "judge_score_bottom_15pct")]  # the row as it was: scores and all
    assert len(kept) == 9 and kept[0] is rows[0]


def test_filter_bottom_fraction_exact_count_ties_and_threshold():
    values = [3.0, 1.0, 2.0, 2.0, 5.0, 2.0, 4.0, 3.5, 1.5, 4.8, 2.5, 3.3, 3.9, 4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7]
    rows = [{"judge_score": s, "_meta": {"id": f"r{i}"}} for i, s in enumerate(values)]
    kept, dropped = select_by_score(rows, "judge_score", drop_bottom=0.25)  # 5 of 20
    assert sorted(r["judge_score"] for r, _ in dropped) == [1.0, 1.5, 2.0, 2.0, 2.0]
    assert {reason for _, reason in dropped} == {"judge_score_bottom_25pct"}
    assert [r["_meta"]["id"] for r in kept] == [r["_meta"]["id"] for r in rows if r not in [d for d, _ in dropped]]
    kept, dropped = select_by_score(rows, "judge_score", threshold=3.0)
    assert all(r["judge_score"] < 3.0 for r, _ in dropped) and all(r["judge_score"] >= 3.0 for r in kept)
    assert dropped[0][1] == "judge_score_below_3"
    with pytest.raises(UserError, match="not both"):
        select_by_score(rows, "judge_score", drop_bottom=0.1, threshold=2)
    with pytest.raises(UserError, match="numeric"):
        select_by_score([{"x": 1}], "judge_score")


def test_filter_by_pairwise_confidence():
    rows = [{"judge_p_a": p} for p in (0.5, 0.9, 0.1, 0.55, 0.7)]
    kept, dropped = select_by_score(rows, "judge_p_a", threshold=0.3, by_confidence=True)
    assert [r["judge_p_a"] for r, _ in dropped] == [0.5, 0.55]
    assert dropped[0][1] == "judge_p_a_confidence_below_0.3"
