"""Model specs: `backend:target`, e.g. `llamacpp:qwen2.5-coder-1.5b`, `llamacpp:/m.gguf`,
`openai:gpt-4o-mini`, `openai:my-model@http://127.0.0.1:8080/v1`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthwright.errors import UserError
from synthwright.llm.backends.base import Backend, backend_class

DEFAULT_BACKEND = "llamacpp"


@dataclass(frozen=True)
class ModelSpec:
    backend: str
    target: str

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        text = (text or "").strip()
        if not text:
            raise UserError("The model spec is empty.", "Give one like llamacpp:smollm2-135m or openai:gpt-4o-mini.")
        backend, sep, target = text.partition(":")
        # A bare name ("smollm2-135m") or a bare path means the in-process backend.
        if not sep or "/" in backend or backend.endswith(".gguf"):
            backend, target = DEFAULT_BACKEND, text
        if not target:
            raise UserError(f"The model spec '{text}' names no model.", "Write it as BACKEND:MODEL, e.g. llamacpp:smollm2-135m.")
        return cls(backend=backend, target=target)

    def __str__(self) -> str:
        return f"{self.backend}:{self.target}"


def scores_continuations(spec: str) -> bool:
    """Whether the model a spec names can answer `LLMRequest.continuation` (query likelihood)."""
    return backend_class(ModelSpec.parse(spec).backend).scores_continuations


def load_backend(spec: str | ModelSpec, **options: Any) -> Backend:
    """Build the backend a spec names (models load lazily, on first request)."""
    parsed = spec if isinstance(spec, ModelSpec) else ModelSpec.parse(spec)
    return backend_class(parsed.backend)(parsed.target, **options)
