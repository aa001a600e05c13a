"""Exact-after-normalisation and MinHash dedup, and Self-Instruct's ROUGE-L rule: the fast
filter must decide exactly what the quadratic definition decides."""

from __future__ import annotations

import random

import pytest

from synthwright.errors import UserError
from synthwright.filters import FilterStats, exact_dedup, lcs_length, minhash_dedup, normalise_text, rouge_l, rouge_l_filter, tokenize


def reference_lcs(a, b) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def reference_rouge_filter(texts, threshold):
    """Self-Instruct's loop: compare each text with every kept one."""
    kept, decisions = [], []
    for i, text in enumerate(texts):
        scores = [(rouge_l(tokenize(text), tokenize(texts[k])), k) for k in kept]
        best = max(scores, key=lambda s: s[0], default=(0.0, None))
        decisions.append(best[1] if best[0] > threshold else None)
        if best[0] <= threshold:
            kept.append(i)
    return decisions


def test_bit_parallel_lcs_matches_dynamic_programming():
    rng = random.Random(0)
    for _ in range(2000):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        assert lcs_length(a, b) == reference_lcs(a, b)
    assert lcs_length(["x"] * 130, ["x"] * 100) == 100  # masks wider than a machine word


def test_rouge_l_f_measure():
    a, b = tokenize("The cat sat on the mat."), tokenize("the cat lay on a mat")
    assert a == ["the", "cat", "sat", "on", "the", "mat"]
    assert rouge_l(a, b) == pytest.approx(2 * 4 / 12)  # LCS: the cat on mat
    assert rouge_l(a, []) == 0.0 and rouge_l(a, a) == 1.0
    assert tokenize("Ünïcode wörds_and CAPS 42") == ["ünïcode", "wörds", "and", "caps", "42"]


def make_instructions(n: int, seed: int = 0) -> list[str]:
    """Template-made instructions: many share words, some are near-copies of earlier ones."""
    rng = random.Random(seed)
    verbs = ["Write", "Explain", "Summarize", "List", "Describe", "Compare", "Translate", "Create"]
    things = ["a poem", "the causes", "five facts", "a short story", "the history", "two examples", "an email", "a recipe"]
    topics = ["of the moon", "about rivers", "about the French revolution", "for a birthday", "about prime numbers",
              "for a job interview", "about climate change", "about cats", "in simple words", "for children"]
    texts: list[str] = []
    for _ in range(n):
        if texts and rng.random() < 0.25:
            words = rng.choice(texts).split()
            words[rng.randrange(len(words))] = rng.choice(["please", "quickly", "now", "briefly"])
            texts.append(" ".join(words))
        else:
            texts.append(f"{rng.choice(verbs)} {rng.choice(things)} {rng.choice(topics)} {rng.choice(topics)}.")
    return texts


@pytest.mark.parametrize("batch_size", [1, 7, 256])
def test_rouge_filter_decides_exactly_like_the_quadratic_loop(batch_size):
    texts = make_instructions(400)
    rows = [{"text": t, "id": f"r{i}"} for i, t in enumerate(texts)]
    stats = FilterStats()
    decided = list(rouge_l_filter(rows, threshold=0.7, id_key="id", batch_size=batch_size, stats=stats))
    expected = reference_rouge_filter(texts, 0.7)
    assert [drop and drop.duplicate_of for _, drop in decided] == [None if k is None else f"r{k}" for k in expected]
    assert sum(k is not None for k in expected) > 50
    assert stats.seen == 400 and stats.kept + stats.dropped["rouge_l_duplicate"] == 400
    assert all(drop.value > 0.7 and drop.measure == "rouge_l_f" for _, drop in decided if drop)


def test_rouge_filter_rejects_bad_threshold():
    with pytest.raises(UserError, match="ROUGE-L threshold"):
        list(rouge_l_filter([{"text": "x"}], threshold=1.5))


def test_normalisation_and_exact_dedup():
    assert normalise_text("  Hello,   WORLD!\n") == "hello world"
    assert normalise_text("Ｆｕｌｌ－width") == normalise_text("full width")
    rows = [{"text": "Write a poem."}, {"text": "write a poem"}, {"text": "Write  a   POEM!"}, {"text": "Write a song."}, {"text": "Write a song."}]
    stats = FilterStats()
    drops = [drop for _, drop in exact_dedup(rows, stats=stats)]
    assert [d and d.duplicate_of for d in drops] == [None, 0, 0, None, 3]
    assert stats.as_dict() == {"seen": 5, "kept": 2, "dropped": {"exact_duplicate": 3}}
    raw = [drop for _, drop in exact_dedup(rows, normalise=None)]
    assert [d and d.duplicate_of for d in raw] == [None, None, None, None, 3]


def test_minhash_catches_near_copies_and_keeps_distinct_texts():
    base = ("Write a detailed, friendly explanation of how vaccines train the immune system to recognise a virus, "
            "aimed at a curious teenager with no biology background.")
    rows = [
        {"id": "a", "text": base},
        {"id": "b", "text": "Describe three ways to reduce food waste at home, with one practical example for each."},
        {"id": "c", "text": base.replace("friendly", "warm")},
        {"id": "d", "text": base + " Keep it short."},
        {"id": "e", "text": "Explain how vaccines work."},
        {"id": "f", "text": "Describe three ways to reduce food waste at home, with one practical example for each!"},
    ]
    stats = FilterStats()
    drops = {row["id"]: drop for row, drop in minhash_dedup(rows, threshold=0.8, id_key="id", stats=stats)}
    assert {k: d.duplicate_of for k, d in drops.items() if d} == {"c": "a", "d": "a", "f": "b"}
    assert all(d.value >= 0.8 for d in drops.values() if d)
    assert stats.kept == 3 and stats.dropped == {"minhash_duplicate": 3}


def test_minhash_at_scale_drops_exactly_the_planted_copies():
    rng = random.Random(3)
    words = [f"w{i}" for i in range(3000)]
    originals = [" ".join(rng.choice(words) for _ in range(30)) for _ in range(600)]
    rows = [{"id": i, "text": t} for i, t in enumerate(originals)]
    planted = {}
    for k in range(60):
        twin = rng.randrange(600)
        tokens = originals[twin].split()
        tokens[rng.randrange(30)] = "changed"
        planted[600 + k] = twin
        rows.append({"id": 600 + k, "text": " ".join(tokens)})
    dropped = {row["id"]: d.duplicate_of for row, d in minhash_dedup(rows, threshold=0.7, id_key="id") if d}
    assert dropped == planted
