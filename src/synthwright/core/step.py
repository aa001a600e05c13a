"""Steps: what a pipeline is made of.

- A `RowStep` transforms a batch of rows into kept, dropped and failed rows. It must not
  depend on other batches, so an executor may run batches anywhere, in any order, and
  resume after the last finished batch.
- A `FilterStep` is a row step that only keeps or drops, always with a reason.
- A `SourceStep` produces the first rows (from a file, a corpus, seed tasks).
- A `Stage` needs all its input at once (a dedup index, score recovery, training).

Every step has typed `Options` (a pydantic model that forbids unknown keys), declares the
columns it reads and writes, and reports counters in `StepStats`. Steps are registered by
type name, so YAML (`uses: generate`) and Python (`pipeline.step(..., "generate")`) name
them the same way.
"""

from __future__ import annotations

import hashlib
import json
import random
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from synthwright.core.lineage import Row
from synthwright.errors import UserError
from synthwright.llm.usage import failure_kind


class StepOptions(BaseModel):
    """Base for a step's typed options: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def fingerprinted(self) -> dict[str, Any]:
        """The options as the step's fingerprint holds them: every field, except one added
        after the step shipped (`added_option`) while it keeps its default."""
        data = self.model_dump(mode="json")
        for name, info in type(self).model_fields.items():
            if (info.json_schema_extra or {}).get(ADDED_LATER) and getattr(self, name) == info.default:
                del data[name]
        return data


ADDED_LATER = "added_later"


def added_option(default: Any, **field_arguments: Any) -> Any:
    """A Field for an option added to a step that has run folders in the wild: at its default
    it stays out of the fingerprint, so those folders keep their steps (and what follows them,
    trained students included) instead of redoing them."""
    return Field(default, json_schema_extra={ADDED_LATER: True}, **field_arguments)


@dataclass
class StepStats:
    """Counters that add up: rows_in == rows_out + dropped + failed for row steps."""

    rows_in: int = 0
    rows_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    requests_sent: int = 0
    cache_hits: int = 0
    # Attempts beyond the first: the server sees every one, so a summary that counts what it
    # received must add them to the requests sent.
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def merge(self, other: "StepStats") -> "StepStats":
        return StepStats(
            rows_in=self.rows_in + other.rows_in, rows_out=self.rows_out + other.rows_out,
            dropped=self.dropped + other.dropped, failed=self.failed + other.failed,
            seconds=self.seconds + other.seconds, requests_sent=self.requests_sent + other.requests_sent,
            cache_hits=self.cache_hits + other.cache_hits, retries=self.retries + other.retries,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens, cost=self.cost + other.cost,
        )

    def add_usage(self, usage) -> None:
        """Fold in an LLM engine's `UsageTotals`."""
        self.requests_sent += usage.sent
        self.cache_hits += usage.cache_hits
        self.retries += usage.retries
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cost += usage.cost

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "dropped": dict(self.dropped), "failed": dict(self.failed)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StepStats":
        return cls(**{**data, "dropped": Counter(data.get("dropped") or {}), "failed": Counter(data.get("failed") or {})})


@dataclass
class BatchResult:
    kept: list[Row] = field(default_factory=list)
    dropped: list[tuple[Row, str]] = field(default_factory=list)
    failed: list[tuple[Row, str]] = field(default_factory=list)
    stats: StepStats = field(default_factory=StepStats)

    @classmethod
    def for_input(cls, rows_in: int) -> "BatchResult":
        """An empty result for a batch of `rows_in` input rows."""
        result = cls()
        result.stats.rows_in = rows_in
        return result

    def keep(self, row: Row) -> None:
        self.kept.append(row)
        self.stats.rows_out += 1

    def drop(self, row: Row, reason: str) -> None:
        self.dropped.append((row, reason))
        self.stats.dropped[reason] += 1

    def fail(self, row: Row, reason: str) -> None:
        self.failed.append((row, reason))
        self.stats.failed[failure_kind(reason)] += 1


@dataclass
class StepContext:
    """What a step may use while it runs. Built from plain values, so a worker process can
    rebuild it; handles (model engines, the request cache) open lazily, once per process,
    and live until `close`: a run owns its models, one engine each, shared by every step and
    batch, so a limiter that learnt a provider's limit in one batch still knows it in the next.
    """

    run_seed: int = 0
    workdir: Path = Path(".")  # config paths are relative to this (the pipeline file's folder)
    run_dir: Path | None = None  # outputs a step writes (exports) go under this
    cache_file: Path | None = None
    read_cache: bool = True
    write_cache: bool = True
    max_concurrency: int | None = None
    timeout_s: float = 120.0
    max_attempts: int = 6
    # The run's `models:` section: id -> ModelDef. A step's model is one of these ids, or a spec.
    models: dict[str, Any] = field(default_factory=dict)
    _backends: dict = field(default_factory=dict, repr=False)
    _engines: dict = field(default_factory=dict, repr=False)
    _cache: Any = field(default=None, repr=False)
    # Makes a progress display (judges.base.Progress) for a long run of LLM requests inside one
    # batch, such as a stage's; set by whoever shows the run (the CLI). None: quiet.
    progress_factory: Any = field(default=None, repr=False)

    def request_progress(self, description: str):
        """A progress display for `description`, or None when nobody is watching."""
        return self.progress_factory(description) if self.progress_factory is not None else None

    def rng(self, *parts: Any) -> random.Random:
        """Seeded randomness for one decision: derived from the run seed and `parts`
        (row id, sample index, ...), so a rerun makes the same choice."""
        digest = hashlib.sha256(json.dumps([self.run_seed, *parts], default=str).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "little"))

    def seed_for(self, *parts: Any) -> int:
        return self.rng(*parts).randrange(2**31)

    def resolve(self, path: str | Path) -> Path:
        """A path from a config, relative to the pipeline file's folder."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else (self.workdir / path)

    def output_path(self, path: str | Path) -> Path:
        """Where a step writes a file: relative paths land inside the run directory."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else (self.run_dir or self.workdir) / path

    def model(self, name: str):
        """The `ModelDef` a step's model option names: an id of the run's `models:`, or a spec
        (an inline spec is a shorthand for a model with default options)."""
        from synthwright.llm.spec import ModelDef

        return self.models[name] if name in self.models else ModelDef.build(name)

    def backend(self, name: str):
        """The backend of a model (id or spec), loaded once and shared by every step."""
        if name not in self._backends:
            self._backends[name] = self.model(name).load_backend()
        return self._backends[name]

    def cache(self):
        from synthwright.llm.cache import RequestCache
        from synthwright.paths import cache_path

        if self._cache is None and (self.read_cache or self.write_cache):
            self._cache = RequestCache(self.cache_file or cache_path())
        return self._cache

    def engine(self, name: str):
        """The engine of a model (id or spec): one per model for the context's life. Pass the
        step's name to its `run`, which logs the requests under it."""
        if name not in self._engines:
            self._engines[name] = self._new_engine(name)
        return self._engines[name]

    def _new_engine(self, name: str):
        from synthwright.llm.concurrency import RetryPolicy
        from synthwright.llm.engine import EngineOptions, LLMEngine

        settings = self.model(name).options
        ceilings = [limit for limit in (settings.max_concurrency, self.max_concurrency) if limit]
        options = EngineOptions(
            step=name, max_concurrency=min(ceilings) if ceilings else None, timeout_s=settings.timeout or self.timeout_s,
            retry=RetryPolicy(max_attempts=self.max_attempts), read_cache=self.read_cache,
            write_cache=self.write_cache, price=settings.parsed_price(), seed=self.run_seed,
        )
        return LLMEngine(self.backend(name), self.cache(), options)

    def ask(self, spec: str, step_name: str, requests: Iterable, progress: Any = None, total: int | None = None) -> tuple[list, Any]:
        """Answer `requests` (in order) through the model's engine; returns (responses, usage).
        `spec` is a model id of the run or a spec; `progress` (from `request_progress`) is told
        of each answer, out of `total`.

        `requests` may be a generator: the engine then sends the first ones while the rest
        are still being built, so building them overlaps with waiting for the server."""
        answers: dict[int, Any] = {}

        def on_result(index: int, _request: Any, response: Any) -> None:
            answers[index] = response
            if progress is not None:
                progress.advance(response)

        if progress is not None:
            progress.start(total)
        try:
            usage = self.engine(spec).run(requests, on_result, step=step_name, owner=self.owner(step_name))
        finally:
            if progress is not None:
                progress.finish()
        return [answers[i] for i in range(len(answers))], usage

    def owner(self, step_name: str) -> str | None:
        """Who pays for a step's requests: this run folder's step (None outside a run)."""
        return f"{self.run_dir.resolve()}::{step_name}" if self.run_dir else None

    def use_handles_of(self, other: "StepContext") -> None:
        """From now on, share `other`'s engines, backends and request cache (a Ray worker keeps
        one context per run, so its engines outlive each task's unpickled copy)."""
        self._backends, self._engines = other._backends, other._engines
        self._cache = other.cache()  # opened now, so both hold the same connection

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a worker process without its open handles: the worker opens its own."""
        return {**self.__dict__, "_backends": {}, "_engines": {}, "_cache": None, "progress_factory": None}

    def close(self) -> None:
        """Release the models' connections and flush and close the request cache."""
        engines, self._engines = self._engines, {}
        for engine in engines.values():
            engine.close()
        if self._cache is not None:
            self._cache.close()
            self._cache = None


class Step(ABC):
    type_name: ClassVar[str] = ""
    Options: ClassVar[type[StepOptions]] = StepOptions
    #: columns the step reads from each row (checked before it runs)
    input_columns: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: Raise it when the step computes something else from the same options: run folders then
    #: redo the step instead of reusing its batches (0, never raised, stays out of fingerprints).
    version: ClassVar[int] = 0

    def __init__(self, name: str, options: StepOptions, context: StepContext):
        self.name = name
        self.options = options
        self.context = context

    def required_columns(self) -> tuple[str, ...]:
        """Columns this configured step needs; override when options name them."""
        return self.input_columns

    def output_columns(self) -> tuple[str, ...]:
        return ()

    def fingerprint_extra(self) -> dict[str, Any]:
        """What else decides this step's output besides its options (e.g. a template's text)."""
        return {}


class SourceStep(Step):
    @abstractmethod
    def read(self) -> Iterator[Row]:
        """The rows, each with `_meta` lineage."""


class RowStep(Step):
    #: rows per batch: the unit of resume and of parallel work
    default_batch_size: ClassVar[int] = 64

    @abstractmethod
    def process(self, rows: list[Row]) -> BatchResult:
        """Turn one batch of rows into kept, dropped and failed rows."""

    def warm_start(self, kept: Iterator[Row]) -> None:
        """Called before resuming with the rows kept in earlier batches: a step with state
        across batches (a novelty gate) rebuilds it here. Stateless steps ignore it."""

    def carries_state(self) -> bool:
        """True when a batch's result depends on earlier batches (see `warm_start`): such a
        step must see its batches one after another, in order, in one process."""
        return False


class FilterStep(RowStep):
    default_batch_size = 1024

    @abstractmethod
    def keep(self, row: Row) -> str | None:
        """None to keep the row, or the reason to drop it (a short snake_case label)."""

    def process(self, rows: list[Row]) -> BatchResult:
        result = BatchResult.for_input(len(rows))
        for row in rows:
            reason = self.keep(row)
            if reason is None:
                result.keep(row)
            else:
                result.drop(row, reason)
        return result


class Stage(Step):
    #: True for a stage whose effect is a file the user reads where they started the run
    #: (an export): a distributed executor runs it in the driver, not on some worker node.
    runs_on_driver: ClassVar[bool] = False
    #: set by the executor when rows failed on the way to this stage (in it or upstream): a
    #: stage that writes a file then keeps a complete earlier one (see io.outputs)
    input_incomplete: bool = False

    @abstractmethod
    def run(self, rows: Iterable[Row]) -> BatchResult:
        """Consume all input rows at once."""

    def run_in_parts(self, rows: Iterable[Row]) -> Iterator[BatchResult]:
        """The result in parts, each stored as its own shard as soon as it comes. A stage
        that can stream (an export) overrides this, so its output never sits in memory whole."""
        yield self.run(rows)


class PassThroughStage(Stage):
    """A stage whose effect is a file (a report, a model, an evaluation): it reads every row
    and forwards them all unchanged. Subclasses implement `write_output`."""

    def run(self, rows: Iterable[Row]) -> BatchResult:
        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        self.write_output(rows, result.stats)
        for row in rows:
            result.keep(row)
        return result

    @abstractmethod
    def write_output(self, rows: list[Row], stats: StepStats) -> None:
        """Make the stage's file from `rows`; add LLM usage, failures or extra time to `stats`."""


STEP_TYPES: dict[str, type[Step]] = {}


def register_step(name: str):
    def decorate(cls: type[Step]) -> type[Step]:
        cls.type_name = name
        STEP_TYPES[name] = cls
        return cls

    return decorate


def step_class(name: str) -> type[Step]:
    """The registered step type `name` (modules register theirs when imported)."""
    try:
        return STEP_TYPES[name]
    except KeyError:
        raise UserError(
            f"Unknown step type '{name}'.", f"Use one of: {', '.join(sorted(STEP_TYPES))}."
        ) from None
