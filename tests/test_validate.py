"""Validation against real data on constructed cases with known answers, the report in a
real headless Chromium, and the CLI on the real instructions split in two halves."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from synthwright.errors import UserError
from synthwright.validate import (
    ValidationConfig,
    ValidationReport,
    check_closed_loop,
    check_curves,
    cohen_d,
    compare_distributions,
    compare_marginals,
    descends_from,
    diversity_by_round,
    judge_tier,
    knn_coverage,
    two_sample_auc,
)
from tests.conftest import run_cli

VOCAB = [f"w{i}" for i in range(2000)]


def texts(n: int, length: tuple[int, int], seed: int) -> list[str]:
    """Rows of distinct random words: type-token ratio is exactly 1, so only length differs
    between sets of different `length`, and novelty has the same mean at any length."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(VOCAB, size=int(rng.integers(*length)), replace=False)) for _ in range(n)]


def clusters(n: int, centres: np.ndarray, seed: int, spread: float = 0.25) -> np.ndarray:
    """Unit vectors around the given centres, equally many per centre (like topics)."""
    rng = np.random.default_rng(seed)
    picks = np.arange(n) % len(centres)
    vectors = centres[picks] + spread * rng.normal(size=(n, centres.shape[1])) / np.sqrt(centres.shape[1])
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


CENTRES = np.linalg.qr(np.random.default_rng(7).normal(size=(16, 4)))[0].T  # 4 orthogonal topic directions in 16-d
FAST = ValidationConfig(projection="pca", syntax=False)


def flags_of(real_texts, synth_texts, real_vectors, synth_vectors, config=FAST) -> set[str]:
    report = ValidationReport(config, distribution=compare_distributions(real_texts, synth_texts, real_vectors, synth_vectors, config=config))
    return {flag.name for flag in report.flags()}


# -- known answers -------------------------------------------------------------------------------
def test_same_distribution_raises_no_flags():
    assert flags_of(texts(400, (8, 20), 1), texts(400, (8, 20), 2), clusters(400, CENTRES, 1), clusters(400, CENTRES, 2)) == set()


def test_shifted_lengths_flag_length_only():
    assert flags_of(texts(400, (8, 20), 1), texts(400, (40, 60), 2), clusters(400, CENTRES, 1), clusters(400, CENTRES, 2)) == {"length_tokens"}


def test_missing_topic_cluster_flags_coverage_and_recall():
    real = clusters(400, CENTRES, 1)
    synthetic = clusters(400, CENTRES[:3], 2)  # the fourth topic is never produced
    assert flags_of(texts(400, (8, 20), 1), texts(400, (8, 20), 2), real, synthetic) == {"coverage", "recall"}


def test_two_sample_auc_half_for_identical_one_for_disjoint():
    same = two_sample_auc(clusters(300, CENTRES, 1), clusters(300, CENTRES, 2))
    disjoint = two_sample_auc(clusters(300, CENTRES[:2], 1), clusters(300, CENTRES[2:], 2))
    assert 0.4 < same.auc < 0.6
    assert disjoint.auc > 0.98
    assert len(same.fold_aucs) == 5 and len(same.p_synthetic) == 600


def test_knn_coverage_same_distribution_near_theory():
    # Naeem et al.: for one distribution density ~1 and coverage ~1 - 2^-k (0.97 at k=5).
    c = knn_coverage(clusters(500, CENTRES, 1), clusters(500, CENTRES, 2), k=5)
    assert c.coverage > 0.9 and 0.8 < c.density < 1.2 and c.precision > 0.85 and c.recall > 0.85


def test_cohen_d_and_ks_threshold_are_configurable():
    real, synth = np.array([1.0, 2, 3, 4]), np.array([3.0, 4, 5, 6])
    assert cohen_d(real, synth) == pytest.approx(2 / np.std(real, ddof=1))
    assert cohen_d(np.ones(5), np.ones(5)) == 0.0
    same_mean = compare_marginals(texts(300, (10, 11), 1), texts(300, (2, 19), 2), syntax=False, ks_alpha=0.01)
    by_name = {d.name: d for d in same_mean}
    # Same mean length, very different spread: d misses it, KS catches it.
    assert abs(by_name["length_tokens"].cohen_d) < 0.2 and by_name["length_tokens"].flagged


def test_numeric_columns_are_compared():
    real = [{"text": t, "score": float(i % 5)} for i, t in enumerate(texts(100, (5, 9), 1))]
    synth = [{"text": t, "score": 10.0 + i % 5} for i, t in enumerate(texts(100, (5, 9), 2))]
    dims = compare_marginals([r["text"] for r in real], [r["text"] for r in synth], real_rows=real, synthetic_rows=synth, syntax=False)
    assert [d.name for d in dims if d.flagged] == ["score"]


def test_syntax_features_with_spacy():
    pytest.importorskip("spacy")
    from synthwright.validate.marginals import syntax_features

    features = syntax_features(["Write a short poem about the sea.", "What is the capital of France?", "The cat that the dog chased ran away."])
    assert features["imperative"].tolist() == [1.0, 0.0, 0.0]
    assert features["parse_depth"][2] > features["parse_depth"][1]


# -- training loop -------------------------------------------------------------------------------
STEPS = np.arange(0, 1000, 50)


def test_curves_track_plateau_rise():
    train = 2.0 * np.exp(-STEPS / 300) + 0.3
    tracks = check_curves(list(zip(STEPS, train)), list(zip(STEPS[::2], train[::2] + 0.05)))
    plateau = check_curves(list(zip(STEPS, train)), list(zip(STEPS, np.maximum(2.0 * np.exp(-STEPS / 100) + 1.2, 1.2))))
    rising = check_curves(train.tolist(), (train + 0.002 * STEPS).tolist())
    assert (tracks.verdict, plateau.verdict, rising.verdict) == ("tracks", "plateau", "rising")
    assert not tracks.flagged and plateau.flagged and rising.flagged


# -- closed loop ---------------------------------------------------------------------------------
def lineage_rows(student_rows: int, real_rows: int) -> list[dict]:
    rows = [{"text": f"real {i}", "_meta": {"id": f"r{i}", "real": True}} for i in range(real_rows)]
    rows += [{"text": f"seed {i}", "_meta": {"id": f"s{i}", "model": "llamacpp:qwen2.5-coder-1.5b", "round": 0}} for i in range(10)]
    # Made by another model, but from rows the student wrote: still a closed loop.
    rows += [{"text": f"evolved {i}", "_meta": {"id": f"e{i}", "model": "openai:gpt-4o-mini", "parents": [f"st{i}"], "round": 1}} for i in range(student_rows)]
    return rows


ANCESTORS = [{"text": f"student {i}", "_meta": {"id": f"st{i}", "model": "my-student-v1"}} for i in range(20)]


def test_closed_loop_refuses_without_real_anchor():
    with pytest.raises(UserError, match="Closed loop"):
        check_closed_loop(lineage_rows(10, 0), "my-student-v1", 0.2, ancestors=ANCESTORS)
    report = check_closed_loop(lineage_rows(10, 0), "my-student-v1", 0.2, ancestors=ANCESTORS, override=True)
    assert report.overridden and report.tainted_rows == 10 and report.tainted_models == ["my-student-v1"]


def test_closed_loop_passes_with_real_anchor_or_unrelated_student():
    anchored = check_closed_loop(lineage_rows(10, 10), "my-student-v1", 0.2, ancestors=ANCESTORS)
    assert anchored.closed_loop and not anchored.refused
    assert not check_closed_loop(lineage_rows(10, 0), "other-model", 0.2, ancestors=ANCESTORS).closed_loop
    assert descends_from("student-v2", "llamacpp:student-v1", {"student-v2": "student-v1"})
    assert descends_from("llamacpp:qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b")


def test_diversity_by_round_reports_shrinkage():
    rows = [{"text": f"r0 {i}", "_meta": {"round": 0}} for i in range(200)] + [{"text": f"r1 {i}", "_meta": {"round": 1}} for i in range(200)]
    vectors = np.vstack([clusters(200, CENTRES, 1), clusters(200, CENTRES[:1], 2)])  # round 1 collapsed onto one topic
    result = diversity_by_round(rows, vectors)
    assert [r["round"] for r in result["rounds"]] == [0, 1]
    assert result["shrinkage"] > 0.5 and result["flagged"]


# -- the report ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """A report with every tier, and hostile text in the rows (must come out escaped)."""
    real_texts = texts(200, (8, 20), 1)
    synth_texts = texts(200, (8, 20), 2)
    synth_texts[0] = '<script>alert("x")</script> & </svg><img src=x onerror=alert(1)>'
    kept = [{"text": t, "judge_score": 3 + (i % 3)} for i, t in enumerate(synth_texts)]
    dropped = [{"text": t, "judge_score": 1 + (i % 2)} for i, t in enumerate(texts(40, (8, 20), 3))]
    report = ValidationReport(FAST, inputs={"synthetic": "synth <1>.jsonl", "real": "real.jsonl"})
    report.distribution = compare_distributions(real_texts, synth_texts, clusters(200, CENTRES, 1), clusters(200, CENTRES[:3], 2), config=FAST)
    report.judge = judge_tier(kept, dropped, "judge_score")
    train = 2.0 * np.exp(-STEPS / 300) + 0.3
    report.curves = check_curves(list(zip(STEPS, train)), list(zip(STEPS, 2.0 * np.exp(-STEPS / 100) + 1.2)))
    report.closed_loop = check_closed_loop(lineage_rows(10, 0), "my-student-v1", 0.2, ancestors=ANCESTORS, override=True)
    rows = lineage_rows(10, 0)
    report.rounds = diversity_by_round(rows, clusters(len(rows), CENTRES, 4))
    folder = tmp_path_factory.mktemp("report")
    return report, report.write(folder)


def test_report_files_and_json(full_report):
    _, paths = full_report
    for name in ("html", "json", "projection", "marginals", "judge_scores", "curves", "projection_html"):
        assert paths[name].is_file(), name
    data = json.loads(paths["json"].read_text())
    flags = {(f["section"], f["name"]) for f in data["flags"]}
    assert {("coverage", "coverage"), ("curves", "plateau"), ("closed_loop", "real_fraction")} <= flags
    assert data["distribution"]["coverage"]["k"] == 5 and data["judge"]["dropped"]["n"] == 40
    assert len(data["distribution"]["projection"]["points"]) == 400


def test_report_is_self_contained_and_escaped(full_report):
    _, paths = full_report
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") >= 4
    assert 'src="http' not in page and "<link" not in page and "<script src" not in page
    assert '<script>alert("x")' not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_report_opens_in_headless_chromium(full_report):
    _, paths = full_report
    for page in (paths["html"], paths["projection_html"]):
        done = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--dump-dom", page.resolve().as_uri()],
            check=False, capture_output=True, text=True, timeout=90,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Uncaught" not in done.stderr and ":CONSOLE" not in done.stderr, done.stderr[-2000:]
        if page == paths["html"]:
            for section in ("flags", "coverage", "projection", "marginals", "diversity", "judge", "curves", "lineage"):
                assert f'id="{section}"' in done.stdout, section
            assert done.stdout.count("<circle") == 400


# -- the CLI -------------------------------------------------------------------------------------
def test_cli_real_halves_raise_no_flags(shared_data, tmp_path):
    """The real instructions split in two interleaved halves (the file is ordered by source,
    so a first-half/second-half split would compare different sources)."""
    rows = [json.loads(line) for line in (shared_data / "instructions" / "real_instructions.dev.jsonl").read_text().splitlines() if line.strip()]
    for name, part in (("a.jsonl", rows[0::2]), ("b.jsonl", rows[1::2])):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    done = run_cli("validate", str(tmp_path / "a.jsonl"), "--real", str(tmp_path / "b.jsonl"), "--out", str(tmp_path / "out"), "--strict")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no flags" in done.stdout
    data = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert data["flags"] == [] and data["distribution"]["projection"]["method"] == "umap"
    assert {d["name"] for d in data["distribution"]["marginals"]} >= {"parse_depth", "mean_dependency_length", "imperative", "question"}


def test_cli_closed_loop_refuses_then_overrides(tmp_path):
    rows = lineage_rows(30, 0) + ANCESTORS
    (tmp_path / "synth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "real.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts(40, (5, 12), 9)))
    common = ["validate", str(tmp_path / "synth.jsonl"), "--real", str(tmp_path / "real.jsonl"), "--out", str(tmp_path / "out"),
              "--student", "my-student-v1", "--no-syntax", "--projection", "none"]
    refused = run_cli(*common)
    assert refused.returncode == 2 and "Closed loop" in refused.stderr and "--allow-closed-loop" in refused.stderr
    allowed = run_cli(*common, "--allow-closed-loop", "--strict")
    assert allowed.returncode == 1, allowed.stdout + allowed.stderr
    assert "closed_loop/real_fraction" in allowed.stdout
