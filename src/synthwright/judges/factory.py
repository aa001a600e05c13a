"""Judges from short specs, as the CLI and pipeline YAML name them (judges/members.py parses
them): an LLM judge for a model, or the non-LLM embedding-similarity judge for `embedding` /
`embedding:EMBEDDER` (`embedding:minilm`, `embedding:st:/path/to/model`).
"""

from __future__ import annotations

from synthwright.core.step import StepContext
from synthwright.errors import UserError
from synthwright.judges.base import Judge
from synthwright.judges.embedding import EmbeddingJudge
from synthwright.judges.members import EMBEDDING, LLM, parse_member
from synthwright.judges.pairwise import PairwiseJudge
from synthwright.judges.pointwise import RubricJudge
from synthwright.judges.prompts import PairwisePrompt
from synthwright.judges.rubric import DEFAULT_RUBRIC, Rubric
from synthwright.llm.backends.base import backend_class
from synthwright.llm.spec import ModelSpec


def build_judge(
    spec: str,
    mode: str = "pointwise",
    *,
    rubric: Rubric = DEFAULT_RUBRIC,
    scoring: str = "probs",
    reasons: bool | None = None,
    max_chars: int | None = None,
    prompt: PairwisePrompt = PairwisePrompt(),
    context: StepContext | None = None,
    step_name: str = "judge",
) -> Judge:
    try:
        member = parse_member(spec)
    except ValueError as exc:
        raise UserError(f"Judge '{spec}': {exc}.", "Write a model spec, or `embedding`.") from None
    if member.kind == EMBEDDING:
        return EmbeddingJudge(member.target, name=member.name)
    if member.kind != LLM:
        raise UserError(f"Judge '{spec}': a {member.kind} member judges reranker pairs only (pair_judge).",
                        "Use a model spec, or `embedding`.")
    if context is None or member.target not in context.models:
        backend_class(ModelSpec.parse(member.target).backend)  # a bad spec fails here, with its fix, before any work
    if mode == "pairwise":
        return PairwiseJudge(member.target, prompt, name=member.name, max_chars=max_chars, context=context, step_name=step_name)
    return RubricJudge(
        member.target, rubric, name=member.name, scoring=scoring, reasons=reasons, max_chars=max_chars, context=context, step_name=step_name
    )
