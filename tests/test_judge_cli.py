"""`synthwright judge` and `synthwright calibrate` as a user runs them (subprocess, real models).

The issue's own check: `judge` with two judges on 20 rows writes per-judge and combined
scores plus bias statistics; `calibrate` prints agreement with intervals and a recommended
threshold. Judges: the tiny SmolLM2 (fast, and biased: good for showing the bias numbers) and
the offline MiniLM embedding member.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_judge_quality import labelled_pairs, labelled_points

TINY = "llamacpp:smollm2-135m"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_judge_pairs_with_two_judges_then_calibrate(tmp_path):
    pairs = labelled_pairs()
    data = write_jsonl(tmp_path / "pairs.jsonl", [{k: v for k, v in row.items() if k != "human"} for row in pairs])
    judged = run_cli("judge", str(data), "--judge", TINY, "--judge", "embedding", "--pairwise", "--context", "query",
                     "--generator", "llamacpp:smollm2-135m")
    assert judged.returncode == 0, judged.stderr
    rows = read_jsonl(tmp_path / "pairs.judged.jsonl")
    assert len(rows) == 20
    for row in rows:
        assert set(row["judge_by"]) == {"smollm2-135m", "embedding"}  # per judge
        assert 0.0 <= row["judge_p_a"] <= 1.0 and row["judge_winner"] in ("a", "b", "tie")  # combined
        by = row["judge_by"]["smollm2-135m"]
        assert {"p_first_ab", "p_first_ba", "consistent"} <= set(by)  # each order kept
    report = json.loads((tmp_path / "pairs.judged.report.json").read_text())
    tiny = report["judges"]["smollm2-135m"]
    assert tiny["first_wins_rate"] > 0.7 and report["judges"]["embedding"]["first_wins_rate"] == 0.5
    assert report["agreement"][0]["n"] == 20 and report["circularity"][0]["same_model"] is True
    assert "first wins" in judged.stdout and "both orders agree" in judged.stdout
    assert "WARNING: circular judging" in judged.stderr and "IS the generator" in judged.stderr

    human = write_jsonl(tmp_path / "human.jsonl", [{"id": row["id"], "preference": row["human"]} for row in pairs])
    calibrated = run_cli("calibrate", "--judged", str(tmp_path / "pairs.judged.jsonl"), "--human", str(human),
                         "--target", "0.8", "--output", str(tmp_path / "calibration.json"))
    assert calibrated.returncode == 0, calibrated.stderr
    assert "accuracy, A-first order only" in calibrated.stdout and "first shown wins" in calibrated.stdout
    result = json.loads((tmp_path / "calibration.json").read_text())
    assert result["matched"] == 20
    # MiniLM gets these clear pairs right; SmolLM2 does no better than its position bias allows
    assert result["judges"]["embedding"]["accuracy"]["value"] >= 0.9
    assert result["judges"]["smollm2-135m"]["first_wins_rate"]["value"] > 0.7


def test_judge_rubric_calibrate_and_apply_the_threshold(tmp_path):
    points = labelled_points()
    data = write_jsonl(tmp_path / "queries.jsonl", [{k: v for k, v in row.items() if k != "human"} for row in points])
    out = tmp_path / "judged.jsonl"
    args = ["judge", str(data), "--judge", TINY, "--judge", "mini=embedding", "--text", "query", "--context", "document",
            "--output", str(out)]
    judged = run_cli(*args)
    assert judged.returncode == 0, judged.stderr
    rows = read_jsonl(out)
    assert len(rows) == 20
    for row in rows:
        assert set(row["judge_by"]) == {"smollm2-135m", "mini"}
        assert set(row["judge_criteria"]) == {"relevance", "naturalness", "difficulty"}
        assert row["judge_score"] == pytest.approx((row["judge_by"]["smollm2-135m"]["score"] + row["judge_by"]["mini"]["score"]) / 2)
    assert "scores 1/2/3/4/5" in judged.stdout and "agreement between judges" in judged.stdout
    assert "circular" not in judged.stderr  # no generator known, none claimed

    human = write_jsonl(tmp_path / "human.jsonl", [{"id": row["id"], "score": row["human"]} for row in points])
    weights = tmp_path / "weights.json"
    calibrated = run_cli("calibrate", "--judged", str(out), "--human", str(human), "--good", "3", "--precision", "0.9",
                         "--weights-out", str(weights), "--bootstrap", "500")
    assert calibrated.returncode == 0, calibrated.stderr
    text = calibrated.stdout
    assert "20 human labels matched" in text
    for statistic in ("Spearman", "Kendall tau-b", "quadratic-weighted kappa", "MAE", "95% bootstrap intervals"):
        assert statistic in text
    # SmolLM2 ranks these queries against the humans: equal weights cannot reach precision 0.9
    assert "not reachable" in text and "the best is" in text
    suggested = json.loads(weights.read_text())
    assert suggested["smollm2-135m"] == 0.0 and suggested["mini"] > 0.0

    # weights from calibration: the judge agreeing with humans counts; every LLM judgment is cached
    reweighted = run_cli(*args, "--weights", str(weights))
    assert reweighted.returncode == 0, reweighted.stderr
    assert all(row["judge_score"] == pytest.approx(row["judge_by"]["mini"]["score"]) for row in read_jsonl(out))
    again = run_cli("calibrate", "--judged", str(out), "--human", str(human), "--good", "3", "--precision", "0.75")
    assert again.returncode == 0, again.stderr
    assert "recommended threshold: judge_score >=" in again.stdout
    assert "expected precision" in again.stdout and "recall" in again.stdout and "Wilson intervals" in again.stdout
    threshold = float(again.stdout.split("recommended threshold: judge_score >=")[1].split()[0])

    # apply it: dropped rows go aside with their scores and the reason
    applied = run_cli(*args, "--weights", str(weights), "--threshold", str(threshold))
    assert applied.returncode == 0, applied.stderr
    kept, dropped = read_jsonl(out), read_jsonl(tmp_path / "judged.dropped.jsonl")
    assert len(kept) + len(dropped) == 20 and dropped
    assert all(row["judge_score"] < threshold for row in dropped) and all(row["judge_score"] >= threshold for row in kept)
    assert all(row["_drop_reason"] == f"judge_score_below_{threshold:g}" and "judge_by" in row for row in dropped)
    report = json.loads((tmp_path / "judged.report.json").read_text())
    assert report["weights"] == {"smollm2-135m": 0.0, "mini": 1.0}
    # calibrating again sees the set-aside rows too: same rows, same threshold
    last = run_cli("calibrate", "--judged", str(out), "--human", str(human), "--good", "3", "--precision", "0.75")
    assert "with the judged.dropped.jsonl rows" in last.stdout and "20 human labels matched" in last.stdout
    assert f"recommended threshold: judge_score >= {threshold:g}" in last.stdout


def test_cli_errors_are_one_clear_line(tmp_path):
    data = write_jsonl(tmp_path / "rows.jsonl", [{"text": "x"}])
    missing = run_cli("judge", str(data), "--judge", TINY, "--pairwise")
    assert missing.returncode == 2 and "--pairwise needs --context" in missing.stderr
    not_judged = run_cli("calibrate", "--judged", str(data), "--human", str(data))
    assert not_judged.returncode == 2 and "has no judge columns" in not_judged.stderr
    bad_judge = run_cli("judge", str(data), "--judge", "nosuch:model")
    assert bad_judge.returncode == 2 and "Unknown model backend" in bad_judge.stderr
