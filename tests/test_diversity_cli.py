"""Diversity measures, the epsilon analysis, and the `diversity` / `dedup` commands on real
data (../shared/data), with the real MiniLM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthwright.diversity import (
    analyse_epsilon,
    clusters_covering,
    distinct_ngram_ratio,
    diversity_measures,
    mean_pairwise_distance,
    nearest_neighbours,
)
from synthwright.embed import load_embedder
from tests.conftest import run_cli
from tests.embed_helpers import session_embedding_cache

REAL = "instructions/real_instructions.dev.jsonl"


@pytest.fixture(scope="module")
def cache_file(tmp_path_factory):
    return session_embedding_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def real_rows(shared_data):
    return [json.loads(line) for line in (shared_data / REAL).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def real_vectors(real_rows, cache_file):
    # Embeds in-process once; the CLI subprocesses below then find every text in the cache.
    return load_embedder("minilm", cache=cache_file).embed([r["instruction"] for r in real_rows])


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_measures_separate_a_collapsed_set_from_a_diverse_one():
    rng = np.random.default_rng(0)
    diverse = unit(rng.standard_normal((600, 32)))
    collapsed = unit(np.repeat(rng.standard_normal((3, 32)), 200, axis=0) + 0.15 * rng.standard_normal((600, 32)))
    d = diversity_measures(diverse, ["a b c d", "e f g h"] * 300)
    c = diversity_measures(collapsed, ["a b a b", "a b a b"] * 300)
    assert d.mean_pairwise_distance > 0.9
    assert c.mean_pairwise_distance < 0.7
    assert d.nn_distance_quantiles["p50"] > c.nn_distance_quantiles["p50"]
    assert c.clusters_for_90pct == 3 < d.clusters_for_90pct
    assert d.distinct_ngrams["distinct-1"] > c.distinct_ngrams["distinct-1"]


def test_measure_helpers_are_exact_on_small_cases():
    x = unit(np.array([[1, 0], [0, 1], [1, 0], [-1, 0]], dtype=np.float32))
    sims = x @ x.T
    assert mean_pairwise_distance(x) == pytest.approx(np.mean(1 - sims[~np.eye(4, dtype=bool)]))
    distance, nn = nearest_neighbours(x)
    assert distance[0] == distance[2] == 0 and nn[0] == 2 and nn[2] == 0  # exact copies find each other
    assert clusters_covering(np.array([50, 30, 15, 5])) == 3
    assert distinct_ngram_ratio(["the cat the cat", "the dog"], 1) == pytest.approx(3 / 6)
    assert distinct_ngram_ratio(["the cat the cat"], 2) == pytest.approx(2 / 3)


def test_epsilon_analysis_counts_what_dedup_would_keep(real_rows, real_vectors):
    texts = [r["instruction"] for r in real_rows]
    report = analyse_epsilon(real_vectors, texts, [r["id"] for r in real_rows], thresholds=(0.0001, 0.1, 0.3), pairs_per_threshold=2)
    kept = [row.kept for row in report.thresholds]
    assert kept[0] < len(texts)  # the file holds exact repeats ("Answer the following question.")
    assert kept[0] >= kept[1] >= kept[2]
    first_band = report.examples["0.00"]
    assert first_band and first_band[0].text == first_band[0].neighbour_text
    assert all(0.1 < p.distance <= 0.3 for p in report.examples["0.30"])


def test_diversity_command_writes_plot_and_threshold_table(real_vectors, cache_file, shared_data, tmp_path):
    result = run_cli("diversity", str(shared_data / REAL), "--out", str(tmp_path / "report"), "--pairs", "2", env={"SYNTHWRIGHT_EMBED_CACHE": str(cache_file)})
    assert result.returncode == 0, result.stderr
    assert "embedded 633 texts" in result.stderr and "0 encoded" in result.stderr
    for expected in ("clusters covering 90% of rows", "Semantic dedup at each epsilon", "distinct-2", "pairs at distance"):
        assert expected in result.stdout
    png = (tmp_path / "report" / "nn_distances.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    summary = json.loads((tmp_path / "report" / "diversity.json").read_text())
    assert summary["text_key"] == "instruction" and summary["rows"] == 633
    assert [t["threshold"] for t in summary["thresholds"]] == [0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4]
    assert all(t["kept"] + t["dropped"] == 633 for t in summary["thresholds"])


def test_dedup_command_drops_exactly_the_planted_rows(real_rows, real_vectors, cache_file, tmp_path):
    # Originals: real instructions at least 0.3 apart; planted: exact and case/space copies.
    from synthwright.filters import NoveltyGate

    keep = NoveltyGate(None, 0.3).admit_vectors(real_vectors).keep
    originals = [{"id": r["id"], "text": r["instruction"]} for r, k in zip(real_rows, keep) if k][:80]
    planted = [{"id": f"dup-{i}", "text": o["text"].upper() if i % 2 else o["text"] + " ", "twin": o["id"]} for i, o in enumerate(originals[::8])]
    rows = originals + planted
    load_embedder("minilm", cache=cache_file).embed([p["text"] for p in planted])  # so the subprocess never loads the model
    source = tmp_path / "planted.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for method in ("semantic", "exact"):
        kept_path, dropped_path = tmp_path / f"kept-{method}.jsonl", tmp_path / f"dropped-{method}.jsonl"
        result = run_cli("dedup", str(source), str(kept_path), "--method", method, "--id-key", "id", "--dropped", str(dropped_path),
                         env={"SYNTHWRIGHT_EMBED_CACHE": str(cache_file)})
        assert result.returncode == 0, result.stderr
        dropped = [json.loads(line) for line in dropped_path.read_text().splitlines()]
        assert {d["id"]: d["_dropped"]["duplicate_of"] for d in dropped} == {p["id"]: p["twin"] for p in planted}
        assert [json.loads(line)["id"] for line in kept_path.read_text().splitlines()] == [o["id"] for o in originals]
        assert f"{len(rows)} rows in, {len(originals)} kept" in result.stdout


def test_diversity_command_explains_a_bad_text_key(shared_data, tmp_path):
    result = run_cli("diversity", str(shared_data / REAL), "--text-key", "nope", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "text column 'nope'" in result.stderr and "--text-key" in result.stderr
