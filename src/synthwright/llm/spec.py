"""Model specs: `backend:target`, e.g. `llamacpp:qwen2.5-coder-1.5b`, `llamacpp:/m.gguf`,
`openai:gpt-4o-mini`, `openai:my-model@http://127.0.0.1:8080/v1`; and `ModelDef`, a spec
with the backend's typed options (what a pipeline's `models:` entry resolves to).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthwright.errors import UserError
from synthwright.llm.backends.base import Backend, BackendOptions, backend_class

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


@dataclass(frozen=True)
class ModelDef:
    """One model of a run: a spec and its backend's typed options."""

    spec: ModelSpec
    options: BackendOptions

    @classmethod
    def build(cls, spec: str, options: Mapping[str, Any] | None = None) -> "ModelDef":
        """Raises UserError for a bad spec, pydantic's ValidationError for a bad option."""
        parsed = ModelSpec.parse(spec)
        return cls(parsed, backend_class(parsed.backend).Options.model_validate(dict(options or {})))

    def load_backend(self) -> Backend:
        return load_backend(self.spec, **self.options.backend_kwargs())
