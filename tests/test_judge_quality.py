"""The default judge (Qwen2.5-Coder-1.5B) on a small hand-written labelled set of clear cases.

Ten short documents, each with two good search queries (human score 5) and one bad one
(human score 1: off-topic, or a jumble of the document's words). From them:
- pointwise: each document with one good and its bad query (20 rows, default rubric);
- pairwise: each good query with its document and a document on another subject (20 pairs),
  the relevant one shown as A for half of them, each pair asked in both orders.

Run with `pytest -s` to see the measured numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from synthwright.judges import (
    JudgeColumns, JudgeEnsemble, PairwiseJudge, RubricJudge, calibrate, judge_report, judge_rows,
)

QWEN = "llamacpp:qwen2.5-coder-1.5b"

# (document, two good queries, one bad query)
DOCS = [
    ("The Great Barrier Reef, off the coast of Queensland, Australia, is the largest coral reef system in the world. "
     "Rising sea temperatures cause coral bleaching, which has damaged large parts of the reef since 2016.",
     ["What has caused coral bleaching on the Great Barrier Reef?", "where is the largest coral reef system"],
     "best banana bread recipe with walnuts"),
    ("Insulin is a hormone made by beta cells in the pancreas. It lets cells take up glucose from the blood; people "
     "with type 1 diabetes make little or no insulin and must inject it.",
     ["Which cells in the pancreas produce insulin?", "why do type 1 diabetics need insulin injections"],
     "insulin insulin pancreas the of cells blood"),
    ("The Rust programming language guarantees memory safety without a garbage collector by using ownership and "
     "borrowing rules that the compiler checks at compile time.",
     ["How does Rust achieve memory safety without garbage collection?", "what is the borrow checker in rust"],
     "how tall is the Eiffel Tower"),
    ("Photosynthesis converts light energy into chemical energy. In the chloroplasts of plant cells, carbon dioxide "
     "and water are turned into glucose and oxygen.",
     ["What are the products of photosynthesis?", "where in plant cells does photosynthesis happen"],
     "chloroplasts chloroplasts light the energy into into"),
    ("The French Revolution began in 1789 with the storming of the Bastille and led to the end of the absolute "
     "monarchy and the execution of King Louis XVI in 1793.",
     ["When was King Louis XVI executed?", "what event started the french revolution"],
     "cheap flights to Tokyo in March"),
    ("A sourdough starter is a mixture of flour and water colonised by wild yeast and lactic acid bacteria. Bakers "
     "feed it regularly and use it to leaven bread instead of commercial yeast.",
     ["What microbes live in a sourdough starter?", "how do you keep a sourdough starter alive"],
     "symptoms of a broken wrist"),
    ("Black holes form when massive stars collapse at the end of their lives. Their gravity is so strong that "
     "nothing, not even light, can escape from inside the event horizon.",
     ["Why can't light escape a black hole?", "how do black holes form"],
     "horizon event the star star of light gravity"),
    ("The Python GIL (global interpreter lock) lets only one thread execute Python bytecode at a time, which limits "
     "CPU-bound multithreaded programs; multiprocessing avoids it.",
     ["Why doesn't multithreading speed up CPU-bound Python code?", "how to get around the python GIL"],
     "how to train a puppy to sit"),
    ("Vitamin D is produced in the skin when it is exposed to sunlight. It helps the body absorb calcium, and a lack "
     "of it can cause rickets in children.",
     ["How does the body make vitamin D?", "what disease does vitamin D deficiency cause in children"],
     "vitamin vitamin the skin D D calcium of"),
    ("The Treaty of Versailles, signed in 1919, ended the First World War between Germany and the Allied Powers and "
     "required Germany to pay heavy reparations.",
     ["Which treaty ended World War I?", "what did the treaty of versailles make germany pay"],
     "best running shoes for flat feet"),
]


def labelled_points() -> list[dict]:
    """20 rows: per document its first good query (human 5) and its bad query (human 1)."""
    rows = []
    for i, (doc, good, bad) in enumerate(DOCS):
        rows.append({"id": f"d{i}-good", "document": doc, "query": good[0], "human": 5})
        rows.append({"id": f"d{i}-bad", "document": doc, "query": bad, "human": 1})
    return rows


def labelled_pairs() -> list[dict]:
    """20 pairs: each good query, its document and another document; the relevant one is A half the time."""
    rows = []
    for i, (doc, good, _) in enumerate(DOCS):
        other = DOCS[(i + 3) % len(DOCS)][0]
        for k, query in enumerate(good):
            relevant_is_a = (i + k) % 2 == 0
            rows.append({
                "id": f"d{i}-q{k}", "query": query, "a": doc if relevant_is_a else other,
                "b": other if relevant_is_a else doc, "human": "a" if relevant_is_a else "b",
            })
    return rows


@pytest.mark.slow
def test_qwen_rubric_judge_separates_good_from_bad_queries():
    rows = labelled_points()
    judged = judge_rows(rows, JudgeEnsemble([RubricJudge(QWEN)]), "pointwise", JudgeColumns(text="query", context="document"))
    assert not judged.failed and len(judged.rows) == 20
    scores = {row["id"]: row["judge_score"] for row in judged.rows}
    within_document = np.mean([scores[f"d{i}-good"] > scores[f"d{i}-bad"] for i in range(len(DOCS))])
    report = calibrate(judged.rows, {row["id"]: float(row["human"]) for row in rows}, good_at_least=3, target=0.9, min_kept=5)
    spearman = report["agreement"]["combined"]["spearman"]
    print(f"\npointwise qwen-1.5B: good > bad for the same document {within_document:.2f}; "
          f"Spearman with humans {spearman['value']:.3f} [{spearman['low']:.3f}, {spearman['high']:.3f}]; "
          f"threshold {report['threshold']['threshold']}, precision {report['threshold']['precision']['value']}")
    assert within_document >= 0.8  # chance is 0.5
    assert spearman["value"] >= 0.6
    assert report["threshold"]["met"]  # a cut exists that keeps good queries at precision 0.9
    # the relevance criterion carries the signal for off-topic queries
    relevance = {row["id"]: row["judge_criteria"]["relevance"] for row in judged.rows}
    off_topic = [i for i, (_, _, bad) in enumerate(DOCS) if len(set(bad.split())) == len(bad.split())]
    assert np.mean([relevance[f"d{i}-good"] > relevance[f"d{i}-bad"] for i in off_topic]) == 1.0


@pytest.mark.slow
def test_qwen_pairwise_judge_in_both_orders():
    rows = labelled_pairs()
    judged = judge_rows(rows, JudgeEnsemble([PairwiseJudge(QWEN)]), "pairwise", JudgeColumns(context="query"))
    assert not judged.failed and len(judged.rows) == 20
    stats = judge_report(judged.rows)["judges"]["qwen2.5-coder-1.5b"]
    report = calibrate(judged.rows, {row["id"]: row["human"] == "a" for row in rows}, target=0.9, min_kept=5)
    judge = report["judges"]["qwen2.5-coder-1.5b"]
    accuracy = report["agreement"]["combined"]["accuracy"]["value"]
    print(f"\npairwise qwen-1.5B on {len(rows)} pairs: accuracy {accuracy:.2f} "
          f"(A-first order alone {judge['accuracy_a_first']['value']:.2f}, B-first alone {judge['accuracy_b_first']['value']:.2f}); "
          f"first document wins {stats['first_wins_rate']:.3f} of single-order verdicts; both orders agree on {stats['consistency']:.2f}")
    assert accuracy >= 0.85  # chance is 0.5
    # position bias is measured in both orders; with this prompt wording it is small
    assert stats["n"] == 20 and 0.3 <= stats["first_wins_rate"] <= 0.7
    assert stats["consistency"] >= 0.75
    assert judge["first_wins_rate"]["low"] <= stats["first_wins_rate"] <= judge["first_wins_rate"]["high"]


@pytest.mark.slow
def test_qwen_json_scoring_gives_scores_and_reasons():
    rows = [row for row in labelled_points() if row["id"].startswith(("d0-", "d2-"))]  # two good, two off-topic
    judge = RubricJudge(QWEN, scoring="json")
    judged = judge_rows(rows, JudgeEnsemble([judge]), "pointwise", JudgeColumns(text="query", context="document"))
    assert not judged.failed and len(judged.rows) == 4
    scores = {row["id"]: row["judge_score"] for row in judged.rows}
    for row in judged.rows:
        detail = row["judge_by"]["qwen2.5-coder-1.5b"]
        assert detail["reason"] and all(c["score"] in (1, 2, 3, 4, 5) for c in detail["criteria"].values())
    assert scores["d0-good"] > scores["d0-bad"] and scores["d2-good"] > scores["d2-bad"]
