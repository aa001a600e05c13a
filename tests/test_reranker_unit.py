"""The synthetic reranker's parts without models: query rules, comparison graphs and the LLM
budget, reliability weights and label recovery, reranking and fusion, corpora, and the CLI's
bad-input errors. The whole pipeline with real models is in test_reranker_e2e.py."""

from __future__ import annotations

import json
import math
import os
import random

import numpy as np
import pytest
from scipy.stats import norm

from synthwright.errors import UserError
from synthwright.ranking import is_connected, select_pairs
from synthwright.reranker.corpus import PYDOC_TOPICS, open_corpus
from synthwright.reranker.evaluation import fuse, rerank
from synthwright.reranker.judging import choose_for_llm, graph_for, stochastic_round
from synthwright.reranker.labels import (
    combine,
    estimate_reliability,
    recover_labels,
    reliability_weight,
)
from synthwright.reranker.queries import (
    DOC_QUERY_PROMPT,
    clean_query,
    copies_document,
    draw_without_replacement,
    focus_sentences,
    judge_query,
    truncate_document,
)
from synthwright.reranker.steps import CorpusOptions, CorpusStep, PairJudgeOptions, StudentOptions, row_labels
from tests.conftest import run_cli
from tests.test_cli_errors import assert_one_clear_error

BEES = ("Honey bees live in colonies ruled by a single queen. Worker bees collect nectar from flowers "
        "and turn it into honey inside the hive. Drones exist only to mate with the queen.")


# -- queries: cleaning --------------------------------------------------------------------------
@pytest.mark.parametrize("raw, clean", [
    ("**Claim:** Bees make honey from nectar.", "Bees make honey from nectar."),
    ("**Claim**: Bees make honey from nectar.", "Bees make honey from nectar."),
    ("Query: how do bees make honey", "how do bees make honey"),
    ("Search query - how do bees make honey", "how do bees make honey"),
    ("**Question:**\nHow do bees make honey?", "How do bees make honey?"),
    ("Claim:\n\n  Bees make honey.", "Bees make honey."),
    ("1. How do bees make honey?", "How do bees make honey?"),
    ("- How do bees make honey?", "How do bees make honey?"),
    ('"How do bees make honey?"', "How do bees make honey?"),
    ("“How do bees make honey?”", "How do bees make honey?"),
    ('Question: "How do bees make honey?"\nThe passage explains that ...', "How do bees make honey?"),
    ("  How   do bees\tmake honey?  ", "How do bees make honey?"),
    ("", ""),
    ("\n \n", ""),
    # The coder teacher's wrappings: code fences, backticks, quotes inside them.
    ("```\npython read next line from file\n```", "python read next line from file"),
    ("```text\n\"python convert text to bytes\"\n```", "python convert text to bytes"),
    ("`python list access with default value`", "python list access with default value"),
    ("```python check if a variable is iterable```", "python check if a variable is iterable"),
])
def test_clean_query(raw, clean):
    assert clean_query(raw) == clean


def test_clean_query_keeps_words_that_only_look_like_labels():
    # "Answer" inside a sentence, or a colon later in the line, is not a label.
    assert clean_query("How do bees answer a threat: sting or flee?") == "How do bees answer a threat: sting or flee?"
    assert clean_query("Queries about honey production") == "Queries about honey production"


# -- queries: rejection reasons -----------------------------------------------------------------
@pytest.mark.parametrize("text, style, reason", [
    ("Bees?", "question", "too_short"),
    ("honey bees", "question", "too_short"),
    ("honey bees", "keyword", None),
    ("bee", "keyword", None),
    ("honey bee colony queen worker drone nectar hive flowers", "keyword", "too_long"),
    ("Why " + "very " * 40 + "busy bees?", "question", "too_long"),
    ("Why " + "very " * 40 + "busy bees.", "claim", "too_long"),
    ("What does the passage say about honey bees?", "question", "mentions_document"),
    ("According to this text, who rules a bee colony?", "question", "mentions_document"),
    ("Honey bees live in colonies ruled by a single queen.", "claim", "copies_document"),
    ("**Claim:** Worker bees collect nectar from flowers and turn it into honey", "claim", "copies_document"),
    ("A bee colony is governed by one queen.", "claim", None),
    ("Who makes the honey in a beehive?", "question", None),
])
def test_judge_query_reasons(text, style, reason):
    verdict = judge_query(text, BEES, style)
    assert verdict.reason == reason, verdict
    assert verdict.query == clean_query(text)


def test_copies_document_needs_a_sentence_not_scattered_words():
    # Every word of the query is in the document, but across sentences and out of order.
    assert not copies_document("queen honey colonies nectar flowers drones", BEES)
    assert copies_document("worker bees collect nectar from flowers and turn it into honey", BEES)
    assert not copies_document("bees make honey", BEES)  # short queries may reuse document words


def test_low_logprob_only_with_a_threshold():
    query = "Who makes the honey in a beehive?"
    assert judge_query(query, BEES, "question", logprob=-3.0, min_logprob=-1.0).reason == "low_logprob"
    assert judge_query(query, BEES, "question", logprob=-0.5, min_logprob=-1.0).reason is None
    assert judge_query(query, BEES, "question", logprob=-3.0).reason is None  # no threshold set
    assert judge_query(query, BEES, "question", min_logprob=-1.0).reason is None  # no logprob reported


def test_truncate_document_cuts_at_a_sentence():
    text = " ".join(f"Sentence number {i} says something about bees." for i in range(40))
    cut = truncate_document(text, 300)
    assert len(cut) <= 300 and cut.endswith("bees.")
    assert text.startswith(cut)
    assert truncate_document(BEES, 10_000) == BEES


def test_truncate_document_falls_back_to_a_word_boundary():
    text = "word " * 200  # no sentence end at all
    cut = truncate_document(text.strip(), 100)
    assert cut.endswith(" ...") and len(cut) <= 104
    assert cut[:-4].split() == ["word"] * len(cut[:-4].split())


# -- judging: the comparison graph --------------------------------------------------------------
def judging_row(n_candidates: int = 9, *, missing_dense: str | None = None) -> dict:
    """A query whose candidates come in retrieval order with decreasing component scores."""
    candidates = [f"c{i}" for i in range(1, n_candidates + 1)]
    nodes = ["src", *candidates]
    bm25 = [20.0, *(15.0 - i for i in range(n_candidates))]
    dense = [0.8, *(0.7 - 0.03 * i for i in range(n_candidates))]
    if missing_dense:
        dense[nodes.index(missing_dense)] = 0.0  # outside the dense top list
    return {"query_id": "q1", "query": "how do bees make honey", "doc_id": "src", "candidates": candidates,
            "bm25": bm25, "dense": dense}


def options(pairs_per_query: int = 16, judges=("bm25", "embedding"), n_random: int = 2) -> PairJudgeOptions:
    return PairJudgeOptions(corpus="unused", judges=list(judges), pairs_per_query=pairs_per_query, n_random=n_random)


@pytest.mark.parametrize("pairs_per_query", [3, 6, 9, 16, 40])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_graph_is_connected_with_source_and_kept_candidates(pairs_per_query, seed):
    row = judging_row()
    graph = graph_for(row, options(pairs_per_query), seed)
    pairs = [(c["a"], c["b"]) for c in graph]
    named = {x for pair in pairs for x in pair}
    kept = [c for c in row["candidates"] if c in named]
    assert 0 < len(graph) <= pairs_per_query
    assert "src" in named and named <= {"src", *row["candidates"]}
    assert kept == row["candidates"][: len(kept)]  # the tail goes first when the budget is tight
    assert is_connected(pairs, ["src", *kept])
    assert pairs == select_pairs(row["candidates"], "src", budget=pairs_per_query, n_random=2, seed=seed)


@pytest.mark.parametrize("pairs_per_query", [3, 6, 16])
def test_anchors_are_source_against_the_bottom_third(pairs_per_query):
    row = judging_row()
    graph = graph_for(row, options(pairs_per_query), seed=0)
    kept = [c for c in row["candidates"] if any(c in (x["a"], x["b"]) for x in graph)]
    bottom = set(kept[-max(1, len(kept) // 3):])
    anchors = [c for c in graph if c["anchor"]]
    # Anchors exist even when the budget drops the retrieved list's tail: they measure the LLM.
    assert anchors
    for c in anchors:
        assert c["a"] == "src" and c["b"] in bottom
    for c in graph:
        if c["a"] == "src" and c["b"] in bottom:
            assert c["anchor"]
        if c["a"] != "src":
            assert not c["anchor"]


def test_cheap_members_favour_the_higher_scoring_document():
    row = judging_row(missing_dense="c2")
    scores = dict(zip(["src", *row["candidates"]], zip(row["bm25"], row["dense"])))
    graph = graph_for(row, options(40, n_random=10), seed=3)
    assert any(c["a"] > c["b"] and c["a"] != "src" for c in graph)  # random pairs in both orders too
    for c in graph:
        (bm25_a, dense_a), (bm25_b, dense_b) = scores[c["a"]], scores[c["b"]]
        assert (c["by"]["bm25"] > 0.5) == (bm25_a > bm25_b), c
        assert 0.0 < c["by"]["bm25"] < 1.0
        if "c2" in (c["a"], c["b"]):
            assert "embedding" not in c["by"]  # no cosine for a document outside the dense list
        else:
            assert (c["by"]["embedding"] > 0.5) == (dense_a > dense_b), c


def test_graph_only_asks_the_chosen_cheap_members():
    graph = graph_for(judging_row(), options(judges=("bm25", "llamacpp:some-model")), seed=0)
    assert all(set(c["by"]) == {"bm25"} for c in graph)


def test_bm25_verdict_does_not_depend_on_the_score_scale():
    row = judging_row()
    scaled = {**row, "bm25": [10 * s for s in row["bm25"]]}
    first, second = graph_for(row, options(), 0), graph_for(scaled, options(), 0)
    assert [c["by"]["bm25"] for c in first] == pytest.approx([c["by"]["bm25"] for c in second])


# -- judging: where the LLM budget goes ---------------------------------------------------------
def budget_graphs() -> list[tuple[dict, list[dict]]]:
    graphs = []
    for q in range(4):
        row = {"query_id": f"q{q}"}
        comparisons = [
            {"a": "src", "b": "c8", "by": {"bm25": 0.9, "embedding": 0.9}, "anchor": True},
            {"a": "src", "b": "c9", "by": {"bm25": 0.8, "embedding": 0.95}, "anchor": True},
            {"a": "c1", "b": "c2", "by": {"bm25": 0.95, "embedding": 0.05}, "anchor": False, "tag": "disagree"},
            {"a": "c2", "b": "c3", "by": {"bm25": 0.5, "embedding": 0.5}, "anchor": False, "tag": "unsure"},
            {"a": "c3", "b": "c4", "by": {"bm25": 0.97, "embedding": 0.99}, "anchor": False, "tag": "agree"},
            {"a": "c4", "b": "c5", "by": {"bm25": 0.9, "embedding": 0.85}, "anchor": False, "tag": "agree"},
        ]
        graphs.append((row, comparisons))
    return graphs


@pytest.mark.parametrize("budget, share, anchors", [(10, 0.2, 2), (10, 0.5, 5), (5, 0.0, 0), (20, 1.0, 8), (5, 0.2, 1)])
def test_llm_budget_and_anchor_share(budget, share, anchors):
    chosen = choose_for_llm(budget_graphs(), budget, share, random.Random(0))
    assert len(chosen) == min(budget, 24)
    assert sum(c["anchor"] for _, c in chosen) == anchors
    assert len({id(c) for _, c in chosen}) == len(chosen)  # no comparison twice


def test_small_budgets_are_rounded_stochastically_so_totals_come_out_right():
    rng = random.Random(0)
    draws = [stochastic_round(2.56, rng) for _ in range(4000)]
    assert set(draws) == {2, 3}
    assert sum(draws) / len(draws) == pytest.approx(2.56, abs=0.03)  # round() would spend 3 every time
    assert stochastic_round(4.0, rng) == 4 and stochastic_round(0.0, rng) == 0
    # 0.2 of a 2-pair batch budget: some batches still spend one pair on an anchor, so the
    # LLM's reliability gets measured (rounding would give none in every batch).
    anchors = [sum(c["anchor"] for _, c in choose_for_llm(budget_graphs(), 2, 0.2, random.Random(seed))) for seed in range(400)]
    assert 0.3 < sum(anchors) / len(anchors) < 0.5


def test_llm_goes_where_cheap_members_disagree():
    chosen = choose_for_llm(budget_graphs(), 10, 0.2, random.Random(0))
    tags = [c.get("tag") for _, c in chosen if not c["anchor"]]
    # 8 non-anchor slots: the 4 disagreements first, then the 4 coin flips; no agreed pair.
    assert tags == ["disagree"] * 4 + ["unsure"] * 4
    assert choose_for_llm(budget_graphs(), 0, 0.2, random.Random(0)) == []


def test_llm_takes_pairs_nobody_cheap_could_judge_first():
    graphs = budget_graphs()
    graphs[0][1].append({"a": "c6", "b": "c7", "by": {}, "anchor": False, "tag": "unjudged"})
    chosen = choose_for_llm(graphs, 2, 0.0, random.Random(0))
    assert [c.get("tag") for _, c in chosen] == ["unjudged", "disagree"]


# -- labels: reliability and combination --------------------------------------------------------
def test_reliability_weight():
    assert reliability_weight(0.5, 200) == pytest.approx(0.0, abs=0.03)  # a coin weighs nothing
    assert reliability_weight(0.2, 200) == 0.0  # worse than chance is not trusted backwards
    assert reliability_weight(0.97, 200) > 3.0
    assert reliability_weight(0.97, 200) > reliability_weight(0.85, 200) > reliability_weight(0.6, 200)
    # Few anchor pairs: shrunk towards the prior, neither vanishing nor dominating.
    assert 0.0 < reliability_weight(0.0, 1) < reliability_weight(1.0, 1) < 1.5
    assert reliability_weight(None, 0) == pytest.approx(math.log(0.65 / 0.35))


def anchored_rows(n: int = 40) -> list[dict]:
    """Rows whose anchor comparisons were judged by a reliable member, a coin, and an LLM that
    judged only some (None elsewhere, as rows read back from Parquet have)."""
    rows = []
    for i in range(n):
        coin = 0.9 if i % 2 else 0.1
        comparisons = [
            {"a": "src", "b": "c9", "anchor": True, "by": {"good": 0.95, "coin": coin, "llm": 0.8 if i < 10 else None, "timid": 0.52},
             "first": {"llm": 0.6 if i < 10 else None}},
            {"a": "c1", "b": "c2", "anchor": False, "by": {"good": 0.1, "coin": 0.9, "llm": None, "timid": 0.49}},
        ]
        rows.append({"query_id": f"q{i}", "doc_id": "src", "comparisons": comparisons})
    return rows


def test_estimate_reliability_from_anchor_pairs():
    reliability = estimate_reliability(anchored_rows(), ["good", "coin", "llm", "absent", "timid"])
    good, coin, llm, absent, timid = (reliability[m] for m in ("good", "coin", "llm", "absent", "timid"))
    assert good.anchor_pairs == coin.anchor_pairs == 40
    assert good.accuracy == pytest.approx(1.0) and coin.accuracy == pytest.approx(0.5)  # the side it picks
    assert coin.weight < 0.1
    assert good.weight > 2.0
    assert llm.anchor_pairs == 10 and llm.accuracy == pytest.approx(1.0)  # None votes are not counted
    # Always on the right side but never confident (Qwen-1.5B on SciFact): reliable, on a small scale.
    assert timid.accuracy == pytest.approx(1.0) and timid.weight == pytest.approx(good.weight)
    assert timid.scale < 0.1 < 2.0 < good.scale
    assert llm.first_wins == pytest.approx(0.6)
    assert absent.anchor_pairs == 0 and absent.accuracy is None and absent.weight > 0
    assert json.dumps(good.to_dict())


def test_reliability_with_truth_from_real_labels():
    rows = anchored_rows(10)
    # Real labels say c2 beats c1: "good" is wrong there, "coin" is right.
    truth = {(row["query_id"], "c1", "c2"): 0.0 for row in rows}
    reliability = estimate_reliability(rows, ["good", "coin"], truth)
    assert reliability["good"].accuracy == pytest.approx(1.0)
    assert reliability["coin"].accuracy == pytest.approx(0.0)
    assert reliability["coin"].weight == 0.0


def test_combine():
    assert combine({"a": 0.9, "b": None}, {"a": 1.0, "b": 1.0}) == pytest.approx(0.9)
    assert combine({"a": 0.9, "b": 0.1}, {"a": 1.0, "b": 1.0}) == pytest.approx(0.5)
    assert combine({"a": 0.8, "b": 0.2}, {"a": 3.0, "b": 1.0}) == pytest.approx(1 / (1 + math.exp(-(3 - 1) * math.log(4) / 2)))
    # Scales put a timid member and a confident one on one footing: both unit verdicts here.
    both = combine({"llm": 0.52, "emb": 0.98}, {"llm": 2.0, "emb": 2.0}, {"llm": math.log(0.52 / 0.48), "emb": math.log(0.98 / 0.02)})
    assert both == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert combine({"a": 0.9, "coin": 0.01}, {"a": 1.0, "coin": 0.0}) == pytest.approx(0.9)
    assert combine({"b": None}, {"a": 1.0, "b": 1.0}) is None
    assert combine({"a": 0.9}, {"a": 0.0}) is None
    assert combine({"a": 0.9}, {}) is None
    assert combine({}, {"a": 1.0}) is None
    assert 0.99 < combine({"a": 1.0}, {"a": 1.0}) < 1.0  # certain votes stay finite


# -- labels: recovery on simulated judgments ----------------------------------------------------
QUALITY = {"src": 2.0, "twin": 1.6, "c1": -0.2, "c2": -0.5, "c3": -0.8, "c4": -1.0, "c5": -1.3, "c6": -1.5}


def simulated_rows(n_queries: int = 6, seed: int = 0) -> list[dict]:
    """Each query: its source, a candidate as good as the source (a false negative) and six
    clearly worse ones; two members judge every pair with noise, one of them only some."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(n_queries):
        candidates = ["c1", "twin", *(f"c{i}" for i in range(2, 7))]
        comparisons = []
        for a, b in select_pairs(candidates, "src", budget=16, n_random=3, seed=q):
            true = norm.cdf(QUALITY[a] - QUALITY[b])
            by = {"llm": float(np.clip(true + rng.normal(0, 0.05), 0.01, 0.99)),
                  "bm25": float(np.clip(true + rng.normal(0, 0.2), 0.01, 0.99)) if rng.random() < 0.7 else None}
            comparisons.append({"a": a, "b": b, "by": by, "anchor": False})
        rows.append({"query_id": f"q{q}", "doc_id": "src", "candidates": candidates, "comparisons": comparisons})
    return rows


@pytest.mark.parametrize("model", ["thurstone", "bradley_terry"])
def test_recover_labels_on_simulated_judgments(model):
    rows = simulated_rows()
    recovered = recover_labels(rows, {"llm": 2.0, "bm25": 0.5}, model=model)
    assert sorted(q.query_id for q in recovered) == [row["query_id"] for row in rows]
    for query in recovered:
        labels = query.labels
        assert set(labels) == set(QUALITY) == set(query.scores) == set(query.std)
        assert all(0.0 <= v <= 1.0 for v in labels.values())
        assert labels["src"] == max(labels.values())
        assert labels["twin"] > 0.5  # as good as the source: not trained as a negative
        assert all(labels[c] < 0.35 for c in ("c2", "c3", "c4", "c5", "c6")), labels
        assert labels["c1"] > labels["c6"]
        assert all(sd > 0 for sd in query.std.values())


def test_recover_labels_skips_queries_without_usable_votes():
    rows = simulated_rows(2)
    rows.append({"query_id": "empty", "doc_id": "src", "comparisons": []})
    rows.append({"query_id": "unweighted", "doc_id": "src",
                 "comparisons": [{"a": "src", "b": "c1", "by": {"coin": 0.9, "llm": None}, "anchor": True}]})
    recovered = recover_labels(rows, {"llm": 1.0, "coin": 0.0})
    assert sorted(q.query_id for q in recovered) == ["q0", "q1"]
    assert recover_labels(rows[2:], {"llm": 1.0}) == []


# -- evaluation: reranking and fusion -----------------------------------------------------------
class WordOverlapScorer:
    """A real (if crude) reranker: the number of query words in the document."""

    def score(self, query: str, documents):
        words = set(query.lower().split())
        return [float(len(words & set(doc.lower().split()))) for doc in documents]


FIRST_STAGE = {"q": [("d1", 5.0), ("d2", 4.0), ("d3", 3.0), ("d4", 2.0), ("d5", 1.0)]}
TEXTS = {"d1": "bees live in hives", "d2": "rivers run to the sea", "d3": "honey bees make honey from nectar",
         "d4": "honey bees make honey from nectar in hives", "d5": "honey"}


def test_rerank_orders_the_head_and_keeps_the_tail():
    reranked = rerank(WordOverlapScorer(), {"q": "honey bees nectar hives"}, FIRST_STAGE, TEXTS, depth=3)["q"]
    # Head (top 3) by the scorer: d3 (3 words) > d1 (2) > d2 (0). d4 (4) would win but is below depth.
    assert [doc for doc, _ in reranked] == ["d3", "d1", "d2", "d4", "d5"]
    scores = [s for _, s in reranked]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 5
    assert scores[:3] == [3.0, 2.0, 0.0]


def test_fuse_is_rrf_over_the_head_and_keeps_the_tail():
    reranked = rerank(WordOverlapScorer(), {"q": "honey bees nectar hives"}, FIRST_STAGE, TEXTS, depth=3)
    fused = fuse(FIRST_STAGE, reranked, depth=3)["q"]
    # RRF (k=60): d1 = 1/61 + 1/62, d3 = 1/63 + 1/61, d2 = 1/62 + 1/63.
    assert [doc for doc, _ in fused] == ["d1", "d3", "d2", "d4", "d5"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][1] == pytest.approx(1 / 63 + 1 / 61)
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 5


def test_rerank_deeper_than_the_first_stage():
    reranked = rerank(WordOverlapScorer(), {"q": "honey bees nectar hives"}, FIRST_STAGE, TEXTS, depth=30)["q"]
    assert [doc for doc, _ in reranked] == ["d4", "d3", "d1", "d5", "d2"]
    assert [doc for doc, _ in fuse(FIRST_STAGE, {"q": reranked}, depth=30)["q"]][:2] == ["d1", "d4"]


def test_the_control_is_the_same_fusion_with_the_untrained_model():
    """Given the control's own scorer as the student, BM25 + student is the control: gain 0."""
    from synthwright.reranker.evaluation import control_label, evaluate_students

    queries = {"q1": "how does the with statement call __enter__ and __exit__", "q2": "what does the assert statement do",
               "q3": "integer literals with underscores"}
    qrels = {"q1": {"with": 1}, "q2": {"assert": 1}, "q3": {"integers": 1}}
    scorer = WordOverlapScorer()
    evaluation = evaluate_students(PYDOC_TOPICS, queries, qrels, {"student": scorer}, depth=10, resamples=200,
                                   control=("word overlap", scorer))
    control = control_label("word overlap")
    assert evaluation.table[control] == evaluation.table["BM25 + student (RRF)"]
    assert evaluation.over_control["BM25 + student (RRF)"]["difference"] == 0.0
    assert control in evaluation.gains  # the control's own gain over hybrid is reported too
    assert evaluate_students(PYDOC_TOPICS, queries, qrels, {"student": scorer}, depth=10, resamples=200).over_control == {}


# -- corpora ------------------------------------------------------------------------------------
def test_pydoc_topics_corpus():
    corpus = open_corpus(PYDOC_TOPICS)
    assert 60 <= len(corpus) <= 120  # 79 topics in Python 3.12
    assert all(doc["text"].strip() and doc["title"] == doc_id for doc_id, doc in corpus.items())
    assert "assignment" in corpus and "=" in corpus["assignment"]["text"]
    assert open_corpus(PYDOC_TOPICS) is corpus  # read once per process


def test_a_copied_corpus_keeps_its_fingerprint(tmp_path):
    from synthwright.reranker.corpus import corpus_fingerprint

    line = json.dumps({"_id": 7, "title": "Bees", "text": BEES}) + "\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "corpus.jsonl").write_text(line, encoding="utf-8")
    (tmp_path / "b" / "corpus.jsonl").write_text(line, encoding="utf-8")
    os.utime(tmp_path / "b" / "corpus.jsonl", ns=(1, 1))
    assert corpus_fingerprint(str(tmp_path / "a")) == corpus_fingerprint(str(tmp_path / "b" / "corpus.jsonl"))
    (tmp_path / "b" / "corpus.jsonl").write_text(line.replace("Bees", "Wasps"), encoding="utf-8")
    assert corpus_fingerprint(str(tmp_path / "a")) != corpus_fingerprint(str(tmp_path / "b"))


def test_jsonl_corpus_is_reread_when_the_file_changes(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"_id": 7, "title": "Bees", "text": BEES}) + "\n", encoding="utf-8")
    corpus = open_corpus(path)
    assert corpus == {"7": {"title": "Bees", "text": BEES}}
    assert open_corpus(str(path)) is corpus
    path.write_text(json.dumps({"_id": "b", "text": "Owls fly silently."}) + "\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert open_corpus(path) == {"b": {"title": "", "text": "Owls fly silently."}}


def test_beir_folder_corpus(tmp_path):
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"_id": "a", "title": "", "text": BEES}) + "\n", encoding="utf-8")
    assert list(open_corpus(tmp_path)) == ["a"]


def test_bad_corpora_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        open_corpus(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(UserError, match="no documents"):
        open_corpus(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "no id"}\n', encoding="utf-8")
    with pytest.raises(UserError, match="lacks _id"):
        open_corpus(bad)


def test_a_folder_without_a_student_model_is_a_user_error(tmp_path):
    from synthwright.reranker.student import StudentReranker

    with pytest.raises(UserError, match="No student model"):
        StudentReranker(tmp_path / "missing")
    (tmp_path / "student" / "checkpoints").mkdir(parents=True)  # a training folder whose model was never saved
    with pytest.raises(UserError, match="holds no saved model"):
        StudentReranker(tmp_path / "student")


# -- student examples ----------------------------------------------------------------------------
def test_contrast_examples_one_row_per_query_with_label_chosen_negatives():
    from synthwright.reranker.student import QueryLabels, contrast_examples

    texts = {doc: f"text of {doc}" for doc in ("src", "twin", "hard", "medium", "easy", "lone")}
    groups = [
        QueryLabels("q1", {"src": 0.9, "twin": 0.8, "hard": 0.3, "medium": 0.2, "easy": 0.05, "missing": 0.1}),
        QueryLabels("q2", {"src": 0.9, "easy": 0.1}),  # one negative: repeated to fill the row
        QueryLabels("q3", {"src": 0.9, "twin": 0.7}),  # no candidate below negative_max: no row
        QueryLabels("q4", {"lone": 1.0}),  # nothing to contrast
    ]
    rows = contrast_examples(groups, texts, negatives=2)
    assert rows == [
        # the likely false negative (twin, 0.8) is never a negative; the hardest true negatives are
        {"query": "q1", "positive": "text of src", "negative_1": "text of hard", "negative_2": "text of medium"},
        {"query": "q2", "positive": "text of src", "negative_1": "text of easy", "negative_2": "text of easy"},
    ]
    assert list(contrast_examples(groups[:1], texts, negatives=3)[0]) == ["query", "positive", "negative_1", "negative_2", "negative_3"]
    # Binary labels (InPars, or real qrels): the first candidates in retrieval order are the negatives.
    binary = QueryLabels("q", {"src": 1.0, "easy": 0.0, "hard": 0.0, "medium": 0.0})
    row = contrast_examples([binary], texts, negatives=2)[0]
    assert (row["negative_1"], row["negative_2"]) == ("text of easy", "text of hard")


# -- sentence focus ----------------------------------------------------------------------------
ABSTRACT = ("Obesity is a growing problem worldwide. We followed 1,200 children for ten years in three cities. "
            "Children who drank sugary drinks every day gained more weight than those who did not. "
            "Short. Taxes on sugary drinks reduced their consumption by a fifth within two years. "
            "(B) Physical activity did not change the association between sugary drinks and weight.")


def test_focus_sentences_skip_the_opening_and_fragments():
    sentences = focus_sentences(ABSTRACT)
    assert sentences[0].startswith("We followed")  # the opening (background) is left to the title
    assert "Short." not in sentences
    assert sentences[-1].startswith("(B) Physical activity")
    assert all(sentence in ABSTRACT for sentence in sentences)
    two = "First sentence has enough words here. Second sentence also has enough words."
    assert focus_sentences(two) == ["First sentence has enough words here.", "Second sentence also has enough words."]
    # Without a title the opening is all the teacher would know of the topic: it stays.
    assert focus_sentences(ABSTRACT, titled=False)[0] == "Obesity is a growing problem worldwide."


def test_drawing_more_sentences_keeps_the_earlier_draws():
    pool = [f"sentence {i}" for i in range(30)]
    five = draw_without_replacement(pool, 5, random.Random(3))
    six = draw_without_replacement(pool, 6, random.Random(3))
    assert six[:5] == five and len(set(six)) == 6  # random.sample(pool, 5) is not a prefix of sample(pool, 6) here
    assert sorted(draw_without_replacement(pool[:4], 9, random.Random(3))) == sorted(pool[:4])


def _corpus_rows(tmp_path, **options):
    from synthwright.core.step import StepContext

    path = tmp_path / "corpus.jsonl"
    docs = [{"_id": "obesity", "title": "Sugary drinks and weight", "text": ABSTRACT},
            {"_id": "bees", "title": "", "text": BEES},
            {"_id": "code", "title": "A listing", "text": "x = [1, 2, 3]  # no sentence here at all, only code"},
            {"_id": "empty", "title": "Only a title", "text": ""}]
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs), encoding="utf-8")
    options = {"styles": ["claim"], "min_chars": 0, **options}
    step = CorpusStep("documents", CorpusOptions(corpus=str(path), **options), StepContext(workdir=tmp_path))
    return list(step.read())


def test_sentence_focus_gives_one_row_per_drawn_sentence(tmp_path):
    rows = _corpus_rows(tmp_path, focus="sentence", sentences_per_doc=3)
    by_doc = {doc: [row for row in rows if row["doc_id"] == doc] for doc in ("obesity", "bees", "code", "empty")}
    assert len(by_doc["obesity"]) == 3 and len(by_doc["bees"]) == 3  # untitled: its opening sentence counts too
    assert [row["sentence"] for row in by_doc["code"]] == ["x = [1, 2, 3]  # no sentence here at all, only code"]
    assert by_doc["empty"] == []  # nothing to write a query about
    assert len({row["_meta"]["id"] for row in rows}) == len(rows)
    for row in by_doc["obesity"]:
        assert row["sentence"] in focus_sentences(ABSTRACT)
        assert row["document"] == f"Sugary drinks and weight. {ABSTRACT}"  # whole: the copy rule checks every sentence
        assert row["title"] == "Sugary drinks and weight"
    assert len({row["sentence"] for row in by_doc["obesity"]}) == 3
    # Two styles ask about the same drawn sentences.
    both = _corpus_rows(tmp_path, focus="sentence", sentences_per_doc=2, styles=["claim", "question"])
    obesity = [row for row in both if row["doc_id"] == "obesity"]
    assert [row["sentence"] for row in obesity if row["style"] == "claim"] == [row["sentence"] for row in obesity if row["style"] == "question"]
    # Seeded: the same draw on a rerun, and asking for more sentences keeps the ones drawn before
    # (same ids, same prompts: served from the request cache).
    assert _corpus_rows(tmp_path, focus="sentence", sentences_per_doc=3) == rows
    fewer = _corpus_rows(tmp_path, focus="sentence", sentences_per_doc=1)
    assert all(row in rows for row in fewer)


def test_the_teacher_reads_title_and_sentence_or_the_whole_document(tmp_path):
    from synthwright.recipes.template import TemplatePrompt

    prompt = TemplatePrompt(source=DOC_QUERY_PROMPT, name="queries.prompt")
    focused = _corpus_rows(tmp_path, focus="sentence")[0]
    text = prompt.render(focused)
    assert text == f"{focused['instruction']}\n\nPaper: Sugary drinks and weight\nFinding: {focused['sentence']}"
    assert "Obesity is a growing problem" not in text
    untitled = next(row for row in _corpus_rows(tmp_path, focus="sentence", styles=["question"]) if row["doc_id"] == "bees")
    assert "Paper:" not in prompt.render(untitled) and "\nSentence: " in prompt.render(untitled)
    # Document focus renders exactly the prompt of earlier versions, so their cached answers still
    # count; so do rows from elsewhere that have only the two columns it needs.
    whole = _corpus_rows(tmp_path)[0]
    assert prompt.render(whole) == f"{whole['instruction']}\n\nPassage: {whole['document']}"
    assert prompt.render({"instruction": "I", "document": "D"}) == "I\n\nPassage: D"


def test_doc_queries_needs_only_instruction_and_document(tmp_path):
    from synthwright.core.step import StepContext
    from synthwright.reranker.steps import DocQueriesOptions, DocQueriesStep

    step = DocQueriesStep("queries", DocQueriesOptions(), StepContext(workdir=tmp_path))
    assert set(step.required_columns()) == {"instruction", "document"}


def test_sentences_per_doc_without_sentence_focus_is_an_error(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="focus: sentence"):
        CorpusOptions(corpus="c.jsonl", sentences_per_doc=2)
    result = run_cli("reranker", "--corpus", "pydoc:topics", "--sentences-per-doc", "2", "--run-dir", str(tmp_path / "run"), timeout=60)
    assert_one_clear_error(result, "--sentences-per-doc", "--focus sentence")


# -- the pipeline the CLI writes ----------------------------------------------------------------
def test_reranker_steps_validate_and_follow_the_flags():
    from synthwright.cli.reranker import reranker_steps
    from synthwright.pipeline.config import validate_pipeline

    common = {"teacher": "llamacpp:smollm2-135m", "styles": ["question", "claim"], "documents": 10, "budget": 40,
              "candidates": 5, "pairs_per_query": 8, "student": "bi", "epochs": 1.0, "max_length": 64}
    steps = reranker_steps("pydoc:topics", eval_queries="/q.jsonl", eval_qrels="/r.tsv", **common)
    by_name = {step["name"]: step for step in steps}
    assert list(by_name) == ["documents", "queries", "unique", "first_stage", "candidates", "judged", "labels", "dataset", "student",
                             "evaluation", "report"]
    # The first stage is chosen by data by default, and candidates and evaluation follow the choice.
    assert by_name["first_stage"]["with"]["retriever"] == "auto"
    assert by_name["candidates"]["with"]["retriever"] == by_name["evaluation"]["with"]["first_stage"] == "chosen"
    styled = reranker_steps("pydoc:topics", eval_queries=None, eval_qrels=None, style_examples="/style.tsv", first_stage="dense", **common)
    styled_names = [step["name"] for step in styled]
    assert styled_names[:5] == ["documents", "queries", "unique", "register", "first_stage"]
    assert styled[0]["with"]["style_examples"] == styled[3]["with"]["style_examples"] == "/style.tsv"
    assert styled[4]["with"]["retriever"] == "dense"
    validate_pipeline({"name": "reranker", "steps": styled}, source="test")
    assert by_name["judged"]["with"]["llm_pairs_per_query"] == pytest.approx(40 / 20)  # budget over 10 docs x 2 styles
    assert by_name["judged"]["with"]["judges"] == ["bm25", "embedding", "llamacpp:smollm2-135m"]
    assert by_name["student"]["with"]["kind"] == "bi"
    validate_pipeline({"name": "reranker", "steps": steps}, source="test")
    without_eval = reranker_steps("pydoc:topics", eval_queries=None, eval_qrels=None, **common)
    assert "evaluation" not in {step["name"] for step in without_eval}
    assert all(None not in step.get("with", {}).values() for step in without_eval)
    assert "focus" not in by_name["documents"]["with"]  # the default stays out of the YAML
    focused = reranker_steps("pydoc:topics", eval_queries=None, eval_qrels=None, focus="sentence", sentences_per_doc=3, **common)
    documents = focused[0]["with"]
    assert (documents["focus"], documents["sentences_per_doc"]) == ("sentence", 3)
    assert "base_weight" not in by_name["student"]["with"]  # the default stays out of the YAML
    interpolated = reranker_steps("pydoc:topics", eval_queries=None, eval_qrels=None, base_weight=0.7, **common)
    assert next(step for step in interpolated if step["name"] == "student")["with"]["base_weight"] == 0.7
    judged = next(step for step in focused if step["name"] == "judged")
    assert judged["with"]["llm_pairs_per_query"] == pytest.approx(40 / 60, abs=1e-4)  # 10 docs x 2 styles x 3 sentences
    validate_pipeline({"name": "reranker", "steps": focused}, source="test")



@pytest.mark.parametrize("documents, corpus_size, queries", [(None, 12, 12), (None, None, 100), (10, 5000, 10), (50, 12, 12)])
def test_llm_budget_is_spread_over_the_queries_there_will_be(documents, corpus_size, queries):
    from synthwright.cli.reranker import reranker_steps

    steps = reranker_steps("c.jsonl", teacher="t", styles=["question"], documents=documents, budget=6, candidates=4,
                           pairs_per_query=6, student="cross", epochs=1.0, max_length=64, eval_queries=None,
                           eval_qrels=None, corpus_size=corpus_size)
    judged = next(step for step in steps if step["name"] == "judged")
    assert judged["with"]["llm_pairs_per_query"] == pytest.approx(6 / queries, abs=1e-4)


def test_a_retrained_student_reruns_the_evaluation_and_the_report(tmp_path):
    """The stages after the student read the step before them, so their fingerprints follow
    the student's options (a folder mtime would be planned before the student exists)."""
    from synthwright.cli.reranker import reranker_steps
    from synthwright.core.step import StepContext
    from synthwright.pipeline.config import validate_pipeline
    from synthwright.pipeline.plan import plan_pipeline

    def fingerprints(epochs: float) -> dict[str, str]:
        steps = reranker_steps("pydoc:topics", teacher="llamacpp:smollm2-135m", styles=["question"], documents=4, budget=4,
                               candidates=4, pairs_per_query=6, student="cross", epochs=epochs, max_length=64,
                               eval_queries="/q.jsonl", eval_qrels="/r.tsv", real_queries="/rq.jsonl", real_qrels="/rr.tsv")
        config = validate_pipeline({"name": "reranker", "steps": steps}, source="test")
        return {p.step.name: p.fingerprint for p in plan_pipeline(config, StepContext(workdir=tmp_path))}

    before, after = fingerprints(1.0), fingerprints(2.0)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"student", "student_real", "evaluation", "report"}

# -- CLI: bad input, one clear error ------------------------------------------------------------
def test_cli_eval_queries_without_qrels(tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "1", "text": "bees"}\n', encoding="utf-8")
    result = run_cli("reranker", "--corpus", "pydoc:topics", "--eval-queries", str(queries), "--run-dir", str(tmp_path / "run"), timeout=60)
    assert_one_clear_error(result, "--eval-queries and --eval-qrels together")
    assert not (tmp_path / "run").exists()


def test_cli_unknown_style(tmp_path):
    result = run_cli("reranker", "--corpus", "pydoc:topics", "--style", "poem", "--run-dir", str(tmp_path / "run"), timeout=60)
    assert_one_clear_error(result, "Unknown query style 'poem'")


def test_cli_missing_corpus(tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = run_cli("reranker", "--corpus", str(missing), "--budget", "0", "--run-dir", str(tmp_path / "run"), timeout=60)
    assert_one_clear_error(result, str(missing), "does not exist")


def test_base_weight_needs_a_bi_encoder_student(tmp_path):
    from pydantic import ValidationError

    assert StudentOptions(corpus="c.jsonl", kind="bi", base_weight=0.7).base_weight == 0.7
    with pytest.raises(ValidationError, match="kind: bi only"):
        StudentOptions(corpus="c.jsonl", kind="cross", base_weight=0.7)
    result = run_cli("reranker", "--corpus", "pydoc:topics", "--base-weight", "0.7", "--run-dir", str(tmp_path / "run"), timeout=60)
    assert_one_clear_error(result, "--base-weight", "--student bi")
    assert not (tmp_path / "run").exists()


def test_student_options_give_the_training_settings():
    options = StudentOptions(corpus="c.jsonl", kind="bi", epochs=2.0, batch_size=8, learning_rate=1e-5, max_length=96,
                             negatives=3, base_weight=0.5)
    settings = options.settings(seed=11)
    assert (settings.kind, settings.epochs, settings.batch_size, settings.learning_rate) == ("bi", 2.0, 8, 1e-5)
    assert (settings.max_length, settings.negatives, settings.seed, settings.base_weight) == (96, 3, 11, 0.5)


def test_row_labels_recovered_or_binary():
    row = {"doc_id": "s", "candidates": ["a", "b"], "labels": [{"doc_id": "s", "label": 0.9}, {"doc_id": "a", "label": 0.6}]}
    assert row_labels(row) == {"s": 0.9, "a": 0.6}
    assert row_labels(row, "binary") == {"s": 1.0, "a": 0.0, "b": 0.0}


def test_the_example_yaml_pipeline_plans():
    """examples/reranker.yaml (the YAML form of `make demo`) loads and plans without a model."""
    from pathlib import Path

    from synthwright.core.step import StepContext
    from synthwright.pipeline.config import load_pipeline
    from synthwright.pipeline.plan import plan_pipeline

    path = Path(__file__).resolve().parent.parent / "examples" / "reranker.yaml"
    plan = plan_pipeline(load_pipeline(path), StepContext(workdir=path.parent))
    assert [p.step.type_name for p in plan] == [
        "corpus", "doc_queries", "dedup", "candidates", "pair_judge", "recover_labels", "export",
        "train_student", "evaluate_reranker", "reranker_report"]


# -- human calibration sample -------------------------------------------------------------------
CAL_DOCS = {
    "bees": "Honey bees live in colonies ruled by a single queen. Worker bees collect nectar and make honey.",
    "wasps": "Wasps build paper nests and hunt other insects; unlike bees they make no honey.",
    "ants": "Ants live in colonies with a queen and workers that forage for food.",
    "tides": "Tides are caused by the gravitational pull of the Moon and the Sun on the oceans.",
    "moon": "The Moon orbits the Earth every 27 days and always shows the same face.",
    "rust": "Iron rusts when it reacts with oxygen and water to form iron oxide.",
    "bread": "Bread dough rises because yeast ferments sugar and releases carbon dioxide.",
    "owls": "Owls hunt at night using excellent hearing and silent flight.",
}
CAL_QUERIES = {"q1": "how do bees make honey", "q2": "what causes ocean tides", "q3": "why does iron rust"}
CAL_QRELS = {"q1": {"bees": 1}, "q2": {"tides": 1}, "q3": {"rust": 1}}


def test_calibration_sample_measures_each_member_on_real_labels():
    from synthwright.core.step import StepContext
    from synthwright.ranking.retrieval import Retriever
    from synthwright.reranker.calibration import CalibrationOptions, calibrate_members, calibration_rows, known_answers
    from synthwright.reranker.judging import judge_batch

    corpus = {doc: {"_id": doc, "title": "", "text": text} for doc, text in CAL_DOCS.items()}
    rows = calibration_rows(CAL_QUERIES, CAL_QRELS, Retriever(corpus), style="question", seed=0)
    assert [row["query_id"] for row in rows] == ["q1", "q2", "q3"]
    for row in rows:
        relevant = next(iter(CAL_QRELS[row["query_id"]]))
        assert row["doc_id"] == relevant and len(row["candidates"]) == 2 and relevant not in row["candidates"]
        assert len(row["bm25"]) == len(row["dense"]) == 3
    judged, usage = judge_batch(rows, CalibrationOptions(["bm25", "embedding"]), StepContext(), "calibration", CAL_DOCS)
    assert usage == []
    # Every pair sets the relevant document against one negative, and every member judged it.
    assert all(len(row["comparisons"]) == 2 for row in judged)
    assert all(row["doc_id"] in (c["a"], c["b"]) and set(c["by"]) == {"bm25", "embedding"} for row in judged for c in row["comparisons"])
    assert len(known_answers(judged)) == 6
    report = calibrate_members(judged, ["bm25", "embedding"])
    assert report["queries"] == 3 and report["pairs"] == 6
    for member in ("bm25", "embedding"):
        figures = report["members"][member]
        assert figures["anchor_pairs"] == 6 and 0.0 <= figures["accuracy"] <= 1.0
        assert figures["accuracy"] == pytest.approx((figures["accuracy_hard"] + figures["accuracy_medium"]) / 2)
    # MiniLM gets these easy questions right against the medium negative.
    assert report["members"]["embedding"]["accuracy_medium"] == 1.0


def test_recover_labels_takes_member_weights_from_the_calibration_report(tmp_path):
    from synthwright.core.step import StepContext
    from synthwright.reranker.steps import RecoverLabelsStage, RecoverOptions

    context = StepContext(workdir=tmp_path, run_dir=tmp_path)
    (tmp_path / "calibration.json").write_text(json.dumps({"members": {"llm": {"weight": 2.5}, "bm25": {"weight": 0.0}}}))
    stage = RecoverLabelsStage("labels", RecoverOptions(calibration="calibration.json", report="report.json"), context)
    result = stage.run(simulated_rows(3))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["weights"] == {"bm25": 0.0, "llm": 2.5} and report["weights_from"] == "calibration sample"
    assert len(result.kept) == 3

    missing = RecoverLabelsStage("labels", RecoverOptions(calibration="nope.json"), context)
    with pytest.raises(UserError, match="calibrate_judges"):
        missing.run(simulated_rows(1))


def test_reranker_steps_with_calibration_and_the_teacher_row():
    from synthwright.cli.reranker import reranker_steps
    from synthwright.pipeline.config import validate_pipeline

    steps = reranker_steps("pydoc:topics", teacher="llamacpp:smollm2-135m", styles=["claim"], documents=10, budget=10,
                           candidates=5, pairs_per_query=8, student="bi", epochs=1.0, max_length=64, eval_queries="/q.jsonl",
                           eval_qrels="/r.tsv", teacher_queries=20, calibration_queries="/t.jsonl", calibration_qrels="/t.tsv",
                           calibration_limit=40, rewrite=True)
    by_name = {step["name"]: step for step in steps}
    assert list(by_name) == ["documents", "queries", "rewritten", "unique", "first_stage", "candidates", "judged", "labels", "dataset", "student",
                             "calibration", "labels_calibrated", "student_calibrated", "evaluation", "report"]
    assert by_name["judged"]["with"]["llm_pairs_per_query"] == pytest.approx(10 / 20)  # rewrites double the queries
    assert by_name["calibration"]["with"]["limit"] == 40 and by_name["calibration"]["with"]["style"] == "claim"
    assert by_name["labels_calibrated"]["with"]["calibration"] == "calibration.json"
    evaluation = by_name["evaluation"]["with"]
    assert evaluation["students"] == {"student": "student/model", "student (calibrated weights)": "student_calibrated/model"}
    assert (evaluation["teacher"], evaluation["teacher_queries"], evaluation["teacher_style"]) == ("llamacpp:smollm2-135m", 20, "claim")
    validate_pipeline({"name": "reranker", "steps": steps}, source="test")
    by_name["calibration"]["with"]["limit"] = 51  # the method's limit: at most 50 labelled queries
    with pytest.raises(UserError, match="limit"):
        validate_pipeline({"name": "reranker", "steps": steps}, source="test")


def test_report_shows_the_calibration_sample(tmp_path):
    from synthwright.reranker.report import _calibration_section

    assert _calibration_section(tmp_path) == ""  # no calibration step in the run
    member = {"anchor_pairs": 100, "accuracy": 0.71, "accuracy_hard": 0.6, "accuracy_medium": 0.82, "weight": 0.9, "first_wins": None}
    (tmp_path / "calibration.json").write_text(json.dumps({"queries": 50, "pairs": 100, "members": {"<bm25>": member}}))
    html = _calibration_section(tmp_path)
    assert "&lt;bm25&gt;" in html and "<bm25>" not in html  # names from data are escaped
    assert "0.71" in html and "0.82" in html and "50 queries, 100 pairs" in html


def test_report_counts_round_trip_drops_whatever_the_retrieval_step_is_called(tmp_path):
    from synthwright.core.step import BatchResult
    from synthwright.pipeline.rundir import RunDirectory
    from synthwright.reranker.report import render

    rundir = RunDirectory(tmp_path)
    rundir.write_manifest({"name": "p", "config": {"steps": [{"name": "retrieval"}, {"name": "report"}]}})
    rundir.start_step("retrieval", "f", None)
    result = BatchResult.for_input(5)
    result.kept = [{"query": "q", "doc_id": "d", "source_rank": 1}] * 2
    result.stats.rows_out = 2
    for _ in range(3):
        result.drop({"query": "lost", "doc_id": "d", "source_rank": 40}, "not_round_trip")
    rundir.write_batch("retrieval", 0, result)
    rundir.finish_step("retrieval")
    html = render(tmp_path, result.kept, "t")
    assert "for 2 of 2 kept queries (100%)" in html and "3 more were dropped" in html
    assert "not_round_trip 3" in html  # the data table, from the same stats


def test_report_shows_how_hard_the_queries_are_and_a_sample_of_them():
    from synthwright.reranker.report import _queries_section

    assert _queries_section([{"query": "q"}]) == ""  # rows without a retrieval check
    rows = [{"query": f"<claim {i}>", "doc_id": f"d{i}", "sentence": f"sentence {i}", "source_rank": 1 if i < 3 else 4,
             "labels": [{"doc_id": f"d{i}", "label": 0.9}, {"doc_id": "x", "label": 0.25}]} for i in range(4)]
    html = _queries_section(rows, not_round_trip=2)
    assert "first from the hybrid retriever for 3 of 4 kept queries (75%)" in html and "2 more were dropped" in html
    assert "&lt;claim 3&gt;" in html and "<claim" not in html  # every sampled row, escaped
    assert "sentence 0" in html and "0.900" in html and "0.250" in html


def test_calibration_with_qrels_of_another_corpus_is_a_clear_error(tmp_path):
    from synthwright.core.step import StepContext
    from synthwright.reranker.steps import CalibrateJudgesStage, CalibrateOptions

    corpus, queries, qrels = tmp_path / "corpus.jsonl", tmp_path / "queries.jsonl", tmp_path / "qrels.tsv"
    corpus.write_text("".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in CAL_DOCS.items()))
    queries.write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in CAL_QUERIES.items()))
    qrels.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\tnot-in-corpus-{q}\t1\n" for q in CAL_QUERIES))
    options = CalibrateOptions(corpus=str(corpus), queries=str(queries), qrels=str(qrels), judges=["bm25", "embedding"])
    stage = CalibrateJudgesStage("calibration", options, StepContext(workdir=tmp_path, run_dir=tmp_path))
    with pytest.raises(UserError, match="relevant document in the corpus"):
        stage.run([])


def test_all_members_at_weight_zero_is_a_clear_error(tmp_path):
    from synthwright.core.step import StepContext
    from synthwright.reranker.steps import RecoverLabelsStage, RecoverOptions

    stage = RecoverLabelsStage("labels", RecoverOptions(weights={"llm": 0.0, "bm25": 0.0}, report=None), StepContext(workdir=tmp_path))
    with pytest.raises(UserError, match="weight 0"):
        stage.run(simulated_rows(2))


def test_cli_teacher_rerank_without_evaluation_queries(tmp_path):
    result = run_cli("reranker", "--corpus", "pydoc:topics", "--teacher-rerank", "5", "--run-dir", str(tmp_path / "run"), timeout=60)
    assert_one_clear_error(result, "--teacher-rerank", "--eval-queries")


def test_cli_teacher_likelihood_over_a_chat_server_is_refused_before_any_work(tmp_path):
    queries, qrels = tmp_path / "q.jsonl", tmp_path / "r.tsv"
    queries.write_text('{"_id": "q1", "text": "what is a loop"}\n')
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tfor\t1\n")
    result = run_cli("reranker", "--corpus", "pydoc:topics", "--teacher", "openai:m@http://127.0.0.1:9/v1", "--teacher-rerank", "5",
                     "--eval-queries", str(queries), "--eval-qrels", str(qrels), "--run-dir", str(tmp_path / "run"), timeout=60)
    assert_one_clear_error(result, "likelihood", "--teacher-rerank-method yes_no")
    assert not (tmp_path / "run" / "pipeline.yaml").exists()


def test_teacher_rerank_options_pick_the_method():
    from synthwright.reranker.steps import EvaluateOptions
    from synthwright.reranker.teacher import TeacherRerank

    assert EvaluateOptions(corpus="c", queries="q", qrels="r", teacher="llamacpp:smollm2-135m").teacher_method == "likelihood"
    assert EvaluateOptions(corpus="c", queries="q", qrels="r", teacher="openai:m@http://h/v1", teacher_method="yes_no").teacher_method == "yes_no"
    with pytest.raises(UserError, match="log-probabilities"):
        TeacherRerank("openai:m@http://h/v1")
    with pytest.raises(UserError, match="likelihood, yes_no"):
        TeacherRerank("llamacpp:smollm2-135m", method="logits")
    assert TeacherRerank("openai:m@http://h/v1", method="yes_no").label == "P(yes)"


def test_teacher_likelihood_rerank_puts_the_document_that_predicts_the_query_first(tmp_path):
    """The tiny model as a query-likelihood reranker over obvious cases: each query's own
    document is shown last among three, and must come first; documents past the depth keep
    their order below."""
    from synthwright.core.step import StepContext
    from synthwright.reranker.teacher import TeacherRerank, teacher_rerank

    texts = {"bread": "Bread dough rises because yeast ferments sugar and releases carbon dioxide.",
             "owls": "Owls hunt at night using excellent hearing and silent flight.",
             "tides": "Tides are caused by the gravitational pull of the Moon and the Sun on the oceans.",
             "chess": "In chess, the opening is the first phase of the game."}
    queries = {"q1": "why does bread dough rise", "q2": "what causes ocean tides", "q3": "how do owls fly silently"}
    own = {"q1": "bread", "q2": "tides", "q3": "owls"}
    first_stage = {q: [(d, 0.0) for d in [*(x for x in ("bread", "owls", "tides") if x != own[q]), own[q], "chess"]] for q in queries}
    setup = TeacherRerank("llamacpp:smollm2-135m", depth=3, context=StepContext(cache_file=tmp_path / "cache.sqlite"))
    runs, usage, failed = teacher_rerank(setup, queries, first_stage, texts)
    assert failed == 0 and usage.sent == 9
    for qid, ranking in runs.items():
        assert ranking[0][0] == own[qid], (qid, ranking)
        assert ranking[-1][0] == "chess" and ranking[-1][1] < ranking[-2][1]


def test_a_likelihood_member_scores_each_document_once_and_its_votes_compose(tmp_path):
    """judge_batch with `likelihood:MODEL` among the members, on two obvious queries: one
    request per (query, document) the chosen pairs name, not two per pair; each pair's vote is
    sigmoid of a score difference, so votes around a triangle agree; the source wins."""
    from synthwright.core.step import StepContext
    from synthwright.reranker.calibration import CalibrationOptions
    from synthwright.judges.members import likelihood_member_name
    from synthwright.reranker.judging import judge_batch

    texts = {"bread": "Bread dough rises because yeast ferments sugar and releases carbon dioxide.",
             "tides": "Tides are caused by the gravitational pull of the Moon and the Sun on the oceans.",
             "owls": "Owls hunt at night using excellent hearing and silent flight.",
             "chess": "In chess, the opening is the first phase of the game."}
    rows = [{"query_id": "q1", "query": "why does bread dough rise", "doc_id": "bread", "candidates": ["owls", "chess"],
             "bm25": [3.0, 0.5, 0.1], "dense": [0.8, 0.2, 0.1], "style": "question"},
            {"query_id": "q2", "query": "what causes ocean tides", "doc_id": "tides", "candidates": ["chess", "owls"],
             "bm25": [2.0, 0.4, 0.3], "dense": [0.7, 0.1, 0.2], "style": "question"}]
    spec = "likelihood:llamacpp:smollm2-135m"
    options = CalibrationOptions(["bm25", spec], pairs_per_query=3, llm_pairs_per_query=3.0)
    judged, usage = judge_batch(rows, options, StepContext(cache_file=tmp_path / "c.sqlite"), "judged", texts)
    name = likelihood_member_name("llamacpp:smollm2-135m")
    assert sum(u.sent for u in usage) == 6, "three documents a query, each scored once for its three pairs"
    logit = lambda p: math.log(p / (1 - p))
    for row in judged:
        votes = {(c["a"], c["b"]): c["by"][name] for c in row["comparisons"]}
        assert len(votes) == 3 and all("first" not in c for c in row["comparisons"])
        source, (x, y) = row["doc_id"], row["candidates"]
        p = lambda a, b: votes[(a, b)] if (a, b) in votes else 1 - votes[(b, a)]
        assert p(source, x) > 0.5 and p(source, y) > 0.5, votes
        assert logit(p(source, x)) == pytest.approx(logit(p(source, y)) + logit(p(y, x)), abs=1e-6)


def test_cli_judge_by_likelihood_needs_a_llamacpp_teacher(tmp_path):
    result = run_cli("reranker", "--corpus", "pydoc:topics", "--teacher", "openai:m@http://127.0.0.1:9/v1", "--judge-method", "likelihood",
                     "--run-dir", str(tmp_path / "run"), timeout=60)
    assert_one_clear_error(result, "likelihood:openai:m@http://127.0.0.1:9/v1", "likelihood:llamacpp:MODEL")


def test_the_likelihood_prompt_is_in_the_fingerprint_of_the_steps_that_use_it(monkeypatch):
    """An edited likelihood prompt reruns the steps that score with it, and only those: a
    pairwise-only judging step keeps its fingerprint."""
    from synthwright.core.step import StepContext
    from synthwright.reranker import teacher
    from synthwright.reranker.steps import EvaluateRerankerStage, PairJudgeStep

    def extras():
        ctx = StepContext()
        pairwise = PairJudgeStep("j", PairJudgeStep.Options(corpus="pydoc:topics", judges=["bm25", "llamacpp:smollm2-135m"]), ctx)
        likelihood = PairJudgeStep("j", PairJudgeStep.Options(corpus="pydoc:topics", judges=["bm25", "likelihood:llamacpp:smollm2-135m"]), ctx)
        evaluation = EvaluateRerankerStage("e", EvaluateRerankerStage.Options(corpus="pydoc:topics", queries="q", qrels="r",
                                                                              teacher="llamacpp:smollm2-135m"), ctx)
        return [json.dumps(step.fingerprint_extra(), sort_keys=True, default=str) for step in (pairwise, likelihood, evaluation)]

    before = extras()
    monkeypatch.setitem(teacher.LIKELIHOOD_INSTRUCTIONS, "question", "Write a question about this passage.")
    after = extras()
    assert before[0] == after[0], "a pairwise-only step does not depend on the likelihood prompt"
    assert before[1] != after[1] and before[2] != after[2]


def test_a_blank_query_gets_no_likelihood_score_instead_of_stopping_the_step(tmp_path):
    from synthwright.core.step import StepContext
    from synthwright.reranker.teacher import query_likelihoods

    items = [("  ", "Owls hunt at night.", "question"), ("owls at night", "Owls hunt at night.", "question")]
    scores, usage = query_likelihoods("llamacpp:smollm2-135m", items, max_chars=200, context=StepContext(cache_file=tmp_path / "c.sqlite"))
    assert scores[0] is None and scores[1] is not None and scores[1] < 0 and usage.sent == 1
