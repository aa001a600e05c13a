"""Evaluating a bi-encoder student on CoSQA: the old path against the streaming, cached one.

    .venv/bin/python benchmarks/reranker_evaluation.py [--queries 500] [--depth 100] [--documents N] [--paths old,cold,warm]

`--documents N` evaluates over a seeded subset of N functions (every dev query's relevant one
included), for a machine too busy for the whole corpus. `--paths warm` alone measures the new
path at full scale without encoding: the student's cache entries are MiniLM's own vectors
(the student here is MiniLM's weights, so they are the vectors it would compute).

Both paths evaluate the same student (the untrained MiniLM saved as a student folder, so no
training is needed) and the untrained control on the real dev queries over all 6,267 functions,
each in its own process, and print wall time, peak RSS (`ru_maxrss`) and the ratios. Each path
gets a copy of the user's embedding cache holding MiniLM's vectors and no student's (the dense
first stage is cached in both, as in any run after the first; the student's vectors are not):

- old: hybrid first stage, then `StudentReranker.score_many` for the student and again for the
  control (each encodes every distinct candidate document itself; the code before issue 20);
- new, cold: `evaluate_students` with `BiEncoderOverCorpus` (the corpus encoded once per model,
  through the content cache; scored in query blocks; also a whole-corpus retriever run);
- new, warm: the same again, the cache now holding every vector (a rerun, or a second student).

The new path's progress lines (at most one per 30 s per phase) are counted. Target (issue 20):
peak < 2 GB and a progress line at least every 30 s. Always exits 0: it prints PASS/MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COSQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cosqa"
TARGET_BYTES = 2e9


def run_path(path: str, queries: int, depth: int, student: Path, corpus: Path) -> dict:
    """Child process: one evaluation, its own peak RSS."""
    from synthwright.embed.local import minilm_path
    from synthwright.reranker.evaluation import judged_queries, sample_queries

    picked, qrels = judged_queries(COSQA / "queries.jsonl", COSQA / "qrels" / "dev.tsv")
    picked = sample_queries(picked, queries, 0)
    qrels = {qid: qrels[qid] for qid in picked}
    started = time.perf_counter()
    if path == "old":
        ndcg = _old_path(picked, qrels, depth, student, minilm_path(), str(corpus))
    else:
        ndcg = _new_path(picked, qrels, depth, student, minilm_path(), str(corpus))
    return {"seconds": time.perf_counter() - started, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "student_ndcg@10": ndcg}


def _old_path(queries, qrels, depth, student, base, corpus: str) -> float:
    from synthwright.ranking import evaluate
    from synthwright.reranker.corpus import corpus_texts, open_corpus, shared_retriever
    from synthwright.reranker.student import StudentReranker

    texts = corpus_texts(open_corpus(corpus))
    found = shared_retriever(corpus).hybrid(list(queries.values()), 100, depth=1000)
    hybrid = {qid: hits.fused for qid, hits in zip(queries, found)}
    tops = [[doc for doc, _ in hybrid[qid][:depth]] for qid in queries]
    runs = {}
    for name, folder in (("student", student), ("control", base)):
        scores = StudentReranker(folder).score_many(list(queries.values()), [[texts[d] for d in top] for top in tops])
        runs[name] = {qid: sorted(zip(top, s), key=lambda item: -item[1]) for qid, top, s in zip(queries, tops, scores)}
    return evaluate(runs["student"], qrels, ("ndcg@10",))["ndcg@10"]


def _new_path(queries, qrels, depth, student, base, corpus: str) -> float:
    from synthwright.cli.pipeline import RequestsLine
    from synthwright.reranker.bi_encoder import BiEncoderOverCorpus
    from synthwright.reranker.corpus import corpus_texts, open_corpus
    from synthwright.reranker.evaluation import evaluate_students, rerank_label

    def progress(description):
        return RequestsLine(None, description)  # plain lines on stderr, as under nohup

    texts = corpus_texts(open_corpus(corpus))
    scorer = BiEncoderOverCorpus(student, texts, name="student", progress=progress)
    control = ("MiniLM", BiEncoderOverCorpus(base, texts, name="MiniLM", progress=progress))
    evaluation = evaluate_students(corpus, queries, qrels, {"student": scorer}, depth=depth, first_stage="hybrid",
                                   resamples=200, progress=progress, control=control)
    return evaluation.table[rerank_label("student", "hybrid", depth)]["ndcg@10"]


def spawn(path: str, queries: int, depth: int, student: Path, cache: Path, corpus: Path) -> dict:
    env = {**os.environ, "SYNTHWRIGHT_EMBED_CACHE": str(cache)}
    command = [sys.executable, __file__, "--child", path, "--queries", str(queries), "--depth", str(depth), "--student", str(student),
               "--corpus", str(corpus)]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{path} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    lines = [line for line in done.stderr.splitlines() if " elapsed, ETA " in line or " done in " in line]
    result.update(progress_lines=len(lines), wall=time.monotonic() - started, last_lines=lines[-3:])
    return result


def minilm_only_cache(path: Path, corpus: Path) -> Path:
    """A copy of the user's embedding cache with MiniLM's vectors only (encoded if missing)."""
    from synthwright.embed import EmbeddingCache, load_embedder
    from synthwright.embed.cache import default_cache_path
    from synthwright.reranker.corpus import corpus_texts, open_corpus

    if default_cache_path().is_file():
        EmbeddingCache(default_cache_path())._db.execute(f"VACUUM INTO '{path}'")  # a consistent copy, WAL included
    cache = EmbeddingCache(path)
    with cache._db:
        cache._db.execute("DELETE FROM embeddings WHERE model NOT LIKE 'minilm:%'")
    load_embedder("minilm", cache=cache).embed(list(corpus_texts(open_corpus(str(corpus))).values()))
    cache.close()
    return path


def prefill_student(cache_path: Path, student: Path) -> None:
    """Give the student's cache identity MiniLM's vectors (the same weights: the same vectors)."""
    from synthwright.embed import EmbeddingCache, load_embedder

    identity = load_embedder(f"st:{student}", cache=False).identity
    cache = EmbeddingCache(cache_path)
    with cache._db:
        cache._db.execute("INSERT OR IGNORE INTO embeddings SELECT ?, text_hash, vector FROM embeddings WHERE model LIKE 'minilm:%'", (identity,))
    cache.close()


def subset_corpus(folder: Path, documents: int | None, queries: int) -> Path:
    """CoSQA itself, or N of its functions: every sampled dev query's relevant ones, then a seeded draw."""
    if not documents:
        return COSQA
    import random

    from synthwright.reranker.evaluation import judged_queries, sample_queries

    picked, qrels = judged_queries(COSQA / "queries.jsonl", COSQA / "qrels" / "dev.tsv")
    needed = {doc for qid in sample_queries(picked, queries, 0) for doc in qrels[qid]}
    rows = [json.loads(line) for line in (COSQA / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    others = [row for row in rows if row["_id"] not in needed]
    random.Random(0).shuffle(others)
    keep = [row for row in rows if row["_id"] in needed] + others[: max(0, documents - len(needed))]
    path = folder / "corpus.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in keep), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--documents", type=int, help="a subset of N functions (default: all 6,267)")
    parser.add_argument("--paths", default="old,cold,warm", help="which of old, cold, warm to run")
    parser.add_argument("--child")
    parser.add_argument("--student")
    parser.add_argument("--corpus")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_path(args.child, args.queries, args.depth, Path(args.student), Path(args.corpus))))
        return
    from synthwright.embed.local import minilm_path

    paths = args.paths.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        student = Path(folder) / "student" / "model"
        shutil.copytree(minilm_path(), student)
        corpus = subset_corpus(Path(folder), args.documents, args.queries)
        old_cache, new_cache = (minilm_only_cache(Path(folder) / name, corpus) for name in ("old.sqlite", "new.sqlite"))
        if "old" in paths:
            results["old"] = spawn("old", args.queries, args.depth, student, old_cache, corpus)
        if "cold" in paths:
            results["new, cold cache"] = spawn("new", args.queries, args.depth, student, new_cache, corpus)
        if "warm" in paths:
            if "cold" not in paths:
                prefill_student(new_cache, student)
            results["new, warm cache"] = spawn("new", args.queries, args.depth, student, new_cache, corpus)
    size = f"{args.documents:,} of the 6,267" if args.documents else "all 6,267"
    print(f"{args.queries} CoSQA dev queries x {size} functions, rerank depth {args.depth}")
    for name, result in results.items():
        print(f"  {name:<16} {result['seconds']:7.1f} s  peak RSS {result['peak_rss'] / 1e9:5.2f} GB  "
              f"student nDCG@10 {result['student_ndcg@10']:.3f}  progress lines {result['progress_lines']}")
    new = [result for name, result in results.items() if name.startswith("new")]
    if "old" in results and new:
        old = results["old"]
        print("  ratio old/new: " + ", ".join(f"{name}: time {old['seconds'] / r['seconds']:.2f}x, peak RSS {old['peak_rss'] / r['peak_rss']:.2f}x"
                                           for name, r in results.items() if name.startswith("new")))
    for result in new[:1]:
        for line in result["last_lines"]:
            print(f"  | {line}")
    if new:
        verdict = "PASS" if max(r["peak_rss"] for r in new) < TARGET_BYTES else "MISS"
        print(f"{verdict}: new path peak RSS under {TARGET_BYTES / 1e9:.0f} GB")


if __name__ == "__main__":
    main()
