"""Judge members as the CLI and pipeline YAML name them, parsed once into objects.

`[NAME=]SPEC`, where SPEC is one of the registered kinds, or else a model (an id of the run's
`models:` or a model spec) for an LLM judge:

- `embedding` / `embedding:EMBEDDER` (`embedding:minilm`, `embedding:st:/path/to/model`): cosine
  similarity of sentence embeddings (judges.embedding.EmbeddingJudge);
- `bm25`: BM25 scores of the query's documents (reranker pair judging only);
- `likelihood:MODEL`: log P(query | document) from a model that scores continuations
  (reranker pair judging only; reranker/teacher.py);
- anything else: an LLM asked the rubric or the pairwise question.

NAME defaults to `embedding`, `bm25`, the model's short name, or "NAME (likelihood)". Code asks
a member what it is (`member.kind`, `member.uses_llm`) instead of testing strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from synthwright.judges.base import short_model_name

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)=(.+)$")

EMBEDDING, BM25, LIKELIHOOD, LLM = "embedding", "bm25", "likelihood", "llm"


@dataclass(frozen=True)
class Member:
    """One member of a judge ensemble."""

    spec: str  # as written, NAME= included
    kind: str  # embedding, bm25, likelihood or llm
    name: str  # its name in results, reports and weights
    target: str | None = None  # llm, likelihood: the model; embedding: the embedder

    @property
    def uses_llm(self) -> bool:
        """Whether judging with it sends requests to a model (it then has a budget and a cost)."""
        return self.kind in (LLM, LIKELIHOOD)


def _embedding(name: str | None, argument: str) -> Member:
    return Member("", EMBEDDING, name or EMBEDDING, argument or "minilm")


def _bm25(name: str | None, argument: str) -> Member:
    if argument:
        raise ValueError(f"bm25 takes no argument (got bm25:{argument})")
    return Member("", BM25, name or BM25)


def _likelihood(name: str | None, argument: str) -> Member:
    if not argument:
        raise ValueError("likelihood needs a model: likelihood:MODEL, e.g. likelihood:llamacpp:qwen2.5-coder-1.5b")
    return Member("", LIKELIHOOD, name or likelihood_member_name(argument), argument)


#: The member kinds other than an LLM judge, by the word a spec starts with.
MEMBER_KINDS: dict[str, Callable[[str | None, str], Member]] = {EMBEDDING: _embedding, BM25: _bm25, LIKELIHOOD: _likelihood}


def likelihood_member_name(model: str) -> str:
    return f"{short_model_name(model)} (likelihood)"


def parse_member(spec: str) -> Member:
    """The member a spec names; ValueError (with what to write) when it is malformed."""
    written = spec.strip()
    match = _NAME.match(written)
    name, body = (match.group(1), match.group(2)) if match else (None, written)
    word, _, argument = body.partition(":")
    if word in MEMBER_KINDS:
        member = MEMBER_KINDS[word](name, argument)
    else:
        member = Member("", LLM, name or short_model_name(body), body)
    return Member(written, member.kind, member.name, member.target)


def parse_members(specs: Sequence[str]) -> list[Member]:
    return [parse_member(spec) for spec in specs]
