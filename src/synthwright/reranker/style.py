"""Real queries of the corpus's register, shown to the teacher as examples of how people search.

A style sample is a few real queries (CoSQA: those of qrels/train.tsv, never the evaluation
split's). At most `MAX_SHOWN` of them are ever shown, a seeded draw; each prompt shows a
window of them that moves from row to row (core.rotation), so the teacher copies no single
example and every one is shown about equally often. The whole file is the reference for the
register check (two-sample AUC and coverage of the synthetic queries against it).

Files: a BEIR qrels TSV (its queries, looked up in the queries.jsonl of its BEIR folder), a
JSONL file of {"text"} or {"query"} rows, or a text file of one query per line.
"""

from __future__ import annotations

import random
from pathlib import Path

from synthwright.errors import UserError

MAX_SHOWN = 20
STYLE_FIX = "Give a BEIR qrels TSV (its queries come from the folder's queries.jsonl), a JSONL of {\"text\"} rows, or a text file of one query per line."


def read_style_queries(path: str | Path) -> list[str]:
    """Every distinct query of a style-sample file, in file order."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"Style examples file '{path}' does not exist.", STYLE_FIX)
    if path.suffix == ".tsv":
        queries = _qrels_queries(path)
    elif path.suffix == ".jsonl":
        queries = _jsonl_queries(path)
    else:
        queries = path.read_text(encoding="utf-8").splitlines()
    queries = list(dict.fromkeys(" ".join(q.split()) for q in queries if q and q.strip()))
    if not queries:
        raise UserError(f"Style examples file '{path}' holds no query.", STYLE_FIX)
    return queries


def shown_examples(queries: list[str], seed: int | random.Random, limit: int = MAX_SHOWN) -> list[str]:
    """The (at most `limit`) queries the teacher is ever shown: a seeded draw, in drawn order."""
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    pool = list(queries)
    rng.shuffle(pool)
    return pool[:limit]


def _jsonl_queries(path: Path) -> list[str]:
    from synthwright.io.rows import read_jsonl

    queries = []
    for number, row in enumerate(read_jsonl(path), 1):
        text = row.get("text", row.get("query")) if isinstance(row, dict) else None
        if not isinstance(text, str):
            raise UserError(f"{path} row {number} has no text or query field.", STYLE_FIX)
        queries.append(text)
    return queries


def _qrels_queries(path: Path) -> list[str]:
    """The queries a qrels file judges: BEIR keeps qrels in <folder>/qrels/, queries in <folder>."""
    from synthwright.io.rows import read_jsonl
    from synthwright.ranking.retrieval import read_qrels

    queries_file = path.parent.parent / "queries.jsonl"
    if not queries_file.is_file():
        raise UserError(f"No queries.jsonl beside the qrels file '{path}' (looked for {queries_file}).", STYLE_FIX)
    texts = {str(row["_id"]): row["text"] for row in read_jsonl(queries_file)}
    judged = [texts[qid] for qid in read_qrels(path) if qid in texts]
    if not judged:
        raise UserError(f"No query judged in '{path}' is in {queries_file}.", "Check that the ids match.")
    return judged
