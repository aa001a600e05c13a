"""Evaluation on real queries with real relevance judgments (BEIR qrels).

Systems, all over the same corpus: BM25, dense (MiniLM), hybrid (RRF of both), the student
reranking the hybrid top `depth`, hybrid + student fused by RRF, and BM25 + student by RRF
(the student in the dense model's place); a bi-encoder student also retrieves over the whole
corpus, alone and fused by RRF with the first stage's own retrieval. RRF has no weight to
tune, so nothing is fitted on the evaluation queries. The control puts the untrained base model (MiniLM) where the student
stands in BM25 + student, same candidates and same fusion, so the student's own contribution is
its gain over the control, not over hybrid: on SciFact dev the fusion structure alone moves
hybrid by up to +-0.01, as much as most students did. The control is MiniLM as a bi-encoder
whatever the student's kind. Optionally the teacher itself as a pointwise reranker of the hybrid
top 10 (reranker/teacher.py), the quality ceiling at its cost: one LLM call per document, so it
runs on a seeded sample of the queries and is compared with hybrid on that same sample. Every
gain over hybrid comes with a paired bootstrap interval.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthwright.core.progress import Phase, ProgressFactory
from synthwright.errors import UserError
from synthwright.ranking.first_stage import LABELS
from synthwright.reranker.corpus import corpus_texts, first_stage_runs, open_corpus, shared_retriever
from synthwright.reranker.student import QueryLabels

if TYPE_CHECKING:
    from synthwright.reranker.teacher import TeacherRerank

METRICS = ("ndcg@10", "mrr@10", "recall@100")
BASELINES = {"bm25": "BM25", "dense": "dense (MiniLM)", "hybrid": "hybrid (RRF)"}


def read_queries(path: str | Path) -> dict[str, str]:
    from synthwright.io.rows import read_jsonl

    path = Path(path)
    path = path / "queries.jsonl" if path.is_dir() else path
    return {str(row["_id"]): row["text"] for row in read_jsonl(path)}


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    from synthwright.ranking.retrieval import read_qrels as read

    if not Path(path).is_file():
        raise UserError(f"Qrels file '{path}' does not exist.", "Give a BEIR qrels TSV (query-id, corpus-id, score).")
    return read(path)


def judged_queries(queries_path, qrels_path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The queries the qrels judge, and the qrels."""
    queries, qrels = read_queries(queries_path), read_qrels(qrels_path)
    picked = {qid: queries[qid] for qid in qrels if qid in queries}
    if not picked:
        raise UserError(f"No query in '{queries_path}' is judged in '{qrels_path}'.", "Check that the ids match.")
    return picked, {qid: qrels[qid] for qid in picked}


def real_label_groups(queries_path, qrels_path, corpus_spec: str, *, limit: int | None = None, negatives: int = 7, seed: int = 0,
                      first_stage: str = "hybrid") -> list[QueryLabels]:
    """Real queries with real labels: judged documents 1, the first stage's top non-judged ones 0."""
    queries, qrels = judged_queries(queries_path, qrels_path)
    queries = sample_queries(queries, limit or len(queries), seed)
    ids = list(queries)
    found = shared_retriever(corpus_spec).hybrid(list(queries.values()), negatives + 10)
    runs = {qid: hits.ranking(first_stage) for qid, hits in zip(ids, found)}
    groups = []
    for qid in ids:
        labels = {doc: 1.0 for doc, grade in qrels[qid].items() if grade > 0}
        negative = [doc for doc, _ in runs[qid] if doc not in qrels[qid]][:negatives]
        groups.append(QueryLabels(queries[qid], {**labels, **{doc: 0.0 for doc in negative}}))
    return groups


def sample_queries(queries: Mapping[str, str], n: int, seed: int) -> dict[str, str]:
    """A seeded sample of n queries (all when n covers them), in id order."""
    import random

    ids = sorted(queries)
    if n < len(ids):
        ids = sorted(random.Random(seed).sample(ids, n))
    return {qid: queries[qid] for qid in ids}


@dataclass
class Evaluation:
    table: dict[str, dict[str, float]]  # system -> metric -> value
    gains: dict[str, dict[str, float]] = field(default_factory=dict)  # system -> bootstrap of its gain over the first stage
    over_control: dict[str, dict[str, float]] = field(default_factory=dict)  # BM25 + student -> its gain over BM25 + control
    seconds: dict[str, float] = field(default_factory=dict)
    queries: int = 0
    notes: list[str] = field(default_factory=list)
    llm_usage: list = field(default_factory=list)  # UsageTotals of LLM rerankers, for the step's accounting
    first_stage: str = "hybrid"  # what the students rerank, and what every gain is measured over
    baseline: str = BASELINES["hybrid"]

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "llm_usage"}


def rerank(student, queries: Mapping[str, str], first_stage: Mapping[str, list], texts: Mapping[str, str], depth: int,
           progress: ProgressFactory | None = None, name: str = "student") -> dict[str, list]:
    """The student's order over the first stage's top `depth`; the rest keeps its order below."""
    qids = list(first_stage)
    tops = [[doc for doc, _ in first_stage[qid][:depth]] for qid in qids]
    query_texts = [queries[qid] for qid in qids]
    if hasattr(student, "score_ids"):  # a bi-encoder over the corpus: documents encoded once, cached
        all_scores = student.score_ids(query_texts, tops)
    elif hasattr(student, "score_many"):  # a bi-encoder embeds each document once for all queries
        all_scores = student.score_many(query_texts, [[texts[doc] for doc in top] for top in tops])
    else:
        all_scores = []
        with Phase(progress, f"{name}: rerank top {depth} of {len(qids)} queries", len(qids), "queries") as phase:
            for query, top in zip(query_texts, tops):
                all_scores.append(student.score(query, [texts[doc] for doc in top]))
                phase.advance()
    out = {}
    for qid, top, scores in zip(qids, tops, all_scores):
        head = sorted(zip(top, scores), key=lambda item: -item[1])
        floor = min(scores, default=0.0) - 1.0
        out[qid] = head + [(doc, floor - i) for i, (doc, _) in enumerate(first_stage[qid][depth:], 1)]
    return out


def fuse(first_stage: Mapping[str, list], reranked: Mapping[str, list], depth: int) -> dict[str, list]:
    """RRF of the first stage and the student over the top `depth`; the tail keeps its order."""
    from synthwright.ranking.retrieval import reciprocal_rank_fusion

    out = {}
    for qid, ranking in first_stage.items():
        head = reciprocal_rank_fusion((ranking[:depth], reranked[qid][:depth]), depth)
        floor = min((s for _, s in head), default=0.0)
        out[qid] = head + [(doc, floor - i * 1e-6) for i, (doc, _) in enumerate(ranking[depth:], 1)]
    return out


def fuse_retrievers(first_stage: Mapping[str, list], retrieved: Mapping[str, list], k: int = 100) -> dict[str, list]:
    """RRF of two retrievers' own top k over the whole corpus: a document either one finds can
    rise, where the reranking fusion keeps to the first stage's candidates."""
    from synthwright.ranking.retrieval import reciprocal_rank_fusion

    return {qid: reciprocal_rank_fusion((ranking[:k], retrieved[qid][:k]), k) for qid, ranking in first_stage.items()}


def rerank_label(student_name: str, first_stage: str, depth: int) -> str:
    # Hybrid keeps the name every earlier report used.
    return f"{student_name}: rerank top {depth}" if first_stage == "hybrid" else f"{student_name}: rerank {first_stage} top {depth}"


def retriever_label(student_name: str) -> str:
    return f"{student_name}: retriever (whole corpus, exact)"


def fused_retriever_label(student_name: str, first_stage: str) -> str:
    return f"{LABELS[first_stage]} + {student_name} as retriever (RRF)"


def evaluate_students(
    corpus_spec: str,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    students: Mapping[str, Any],
    *,
    depth: int = 30,
    first_stage: str = "hybrid",
    resamples: int = 2000,
    seed: int = 0,
    progress: ProgressFactory | None = None,
    teacher: TeacherRerank | None = None,
    control: tuple[str, Any] | None = None,
) -> Evaluation:
    """Baselines and each student (name -> scorer: StudentReranker, BiEncoderOverCorpus, or
    anything with `score(query, documents)`) on the real queries. The students rerank the top
    `depth` of `first_stage` (bm25, dense or hybrid), and every gain is measured over it; a
    scorer with `search` is also evaluated as a retriever over the whole corpus. `control` is
    (name, scorer) of the untrained base model, put in each student's place in BM25 + student."""
    from synthwright.ranking import evaluate

    texts = corpus_texts(open_corpus(corpus_spec))
    seconds = {}
    started = time.perf_counter()
    found = first_stage_runs(corpus_spec, queries, depth=1000, keep=1000, progress=progress)
    runs = {BASELINES[method]: {qid: ranking[:100] for qid, ranking in found[method].items()} for method in BASELINES}
    lexical = [found["bm25"][qid] for qid in queries]
    seconds["first stage"] = time.perf_counter() - started
    base = runs[BASELINES[first_stage]]
    for name, student in students.items():
        started = time.perf_counter()
        reranked = rerank(student, queries, base, texts, depth, progress, name)
        seconds[name] = time.perf_counter() - started
        runs[rerank_label(name, first_stage, depth)] = reranked
        runs[f"{LABELS[first_stage]} + {name} (RRF)"] = fuse(base, reranked, depth)
        if first_stage != "bm25":  # the student in the dense model's place: RRF of BM25 and the student's order
            runs[bm25_plus_label(name)] = _bm25_plus(lexical, reranked, queries, depth)
        if hasattr(student, "search"):
            started = time.perf_counter()
            retrieved = dict(zip(queries, student.search(list(queries.values()), 100)))
            seconds[retriever_label(name)] = time.perf_counter() - started
            runs[retriever_label(name)] = retrieved
            runs[fused_retriever_label(name, first_stage)] = fuse_retrievers(base, retrieved)
    control_run = None
    if control is not None and students and first_stage != "bm25":
        control_name, scorer = control
        started = time.perf_counter()
        control_run = _bm25_plus(lexical, rerank(scorer, queries, base, texts, depth, progress, control_name), queries, depth)
        seconds[f"control ({control_name})"] = time.perf_counter() - started
        runs[control_label(control_name)] = control_run
    table = {name: evaluate(run, qrels, METRICS) for name, run in runs.items()}
    gains = {name: _gain(base, run, qrels, resamples, seed) for name, run in runs.items() if name not in BASELINES.values()}
    over_control = ({bm25_plus_label(name): _gain(control_run, runs[bm25_plus_label(name)], qrels, resamples, seed) for name in students}
                    if control_run is not None else {})
    evaluation = Evaluation(table, gains, over_control, seconds, len(queries), first_stage=first_stage, baseline=BASELINES[first_stage])
    if first_stage != "dense":  # the target every student must beat: untrained dense retrieval
        evaluation.notes.append(_dense_note(runs, qrels, resamples, seed))
    if teacher is not None and teacher.queries > 0:
        _add_teacher(evaluation, teacher, queries, qrels, base, texts, resamples, seed)
    return evaluation


def _dense_note(runs, qrels, resamples: int, seed: int) -> str:
    dense = runs[BASELINES["dense"]]
    best = max((name for name in runs if name not in BASELINES.values()), default=None,
               key=lambda name: evaluate_one(runs[name], qrels))
    if best is None:
        return "No student: nothing to compare with dense retrieval."
    gain = _gain(dense, runs[best], qrels, resamples, seed)
    return (f"Best system against untrained dense (MiniLM): {best}, nDCG@10 {gain['difference']:+.3f} "
            f"[{gain['low']:+.3f}, {gain['high']:+.3f}], p = {gain['p_value']:.3f}.")


def evaluate_one(run, qrels) -> float:
    from synthwright.ranking import evaluate

    return evaluate(run, qrels, ("ndcg@10",))["ndcg@10"]


def bm25_plus_label(student_name: str) -> str:
    return f"BM25 + {student_name} (RRF)"


def control_label(control_name: str) -> str:
    return f"BM25 + untrained {control_name} (RRF, control)"


def _bm25_plus(lexical, reranked: Mapping[str, list], queries: Mapping[str, str], depth: int) -> dict[str, list]:
    """RRF of BM25's ranking and a reranker's order of the hybrid top `depth`."""
    from synthwright.ranking.retrieval import reciprocal_rank_fusion

    return {qid: reciprocal_rank_fusion((lex, reranked[qid][:depth]), 100) for qid, lex in zip(queries, lexical)}


def _gain(baseline, run, qrels, resamples: int, seed: int) -> dict[str, float]:
    from synthwright.ranking import paired_bootstrap

    boot = paired_bootstrap(baseline, run, qrels, "ndcg@10", n_resamples=resamples, seed=seed)
    return {"difference": boot.difference, "low": boot.low, "high": boot.high, "p_value": boot.p_value}


def _add_teacher(evaluation: Evaluation, setup: TeacherRerank, queries, qrels, first, texts, resamples: int, seed: int) -> None:
    """The teacher's rows: it and the first stage on the same sampled queries, and its gain there."""
    from synthwright.judges.base import short_model_name
    from synthwright.ranking import evaluate
    from synthwright.reranker.teacher import teacher_rerank

    sample = sample_queries(queries, setup.queries, seed)
    sub_qrels = {qid: qrels[qid] for qid in sample}
    started = time.perf_counter()
    reranked, usage, failed = teacher_rerank(setup, sample, first, texts)
    seconds = time.perf_counter() - started
    label = f"[{len(sample)} sampled queries]"
    stage = LABELS[evaluation.first_stage]
    name = f"teacher ({short_model_name(setup.model)}, {setup.label}): rerank {stage} top {setup.depth} {label}"
    evaluation.table[f"{evaluation.baseline} {label}"] = evaluate({q: first[q] for q in sample}, sub_qrels, METRICS)
    evaluation.table[name] = evaluate(reranked, sub_qrels, METRICS)
    evaluation.gains[name] = _gain({q: first[q] for q in sample}, reranked, sub_qrels, resamples, seed)
    evaluation.seconds[name] = seconds
    evaluation.llm_usage.append(usage)
    documents = sum(min(setup.depth, len(first[q])) for q in sample)
    evaluation.notes.append(
        f"{name}: {documents} documents scored, {usage.sent} LLM requests sent ({usage.cache_hits} from the cache), "
        f"{failed} failed, {seconds:.0f} s ({seconds / max(documents, 1):.2f} s per document).")
