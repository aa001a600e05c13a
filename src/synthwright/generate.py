"""`synthwright generate`: a template rendered per input row, sent to a model, rows out.

Resumable by construction: every completed request is in the request cache, so rerunning
the same command after a crash sends only what is missing. Output rows keep input order;
rows that finally fail go to `<output>.failures.jsonl` with their reason. One process at a
time writes an output (a lock beside it), and a run with failures never replaces an earlier
output: its rows go to `<output>.incomplete.jsonl` instead.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthwright.errors import UserError
from synthwright.io.outputs import check_output_target, output_lock
from synthwright.io.rows import RowWriter, check_row_format, read_rows
from synthwright.llm.cache import RequestCache
from synthwright.llm.concurrency import RetryPolicy
from synthwright.llm.engine import EngineOptions, LLMEngine
from synthwright.llm.records import LLMRequest, LLMResponse, SamplingParams
from synthwright.llm.spec import ModelSpec, load_backend
from synthwright.llm.usage import Price, UsageTotals
from synthwright.paths import cache_path
from synthwright.recipes.template import RowRenderError, TemplatePrompt, derive_seed


@dataclass(frozen=True)
class GenerateConfig:
    model: str
    template: Path
    input: Path
    output: Path
    samples_per_row: int = 1
    params: SamplingParams = SamplingParams()
    seed: int = 0
    system: str | None = None
    raw_prompt: bool = False
    json_schema: dict[str, Any] | None = None
    output_column: str = "generation"
    limit: int | None = None
    cache_file: Path | None = None
    read_cache: bool = True
    write_cache: bool = True
    concurrency: int | None = None
    timeout_s: float = 120.0
    max_attempts: int = 6
    price: Price | None = None
    backend_options: dict[str, Any] = field(default_factory=dict)

    @property
    def failures_path(self) -> Path:
        return failures_path_for(self.output)


def failures_path_for(output: Path) -> Path:
    """out.jsonl -> out.failures.jsonl; a.v1.parquet -> a.v1.failures.jsonl."""
    return output.with_name(output.with_suffix("").name + ".failures.jsonl")


@dataclass
class Slot:
    """One (input row, sample) pair and, once known, its request."""

    row_index: int
    sample_index: int
    row: dict[str, Any]
    request: LLMRequest | None = None
    render_error: str | None = None


@dataclass
class GenerateSummary:
    output: Path
    failures_path: Path | None
    rows_written: int
    failed: int
    usage: UsageTotals
    elapsed_s: float
    intended: Path | None = None  # the output asked for, when `output` had to go beside it

    @property
    def kept_earlier(self) -> bool:
        """True when this run was incomplete and an earlier output was kept in its place."""
        return self.intended is not None and self.output != self.intended


class ProgressSink:
    """What the job tells whoever shows progress. The CLI draws a bar; the API stays quiet."""

    def start(self, total: int) -> None: ...

    def advance(self, response: LLMResponse) -> None: ...

    def finish(self) -> None: ...


@dataclass
class DryRunEstimate:
    requests: int
    cached: int
    prompt_tokens: int
    max_completion_tokens: int
    cost: float | None
    examples: list[str]
    render_failures: int


class GenerateJob:
    def __init__(self, config: GenerateConfig):
        self.config = config
        if not config.timeout_s > 0:  # 0 or less would switch the timeout off: a hanging server then wins
            raise UserError(f"--timeout must be more than 0 seconds, not {config.timeout_s:g}.", "Give the seconds one attempt may take, e.g. --timeout 120.")
        check_row_format(config.output)  # before any work, dry runs included
        check_output_target(config.output)
        self.prompt = TemplatePrompt.from_file(config.template, system=config.system, raw=config.raw_prompt)
        rows = read_rows(config.input)
        self.rows = rows[: config.limit] if config.limit else rows
        self.prompt.check_columns(self.rows)
        self.spec = ModelSpec.parse(config.model)
        self.backend = load_backend(self.spec, **config.backend_options)
        self.slots = self._build_slots()

    def _build_slots(self) -> list[Slot]:
        slots = []
        for row_index, row in enumerate(self.rows):
            for sample_index in range(self.config.samples_per_row):
                slot = Slot(row_index, sample_index, row)
                params = self.config.params.model_copy(update={"seed": derive_seed(self.config.seed, row_index, sample_index)})
                try:
                    slot.request = self.prompt.request(row, params, sample_index, json_schema=self.config.json_schema)
                except RowRenderError as exc:
                    slot.render_error = str(exc)
                slots.append(slot)
        return slots

    def _cache(self) -> RequestCache | None:
        if not (self.config.read_cache or self.config.write_cache):
            return None
        return RequestCache(self.config.cache_file or cache_path())

    # -- dry run -----------------------------------------------------------------------------
    def estimate(self, examples: int = 2) -> DryRunEstimate:
        """What a real run would send, without calling any model."""
        cache = self._cache() if self.config.read_cache else None
        identity = self.backend.identity
        sendable = [s.request for s in self.slots if s.request is not None]
        cached = sum(1 for r in sendable if cache is not None and cache.get(r.cache_key(identity)) is not None)
        prompt_tokens = sum(self.backend.count_tokens(self.backend.render_for_count(r)) for r in sendable)
        max_completion = sum(r.params.max_tokens for r in sendable)
        price = self.config.price
        return DryRunEstimate(
            requests=len(sendable), cached=cached, prompt_tokens=prompt_tokens, max_completion_tokens=max_completion,
            cost=price.cost(prompt_tokens, max_completion) if price else None,
            examples=[self.backend.render_for_count(r) for r in sendable[:examples]],
            render_failures=len(self.slots) - len(sendable),
        )

    # -- the run ------------------------------------------------------------------------------
    def run(self, progress: ProgressSink | None = None) -> GenerateSummary:
        """Send what is missing and write the output; refuses while another process writes it."""
        with output_lock(self.config.output, fix="Wait for the other run to finish; its finished requests will be cached."):
            return self._run(progress or ProgressSink())

    def _run(self, progress: ProgressSink) -> GenerateSummary:
        started = time.perf_counter()
        cache = self._cache()
        engine = LLMEngine(self.backend, cache, self._engine_options())
        output = _OrderedOutput(self.config, self.slots, self.prompt.template_hash)
        pending = [(i, s.request) for i, s in enumerate(self.slots) if s.request is not None]
        for i, slot in enumerate(self.slots):
            if slot.render_error:
                output.fail(i, slot.render_error)
        progress.start(len(pending))

        def on_result(position: int, request: LLMRequest, response: LLMResponse) -> None:
            output.accept(pending[position][0], response)
            progress.advance(response)

        try:
            usage = engine.run((request for _, request in pending), on_result)
        finally:
            progress.finish()
            engine.close()
            if cache is not None:
                cache.close()
        written = output.close()
        failures = self.config.failures_path if output.failed else None
        return GenerateSummary(
            output=written, failures_path=failures, rows_written=output.written, failed=output.failed,
            usage=usage, elapsed_s=time.perf_counter() - started, intended=self.config.output,
        )

    def _engine_options(self) -> EngineOptions:
        c = self.config
        return EngineOptions(
            step="generate", max_concurrency=c.concurrency, timeout_s=c.timeout_s,
            retry=RetryPolicy(max_attempts=c.max_attempts), read_cache=c.read_cache,
            write_cache=c.write_cache, price=c.price, seed=c.seed,
        )


class _OrderedOutput:
    """Writes successful rows in input order as they complete; failures go aside at once."""

    def __init__(self, config: GenerateConfig, slots: list[Slot], template_hash: str):
        self.config = config
        self.slots = slots
        self.template_hash = template_hash
        self.writer = RowWriter(config.output)
        self._ready: dict[int, dict[str, Any] | None] = {}
        self._next = 0
        self.written = 0
        self.failed = 0
        self._failures_file = None

    def accept(self, position: int, response: LLMResponse) -> None:
        if not response.ok:
            self.fail(position, response.error or "unknown error", attempts=response.attempts)
            return
        if self.config.json_schema is not None and response.parse_error:
            self.fail(position, response.parse_error, raw=response.text)
            return
        self._ready[position] = self._row(self.slots[position], response)
        self._drain()

    def fail(self, position: int, reason: str, **extra: Any) -> None:
        slot = self.slots[position]
        if self._failures_file is None:
            self._failures_file = open(self.config.failures_path, "w", encoding="utf-8")
        record = {"row_index": slot.row_index, "sample_index": slot.sample_index, "error": reason, "row": slot.row, **extra}
        self._failures_file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._failures_file.flush()
        self.failed += 1
        self._ready[position] = None
        self._drain()

    def _drain(self) -> None:
        while self._next in self._ready:
            row = self._ready.pop(self._next)
            if row is not None:
                self.writer.write(row)
                self.written += 1
            self._next += 1

    def _row(self, slot: Slot, response: LLMResponse) -> dict[str, Any]:
        row = dict(slot.row)
        row[self.config.output_column] = response.text
        if self.config.json_schema is not None:
            row[self.config.output_column + "_json"] = response.parsed
        row["_meta"] = {
            "row_index": slot.row_index,
            "sample_index": slot.sample_index,
            "model": self.config.model,
            "template_hash": self.template_hash,
            "seed": slot.request.params.seed,
            "finish_reason": response.finish_reason,
            "prompt_tokens": response.usage.prompt_tokens,
            "completion_tokens": response.usage.completion_tokens,
        }
        return row

    def close(self) -> Path:
        if self._failures_file is not None:
            self._failures_file.close()
        else:
            self.config.failures_path.unlink(missing_ok=True)  # stale from an earlier run
        return self.writer.close(complete=not self.failed)
