"""What a backend is, and the registry that finds one by name.

A backend only translates a provider-neutral `LLMRequest` into its provider's call and
back. Retries, caching, concurrency and accounting belong to `LLMEngine`, once. A backend
signals what went wrong with `TransientError` (worth retrying), `RateLimited` (retry, and
slow down) or `PermanentError` (retrying cannot help).

Backends register like a third-party plugin's: subclass `Backend`, decorate with
`@register_backend("name")`, and name the module in the `synthwright.backends` entry-point
group (pyproject.toml does so for the built-in ones), so this registry imports none of them. A backend's settings are its typed `Options`
(a pydantic model that forbids unknown keys): what a pipeline's `models:` entry may set.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from synthwright.errors import UserError
from synthwright.llm.records import LLMRequest, LLMResponse
from synthwright.llm.usage import Price


class BackendError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TransientError(BackendError):
    """Might work if tried again (5xx, timeout, dropped connection, garbled body)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """The provider asked us to slow down (HTTP 429)."""


class PermanentError(BackendError):
    """Retrying cannot help (bad request, unknown model, missing key)."""


class BackendOptions(BaseModel):
    """Settings of one model in a run. These three are the engine's, for every backend; a
    backend's subclass adds its own (which reach its constructor as keyword arguments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrency: int | None = Field(None, ge=1, description="Requests in flight at most (default: the backend's; --concurrency lowers it)")
    timeout: float | None = Field(None, gt=0, description="Seconds to wait for one answer (default 120)")
    price: str | None = Field(None, description="Dollars per million tokens, INPUT/OUTPUT, e.g. 0.15/0.60 (for cost accounting)")

    ENGINE_FIELDS: ClassVar[tuple[str, ...]] = ("max_concurrency", "timeout", "price")

    @field_validator("price")
    @classmethod
    def _readable_price(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Price.parse(value)
            except UserError as exc:
                raise ValueError(f"{exc.problem} {exc.fix}") from None
        return value

    def parsed_price(self) -> Price | None:
        return Price.parse(self.price) if self.price is not None else None

    def backend_kwargs(self) -> dict[str, Any]:
        """The backend's own settings that were given, as its constructor takes them."""
        return self.model_dump(exclude=set(self.ENGINE_FIELDS), exclude_unset=True)


class Backend(ABC):
    """Talks to one model. Subclasses implement `complete` and `identity`."""

    name: ClassVar[str]
    #: The settings a pipeline's `models:` entry may give this backend.
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    #: How many requests the engine may have in flight by default.
    default_concurrency: ClassVar[int] = 1
    #: Whether it answers `LLMRequest.continuation` (needs the prompt's log-probabilities, which
    #: an OpenAI-style chat API never returns); the engine refuses such requests otherwise.
    scores_continuations: ClassVar[bool] = False
    #: Whether `render_chat` shows the model's own chat template as text (what Magpie builds on).
    renders_chat: ClassVar[bool] = False

    def __init__(self, target: str, **options: Any):
        self.target = target
        self.options = options

    @property
    @abstractmethod
    def identity(self) -> str:
        """What makes this model's answers this model's: part of every cache key.

        Must not contain secrets or transport details (URLs, ports, keys).
        """

    @abstractmethod
    async def complete(self, request: LLMRequest, timeout_s: float) -> LLMResponse:
        """Send one request; return its response or raise a BackendError."""

    def count_tokens(self, text: str) -> int:
        """Token count for dry-run estimates; backends with a tokenizer override this."""
        return max(1, len(text) // 4)

    def render_for_count(self, request: LLMRequest) -> str:
        if request.prompt is not None:
            return request.prompt
        return "\n".join(f"{m.role}: {m.content}" for m in request.messages or ())

    def render_chat(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The model's chat template applied to `messages`, where `renders_chat` says it can."""
        raise PermanentError(f"the {self.name} backend cannot show its model's chat template")

    async def aclose(self) -> None:
        """Release connections or memory."""

    @classmethod
    def summary(cls) -> str:
        """The first line of the class's docstring (what `synthwright steps` shows)."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def continuation_refusal(backend: str) -> str:
    """Why a backend without `scores_continuations` cannot answer a continuation request."""
    return (f"scoring a given reply (query likelihood) needs the prompt's log-probabilities, which the {backend} backend "
            "does not return: use a llamacpp: model")


BACKENDS: dict[str, type[Backend]] = {}


def register_backend(name: str):
    def decorate(cls: type[Backend]) -> type[Backend]:
        cls.name = name
        BACKENDS[name] = cls
        return cls

    return decorate


def _load_registered(name: str | None = None) -> None:
    """Import the modules the `synthwright.backends` entry points name (the one for `name`, or
    all): importing one registers its backend."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="synthwright.backends"):
        if entry.name not in BACKENDS and name in (None, entry.name):
            entry.load()


def backend_types() -> dict[str, type[Backend]]:
    """Every backend by name: the built-in ones and those plugins register."""
    _load_registered()
    return dict(BACKENDS)


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        _load_registered(name)
    try:
        return BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise UserError(
            f"Unknown model backend '{name}'.",
            f"Use one of: {known} (for example llamacpp:qwen2.5-coder-1.5b or openai:gpt-4o-mini).",
        ) from None
