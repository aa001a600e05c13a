"""Calibration statistics against hand-computed values, and threshold choice where the answer is known.

No model is needed: judged rows are written by hand in the shape `judge_rows` produces.
"""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from synthwright.errors import UserError
from synthwright.judges.calibration import calibrate, choose_threshold, load_human_labels, pointwise_agreement, wilson
from synthwright.judges.stats import bootstrap, cohen_kappa, kendall, spearman, to_scale


# -- statistics against hand-computed values ----------------------------------------------------
def test_spearman_with_a_tie_by_hand():
    # ranks of y = [5, 6, 7, 8, 7] are [1, 2, 3.5, 5, 3.5]; rho = 8 / sqrt(10 * 9.5)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))


def test_kendall_tau_b_with_a_tie_by_hand():
    # 8 concordant pairs, 1 discordant, 1 tied in y: tau-b = (8 - 1) / sqrt(10 * 9)
    assert kendall([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(7 / math.sqrt(90))


def test_correlations_are_none_when_undefined():
    assert spearman([1, 2, 3], [4, 4, 4]) is None
    assert kendall([1, 2], [1, 2]) is None


def test_cohen_kappa_by_hand():
    a, b = [1, 1, 2, 2, 3, 3], [1, 2, 2, 2, 3, 1]
    # observed agreement 4/6, chance agreement (2*2 + 2*3 + 2*1) / 36 = 1/3 -> (2/3 - 1/3) / (2/3)
    assert cohen_kappa(a, b) == pytest.approx(0.5)
    # quadratic: weighted observed disagreement 1.25, expected 1.75 -> 1 - 1.25 / 1.75
    assert cohen_kappa(a, b, labels=[1, 2, 3], weights="quadratic") == pytest.approx(2 / 7)


def test_cohen_kappa_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    a = rng.integers(1, 6, 200)
    b = np.clip(a + rng.integers(-1, 2, 200), 1, 5)
    for weights in (None, "linear", "quadratic"):
        ours = cohen_kappa(a.tolist(), b.tolist(), labels=range(1, 6), weights=weights)
        assert ours == pytest.approx(metrics.cohen_kappa_score(a, b, labels=list(range(1, 6)), weights=weights))


def test_kappa_is_none_when_both_raters_give_one_label():
    assert cohen_kappa([3, 3, 3], [3, 3, 3]) is None


def test_to_scale_rounds_half_up_and_clips():
    assert to_scale([0.2, 1.49, 1.5, 4.51, 7.0]) == [1, 1, 2, 5, 5]


def test_wilson_interval_textbook_value():
    # 9 of 10: the Wilson 95% interval is (0.596, 0.982)
    e = wilson(9, 10)
    assert e.value == pytest.approx(0.9)
    assert (e.low, e.high) == pytest.approx((0.5958, 0.9821), abs=1e-4)
    # stays honest at the boundary, where a percentile bootstrap would say [1, 1]
    full = wilson(10, 10)
    assert full.high == 1.0 and full.low == pytest.approx(0.7225, abs=1e-4)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    x = np.arange(50.0)
    stat = lambda i: float(x[i].mean())  # noqa: E731
    first, second = bootstrap(stat, 50, seed=1), bootstrap(stat, 50, seed=1)
    assert first == second
    assert first.value == pytest.approx(24.5)
    assert first.low < first.value < first.high
    # the standard error of a mean of 0..49 is about 14.4 / sqrt(50) = 2.04: the 95% interval is ~ +-4
    assert first.high - first.low == pytest.approx(2 * 1.96 * np.std(x) / math.sqrt(50), rel=0.2)


def test_pointwise_agreement_values():
    judge = [1.5, 2.0, 4.0, 4.6, 3.2]
    human = [1, 3, 4, 5, 3]
    result = pointwise_agreement(judge, human, resamples=200)
    assert result["mae"].value == pytest.approx((0.5 + 1 + 0 + 0.4 + 0.2) / 5)
    assert result["spearman"].value == pytest.approx(spearman(judge, human))
    assert result["kendall"].value == pytest.approx(kendall(judge, human))
    # judge rounded onto the scale: [2, 2, 4, 5, 3] vs [1, 3, 4, 5, 3]
    assert result["qwk"].value == pytest.approx(cohen_kappa([2, 2, 4, 5, 3], [1, 3, 4, 5, 3], labels=range(1, 6), weights="quadratic"))
    for estimate in result.values():
        assert estimate.low <= estimate.value <= estimate.high


# -- threshold choice ---------------------------------------------------------------------------
def test_threshold_exact_when_the_judge_is_perfect():
    scores = [1.0, 1.5, 2.2, 2.9, 3.4, 3.6, 4.1, 4.4, 4.8, 5.0]
    good = [s >= 3.5 for s in scores]
    choice = choose_threshold(scores, good, target=1.0, min_kept=1)
    assert choice.threshold == 3.6  # the lowest score that keeps only good rows: all of them
    assert choice.precision.value == 1.0 and choice.recall.value == 1.0
    assert choice.kept.value == pytest.approx(0.5)


def test_threshold_maximises_recall_subject_to_precision():
    scores = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    good = [0, 0, 1, 0, 1, 1, 1, 1, 1, 1]
    choice = choose_threshold(scores, good, target=0.85, min_kept=1)
    # >= 3 keeps 8 rows, 7 good (0.875): the lowest threshold that reaches 0.85
    assert choice.threshold == 3
    assert choice.precision.value == pytest.approx(7 / 8)
    assert choice.recall.value == pytest.approx(1.0)
    # demanding the Wilson lower bound reach 0.85 is out of reach with 10 rows
    strict = choose_threshold(scores, good, target=0.85, conservative=True, min_kept=1)
    assert not strict.met and "lower bound" in strict.note


def test_threshold_unreachable_target_says_the_best_there_is():
    choice = choose_threshold([1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 1, 0], target=0.9, min_kept=2)
    assert choice.threshold is None and not choice.met
    assert "best is" in choice.note


def _true_precision_recall(t: float, sigma: float, cut: float = 3.0) -> tuple[float, float]:
    """For scores ~ U(1, 5) and good = score + N(0, sigma) >= cut, integrate P(good | s) exactly."""
    grid = np.linspace(1.0, 5.0, 40001)
    p_good = np.array([NormalDist().cdf((s - cut) / sigma) for s in grid[::10]])
    fine = np.interp(grid, grid[::10], p_good)
    kept = grid >= t
    return float(fine[kept].mean()), float(fine[kept].sum() / fine.sum())


def test_threshold_meets_its_target_where_the_answer_is_known():
    sigma, target = 0.5, 0.9
    # the true threshold: the lowest t whose true precision reaches the target
    candidates = np.linspace(1.0, 4.5, 701)
    true_t = next(t for t in candidates if _true_precision_recall(t, sigma)[0] >= target)
    rng = np.random.default_rng(7)
    scores = rng.uniform(1, 5, 4000)
    good = scores + rng.normal(0, sigma, scores.size) >= 3.0
    choice = choose_threshold(scores, good, target)
    assert choice.met
    assert choice.threshold == pytest.approx(true_t, abs=0.1)
    true_precision, true_recall = _true_precision_recall(choice.threshold, sigma)
    assert true_precision >= target - 0.01  # meets the target on the population, not just the sample
    assert choice.precision.low <= true_precision <= choice.precision.high
    assert choice.recall.low <= true_recall <= choice.recall.high
    # the conservative choice keeps fewer rows and still meets the target
    strict = choose_threshold(scores, good, target, conservative=True)
    assert strict.threshold > choice.threshold
    assert _true_precision_recall(strict.threshold, sigma)[0] >= target


# -- whole reports from judged rows --------------------------------------------------------------
def _pointwise_row(i: int, combined: float, a: float, b: float) -> dict:
    return {
        "id": f"r{i}", "text": f"row {i}", "judge_score": combined,
        "judge_by": {"llm": {"score": a}, "embedding": {"score": b}},
        "_meta": {"scores": {"judge.llm": {"score": a, "model": "llamacpp:qwen2.5-coder-1.5b"},
                             "judge.embedding": {"score": b, "model": None}}, "model": "llamacpp:qwen2.5-coder-0.5b"},
    }


def test_calibrate_pointwise_report_and_threshold():
    human = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5, 4]
    llm = [1.2, 2.5, 1.9, 2.2, 3.1, 3.3, 3.9, 4.2, 4.8, 4.4, 4.9, 3.6]
    emb = [3.0, 1.0, 2.0, 4.0, 2.5, 3.5, 3.0, 2.0, 4.0, 1.5, 3.0, 2.0]
    rows = [_pointwise_row(i, (a + b) / 2, a, b) for i, (a, b) in enumerate(zip(llm, emb))]
    rows.append(_pointwise_row(99, 1.0, 1.0, 1.0))  # judged but not labelled
    labels = {f"r{i}": float(h) for i, h in enumerate(human)} | {"nope": 3.0}
    report = calibrate(rows, labels, good_at_least=3, target=0.9, resamples=300, min_kept=3)
    assert report["mode"] == "pointwise" and report["matched"] == 12 and report["unmatched_labels"] == 1
    assert report["judges"]["llm"]["spearman"]["value"] == pytest.approx(spearman(llm, human))
    assert report["judges"]["llm"]["mae"]["value"] == pytest.approx(np.mean(np.abs(np.array(llm) - human)))
    assert report["agreement"]["combined"]["spearman"]["value"] == pytest.approx(spearman([(a + b) / 2 for a, b in zip(llm, emb)], human))
    # the LLM agrees with humans, the embedding member does not: weights say so
    assert report["suggested_weights"]["llm"] > report["suggested_weights"].get("embedding", 0.0)
    choice = report["threshold"]
    combined = np.array([(a + b) / 2 for a, b in zip(llm, emb)])
    good = np.array(human) >= 3
    kept = combined >= choice["threshold"]
    assert choice["met"] and good[kept].mean() >= 0.9
    assert choice["precision"]["value"] == pytest.approx(good[kept].mean())
    assert choice["recall"]["value"] == pytest.approx((good & kept).sum() / good.sum())
    assert choice["data_drop_fraction"] == pytest.approx(np.mean(np.append(combined, 1.0) < choice["threshold"]))
    # the judge is Qwen and the data came from Qwen: said in the report
    assert [c["family"] for c in report["circularity"]] == ["qwen"]
    json.dumps(report)  # JSON-ready


def test_calibrate_pairwise_accuracy_and_position_bias():
    rows, labels = [], {}
    for i in range(12):
        human_a = i % 2 == 0
        # "good" is right in both orders; "first" always prefers whatever is shown first
        good_ab, good_ba = (0.8, 0.2) if human_a else (0.2, 0.8)
        rows.append({
            "_meta": {"id": f"p{i}"}, "judge_p_a": None,
            "judge_by": {
                "good": {"p_a": (good_ab + 1 - good_ba) / 2, "p_first_ab": good_ab, "p_first_ba": good_ba, "consistent": True},
                "first": {"p_a": 0.5, "p_first_ab": 0.9, "p_first_ba": 0.9, "consistent": False},
            },
        })
        rows[-1]["judge_p_a"] = (rows[-1]["judge_by"]["good"]["p_a"] + 0.5) / 2
        labels[f"p{i}"] = human_a
    labels["tie-one"] = None
    report = calibrate(rows, labels, target=0.9, resamples=200, min_kept=3)
    assert report["mode"] == "pairwise" and report["matched"] == 12 and report["ties_left_out"] == 1
    assert report["agreement"]["combined"]["accuracy"]["value"] == 1.0
    good, first = report["judges"]["good"], report["judges"]["first"]
    assert good["accuracy"]["value"] == 1.0 and good["first_wins_rate"]["value"] == 0.5 and good["consistency"]["value"] == 1.0
    assert first["accuracy"]["value"] == 0.5  # every verdict a tie: half credit
    assert first["accuracy_a_first"]["value"] == 0.5  # picks A whenever A is first: right half the time
    assert first["first_wins_rate"]["value"] == 1.0 and first["consistency"]["value"] == 0.0
    assert report["suggested_weights"] == {"good": 1.0, "first": 0.0}
    assert report["threshold"]["met"]


def test_calibrate_needs_matching_ids():
    rows = [_pointwise_row(i, 3.0, 3.0, 3.0) for i in range(5)]
    with pytest.raises(UserError, match="match judged rows"):
        calibrate(rows, {"x": 1.0, "y": 2.0, "z": 3.0})


def test_rows_without_ids_match_by_column_then_position():
    rows = [{"judge_score": float(i), "judge_by": {"j": {"score": float(i)}}} for i in range(1, 6)]
    report = calibrate(rows, {str(i): float(i + 1) for i in range(5)}, resamples=100, min_kept=1)
    assert report["matched"] == 5 and report["agreement"]["combined"]["spearman"]["value"] == pytest.approx(1.0)


def test_load_human_labels(tmp_path):
    path = tmp_path / "human.jsonl"
    path.write_text('{"id": "a", "score": 4}\n\n{"id": 7, "label": 2}\n')
    assert load_human_labels(path, "pointwise") == {"a": 4.0, "7": 2.0}
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"id": "1", "preference": "A"}\n{"id": "2", "preference": "b"}\n{"id": "3", "preference": "tie"}\n{"id": "4", "preference": 1}\n')
    assert load_human_labels(pairs, "pairwise") == {"1": True, "2": False, "3": None, "4": True}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "preference": "maybe"}\n')
    with pytest.raises(UserError, match="bad.jsonl:1"):
        load_human_labels(bad, "pairwise")
    with pytest.raises(UserError, match="needs an id field 'row'"):
        load_human_labels(path, "pointwise", id_key="row")
