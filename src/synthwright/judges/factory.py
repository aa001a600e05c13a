"""Judges from short specs, as the CLI and pipeline YAML name them.

`[NAME=]SPEC` where SPEC is a model spec (`llamacpp:qwen2.5-coder-1.5b`, `openai:gpt-4o-mini`)
for an LLM judge, or `embedding` / `embedding:EMBEDDER` (`embedding:minilm`,
`embedding:st:/path/to/model`) for the non-LLM embedding-similarity judge. NAME defaults to
the model's name (`qwen2.5-coder-1.5b`) or `embedding`.
"""

from __future__ import annotations

import re

from synthwright.core.step import StepContext
from synthwright.judges.base import Judge, short_model_name
from synthwright.judges.embedding import EmbeddingJudge
from synthwright.judges.pairwise import PairwiseJudge
from synthwright.judges.pointwise import RubricJudge
from synthwright.judges.prompts import PairwisePrompt
from synthwright.judges.rubric import DEFAULT_RUBRIC, Rubric
from synthwright.llm.backends.base import backend_class
from synthwright.llm.spec import ModelSpec

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)=(.+)$")
EMBEDDING = "embedding"


def split_name(spec: str) -> tuple[str | None, str]:
    match = _NAME.match(spec.strip())
    return (match.group(1), match.group(2)) if match else (None, spec.strip())


def default_name(spec: str) -> str:
    if spec == EMBEDDING or spec.startswith(EMBEDDING + ":"):
        return EMBEDDING
    return short_model_name(str(ModelSpec.parse(spec)))


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
    name, body = split_name(spec)
    name = name or default_name(body)
    if body == EMBEDDING or body.startswith(EMBEDDING + ":"):
        embedder = body.partition(":")[2] or "minilm"
        return EmbeddingJudge(embedder, name=name)
    backend_class(ModelSpec.parse(body).backend)  # a bad spec fails here, with its fix, before any work
    if mode == "pairwise":
        return PairwiseJudge(body, prompt, name=name, max_chars=max_chars, context=context, step_name=step_name)
    return RubricJudge(
        body, rubric, name=name, scoring=scoring, reasons=reasons, max_chars=max_chars, context=context, step_name=step_name
    )
