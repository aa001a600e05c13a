"""Document collections for the reranker pipeline, opened once per process.

A corpus spec is a JSONL file of {_id, title, text}, a BEIR folder (its corpus.jsonl), or
`pydoc:topics`: the Python language reference that ships with every Python
(`pydoc_data.topics`, one document per topic), which makes a fully offline demo corpus.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from synthwright.core.files import content_digest
from synthwright.core.progress import Phase, ProgressFactory
from synthwright.errors import UserError
from synthwright.ranking.retrieval import (
    document_text,  # one definition of a document's text for every system
)

PYDOC_TOPICS = "pydoc:topics"
Corpus = dict[str, dict[str, str]]


def corpus_fingerprint(spec: str) -> dict:
    """What identifies a corpus: the sha256 of its file, so a copy elsewhere or the same bytes
    written again keep every step that read it up to date."""
    if spec == PYDOC_TOPICS:
        import sys

        return {"corpus": spec, "python": sys.version.split()[0]}
    return {"corpus_sha256": content_digest(_corpus_file(Path(spec)))}


def _corpus_file(path: Path) -> Path:
    return path / "corpus.jsonl" if path.is_dir() else path


def open_corpus(spec: str | Path) -> Corpus:
    """{doc_id: {"title", "text"}}; the same spec is read once per process."""
    spec = str(spec)
    if spec != PYDOC_TOPICS:
        spec = str(Path(spec).expanduser().resolve())
    # Keyed on the content digest (cached per file version), so a rewritten file is read again.
    return _open(spec, None if spec == PYDOC_TOPICS else content_digest(_corpus_file(Path(spec))))


@functools.lru_cache(maxsize=4)
def _open(spec: str, _digest: str | None) -> Corpus:
    if spec == PYDOC_TOPICS:
        return _pydoc_topics()
    path = Path(spec)
    if not path.exists():
        raise UserError(f"Corpus '{spec}' does not exist.", "Give a JSONL file of {_id, title, text}, a BEIR folder, or pydoc:topics.")
    from synthwright.ranking.retrieval import load_corpus

    corpus = load_corpus(path)
    if not corpus:
        raise UserError(f"Corpus '{spec}' has no documents.")
    return corpus


def _pydoc_topics() -> Corpus:
    from pydoc_data.topics import topics

    # Topic names are identifiers like "assignment" or "typesnumeric": readable enough as titles.
    return {name: {"title": name, "text": " ".join(text.split())} for name, text in sorted(topics.items()) if text.strip()}


_RETRIEVERS: dict = {}


def shared_retriever(spec: str, method: str = "hybrid"):
    """One retriever per (corpus, method) per process: the index is the expensive part."""
    key = (spec, method)
    if key not in _RETRIEVERS:
        from synthwright.ranking.retrieval import Retriever

        _RETRIEVERS[key] = Retriever(open_corpus(spec), method)
    return _RETRIEVERS[key]


def corpus_texts(corpus: Corpus) -> dict[str, str]:
    return {doc_id: document_text(doc) for doc_id, doc in corpus.items()}


QUERY_BLOCK = 128  # queries retrieved at once: small enough for a progress line between blocks


def first_stage_runs(spec: str, queries: Mapping[str, str], *, depth: int = 100, keep: int = 100,
                     progress: ProgressFactory | None = None) -> dict[str, dict[str, list]]:
    """{method: {query_id: ranking}} of BM25, dense and hybrid (RRF of each one's top `depth`),
    each cut to `keep`, from one hybrid search, in blocks of queries."""
    from synthwright.ranking.retrieval import METHODS

    retriever = shared_retriever(spec)
    ids = list(queries)
    runs: dict[str, dict[str, list]] = {method: {} for method in METHODS}
    with Phase(progress, f"first stage: {len(ids)} queries", len(ids), "queries") as phase:
        for start in range(0, len(ids), QUERY_BLOCK):
            block = ids[start : start + QUERY_BLOCK]
            found = retriever.hybrid([queries[qid] for qid in block], keep, depth=depth)
            for qid, hits in zip(block, found):
                for method in METHODS:
                    runs[method][qid] = hits.ranking(method)[:keep]
            phase.advance(len(block))
    return runs
