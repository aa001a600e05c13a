"""The novelty gate and semantic dedup, with the real MiniLM: hand-written paraphrases and
exact copies are caught, distinct texts are kept, every dropped row names its twin."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from synthwright.embed import load_embedder
from synthwright.errors import UserError
from synthwright.filters import FilterStats, NoveltyGate, semantic_dedup
from tests.embed_helpers import session_embedding_cache

EPSILON = 0.15  # paraphrases below sit at 0.002-0.09 from their first text; distinct texts >= 0.4 apart
GROUPS = [
    ["How do I reverse a list in Python?", "What is the way to reverse a Python list?", "How can I reverse a list in Python?"],
    ["Give me three tips for better sleep.", "List three tips to sleep better.", "Give me 3 tips for sleeping better."],
    ["Translate 'good morning' into French.", "How do you say 'good morning' in French?"],
    ["Summarize the plot of Romeo and Juliet.", "Give a short summary of the plot of Romeo and Juliet.", "Summarise the plot of Romeo and Juliet."],
    ["Explain photosynthesis to a child.", "Explain to a kid how photosynthesis works."],
    ["Write a haiku about autumn leaves.", "Compose a haiku about leaves in autumn."],
    ["What is the capital of Australia?", "Which city is the capital of Australia?"],
]
DISTINCT = [
    "Write a poem about the mountains in winter.", "How do I sort a list in Python?", "Give me three tips for learning a language.",
    "Explain black holes to a child.", "Draft a polite email declining a job offer.", "What are the health benefits of green tea?",
    "Convert 5 kilometres to miles.", "Suggest a name for a bakery that sells vegan pastries.",
]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return load_embedder("minilm", cache=session_embedding_cache(tmp_path_factory))


def test_gate_catches_paraphrases_and_copies_and_keeps_distinct_texts(embedder):
    gate = NoveltyGate(embedder, EPSILON)
    first = gate.admit([g[0] for g in GROUPS] + DISTINCT)
    assert first.keep.all()
    later = [text for group in GROUPS for text in group[1:]] + [GROUPS[0][0], DISTINCT[3]]  # paraphrases, then exact copies
    twins = [g[0] for g in GROUPS for _ in g[1:]] + [GROUPS[0][0], DISTINCT[3]]
    second = gate.admit(later)
    assert not second.keep.any()
    offered = [g[0] for g in GROUPS] + DISTINCT
    assert [offered[n] for n in second.neighbour] == twins  # default ids are offer positions
    assert np.all(second.distance <= EPSILON) and second.distance[-1] < 1e-4
    assert gate.stats.offered == gate.stats.admitted + gate.stats.rejected_by_pool + gate.stats.rejected_in_batch == len(offered) + len(later)


def test_gate_rejects_duplicates_inside_one_batch(embedder):
    gate = NoveltyGate(embedder, EPSILON)
    texts = [GROUPS[1][0], DISTINCT[0], GROUPS[1][1], GROUPS[1][0], DISTINCT[1], GROUPS[1][2]]
    result = gate.admit(texts, ids=["a", "b", "c", "d", "e", "f"])
    assert result.keep.tolist() == [True, True, False, False, True, False]
    assert [result.neighbour[i] for i in (2, 3, 5)] == ["a", "a", "a"]
    assert result.neighbour[0] is None and np.isinf(result.distance[0])
    assert gate.admitted_ids() == ["a", "b", "e"]
    assert gate.stats.rejected_in_batch == 3 and gate.stats.rejected_by_pool == 0


def test_gate_fill_asks_for_replacements(embedder):
    supply = iter([GROUPS[2][0], GROUPS[2][1], DISTINCT[4], GROUPS[2][0], DISTINCT[5], GROUPS[2][1], DISTINCT[6], DISTINCT[7]])
    calls = []

    def produce(n):
        calls.append(n)
        return [next(supply) for _ in range(n)]

    gate = NoveltyGate(embedder, EPSILON)
    result = gate.fill(produce, want=4)
    assert result.texts == [GROUPS[2][0], DISTINCT[4], DISTINCT[5], DISTINCT[6]]
    assert calls == [4, 2, 1] and result.produced == 7 and result.rounds == 3


def test_gate_seeded_with_existing_rows(embedder):
    gate = NoveltyGate(embedder, EPSILON)
    gate.add([GROUPS[4][0]], ids=["seed-7"])
    result = gate.admit([GROUPS[4][1], DISTINCT[2]])
    assert result.keep.tolist() == [False, True] and result.neighbour[0] == "seed-7"


def test_gate_validates_its_settings():
    with pytest.raises(UserError, match="cosine"):
        NoveltyGate(None, 0.1, metric="l2")
    with pytest.raises(UserError, match="epsilon"):
        NoveltyGate(None, -0.1)
    with pytest.raises(UserError, match="only take vectors"):
        NoveltyGate(None, 0.1).admit(["text"])


def planted_vectors(n: int, dim: int = 64, seed: int = 0):
    """Clustered unit vectors; every 10th row is a near copy (distance ~0.005-0.05) of an earlier one."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim))
    x = centres[rng.integers(0, 50, n)] + 0.9 * rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for i in range(10, n, 10):
        x[i] = x[rng.integers(0, i)] + rng.uniform(0.01, 0.05) * rng.standard_normal(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ann_gate_agrees_with_exact_gate():
    x = planted_vectors(4000)
    exact = NoveltyGate(None, 0.1, ann_threshold=None)
    ann = NoveltyGate(None, 0.1, ann_threshold=300)
    results = [(exact.admit_vectors(x[s : s + 256]), ann.admit_vectors(x[s : s + 256])) for s in range(0, 4000, 256)]
    exact_keep = np.concatenate([e.keep for e, _ in results])
    ann_keep = np.concatenate([a.keep for _, a in results])
    assert not ann.index.exact
    dropped = ~exact_keep
    assert dropped.sum() >= 390
    assert (~ann_keep & dropped).sum() / dropped.sum() >= 0.99  # recall of exact's drops
    assert np.mean(ann_keep == exact_keep) >= 0.995


def test_semantic_dedup_drops_planted_duplicates_of_real_instructions(embedder, shared_data):
    lines = (shared_data / "instructions" / "real_instructions.dev.jsonl").read_text(encoding="utf-8").splitlines()[:150]
    real = [json.loads(line) for line in lines]
    # Originals: real instructions that are not near each other, plus the hand-written firsts.
    spread = NoveltyGate(embedder, 0.3).admit([r["instruction"] for r in real])
    originals = [{"id": r["id"], "text": r["instruction"]} for r, keep in zip(real, spread.keep) if keep]
    originals += [{"id": f"hand-{i}", "text": g[0]} for i, g in enumerate(GROUPS)]
    rng = random.Random(7)
    planted = []
    for n, source in enumerate(rng.sample(originals[:-len(GROUPS)], 20)):
        text = [source["text"], "  " + source["text"].lower() + "\n", source["text"].replace(" ", "  ")][n % 3]
        planted.append({"id": f"copy-{n}", "text": text, "twin": source["id"]})
    planted += [{"id": f"para-{i}-{j}", "text": t, "twin": f"hand-{i}"} for i, g in enumerate(GROUPS) for j, t in enumerate(g[1:])]
    rows = list(originals)
    for row in planted:  # each duplicate lands somewhere after its twin
        after = next(i for i, r in enumerate(rows) if r["id"] == row["twin"])
        rows.insert(rng.randint(after + 1, len(rows)), row)
    stats = FilterStats()
    decided = list(semantic_dedup(rows, 0.1, embedder=embedder, id_key="id", batch_size=32, stats=stats))
    dropped = {row["id"]: drop for row, drop in decided if drop is not None}
    assert set(dropped) == {row["id"] for row in planted}
    assert all(dropped[row["id"]].duplicate_of == row["twin"] for row in planted)
    assert [row for row, _ in decided] == rows  # input order, nothing lost
    assert stats.seen == len(rows) and stats.kept == len(originals) and stats.dropped == {"semantic_duplicate": len(planted)}


def test_semantic_dedup_keeps_the_best_scored_row(embedder):
    rows = [
        {"text": GROUPS[0][0], "score": 0.2}, {"text": DISTINCT[0], "score": 0.9}, {"text": GROUPS[0][1], "score": 0.8},
        {"text": GROUPS[0][2], "score": 0.5}, {"text": GROUPS[3][0], "score": 0.7}, {"text": GROUPS[3][1], "score": 0.7},
    ]
    decided = list(semantic_dedup(rows, EPSILON, embedder=embedder, score_key="score", batch_size=2))
    assert [row for row, _ in decided] == rows
    assert [drop and drop.duplicate_of for _, drop in decided] == [2, None, None, 2, None, 4]  # ties: the earlier row wins
    with pytest.raises(UserError, match="not a number"):
        list(semantic_dedup([{"text": "x", "score": "high"}], EPSILON, embedder=embedder, score_key="score"))


def test_semantic_dedup_names_the_missing_text_column(embedder):
    with pytest.raises(UserError, match="'prompt' holds no such column"):
        list(semantic_dedup([{"text": "x"}], EPSILON, embedder=embedder, text_key="prompt"))
