"""`generate`: a Jinja template per row, N samples each, as a pipeline step.

The step form of `synthwright generate`: each sample becomes a child row with its own id,
the parent's id, the generator model and the template hash in its lineage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field, model_validator

from synthwright.core.lineage import Row, child_row, with_meta
from synthwright.core.step import BatchResult, RowStep, StepOptions, added_option, register_step
from synthwright.llm.records import LLMRequest, LLMResponse, SamplingParams
from synthwright.recipes.template import RowRenderError, TemplatePrompt, load_json_schema


class GenerateOptions(StepOptions):
    model: str = Field(description="Model spec (llamacpp:smollm2-135m, llamacpp:/path/m.gguf, openai:gpt-4o-mini, "
                                   "openai:NAME@http://127.0.0.1:8080/v1) or a model id of the run")
    template: str | None = Field(None, description="Jinja template file; input columns are its variables")
    prompt: str | None = Field(None, description="Inline Jinja template (instead of `template`)")
    system: str | None = Field(None, description="System message")
    raw: bool = Field(False, description="Send the rendered template as a raw completion prompt, not a chat message")
    samples: int = Field(1, ge=1, description="Samples per input row")
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(256, ge=1)
    top_p: float | None = None
    top_k: int | None = added_option(None, ge=0)
    stop: list[str] = Field([], description="Stop strings")
    json_schema: dict[str, Any] | str | None = Field(None, description="A schema object or a path to one: constrain the answer to it")
    output_column: str = Field("generation", description="Name of the output column")
    persona_column: str | None = Field(None, description="Column whose text (a persona) becomes the system prompt")
    novelty_epsilon: float | None = Field(None, ge=0.0, le=2.0, description="Reject a generation within this cosine distance of one already kept")
    novelty_embedder: str = Field("minilm", description="Embedder of the novelty gate")
    max_replacements: int = Field(2, ge=0, description="How often to ask again for a sample the novelty gate rejected")
    logprobs: bool = Field(False, description="Record the mean token log-probability as OUTPUT_logprob (where the backend gives it)")

    @model_validator(mode="after")
    def _one_template(self) -> "GenerateOptions":
        if (self.template is None) == (self.prompt is None):
            raise ValueError("give exactly one of `template` (a file) or `prompt` (inline text)")
        return self


@register_step("generate")
class GenerateStep(RowStep):
    Options = GenerateOptions
    description = "Render a template per row and ask a model; one child row per sample."
    default_batch_size = 32

    def __init__(self, name, options: GenerateOptions, context):
        super().__init__(name, options, context)
        if options.template is not None:
            self.prompt = TemplatePrompt.from_file(context.resolve(options.template), system=options.system, raw=options.raw)
        else:
            self.prompt = TemplatePrompt(source=options.prompt, name=f"{name}.prompt", system=options.system, raw=options.raw)
        self._gate = None
        schema = options.json_schema
        self.schema = load_json_schema(context.resolve(schema)) if isinstance(schema, str) else schema

    def required_columns(self) -> tuple[str, ...]:
        persona = (self.options.persona_column,) if self.options.persona_column else ()
        return tuple(sorted(self.prompt.variables)) + persona

    def output_columns(self) -> tuple[str, ...]:
        return (self.options.output_column,)

    def fingerprint_extra(self) -> dict[str, Any]:
        return {"template_hash": self.prompt.template_hash, "schema": self.schema}

    def process(self, rows: list[Row]) -> BatchResult:
        """Generate every (row, sample); with a novelty gate, drop near-duplicates the moment
        they come back and ask again (a new sample index) up to `max_replacements` times."""
        result = BatchResult.for_input(len(rows))
        jobs = [(row, sample_index) for row in self._renderable(rows, result) for sample_index in range(self.options.samples)]
        for attempt in range(self.options.max_replacements + 1):
            children = self._generate(jobs, result)
            rejected = self._admit(children, result) if self.options.novelty_epsilon is not None else []
            if not rejected:
                break
            # A replacement gets a fresh sample index, so a new seed and a new cache entry.
            jobs = [(row, sample_index + self.options.samples) for row, sample_index in rejected]
        return result

    def first_requests(self, rows: list[Row]) -> tuple[list[LLMRequest], int]:
        """What a batch of `rows` asks first (a novelty gate may ask again), and how many rows
        cannot be rendered: what a dry run shows without sending anything."""
        result = BatchResult.for_input(len(rows))
        renderable = self._renderable(rows, result)
        requests = [self._request(row, i) for row in renderable for i in range(self.options.samples)]
        return requests, len(result.failed)

    def _renderable(self, rows: list[Row], result: BatchResult) -> list[Row]:
        ok = []
        for row in rows:
            try:
                self.prompt.render(row)
                ok.append(row)
            except RowRenderError as exc:
                result.fail(row, str(exc))
        return ok

    def _generate(self, jobs: list[tuple[Row, int]], result: BatchResult) -> list[tuple[Row, int, Row]]:
        requests = (self._request(row, sample_index) for row, sample_index in jobs)  # built as they are sent
        # A line per batch under the step's: a big batch (the `generate` command's) shows each answer.
        progress = self.context.request_progress(f"{self.name}: {len(jobs)} requests")
        answers, usage = self.context.ask(self.options.model, self.name, requests, progress, total=len(jobs))
        result.stats.add_usage(usage)
        children = []
        for (row, sample_index), response in zip(jobs, answers):
            child = self._child(result, row, sample_index, response)
            if child is not None:
                children.append((row, sample_index, child))
        if self.options.novelty_epsilon is None:
            for _, _, child in children:
                result.keep(child)
        return children

    def _request(self, row: Row, sample_index: int) -> LLMRequest:
        o = self.options
        params = SamplingParams(
            temperature=o.temperature, max_tokens=o.max_tokens, top_p=o.top_p, top_k=o.top_k, stop=tuple(o.stop),
            seed=self.context.seed_for(self.name, row["_meta"]["id"], sample_index),
        )
        extra = {"top_logprobs": 1} if o.logprobs else {}
        return self.prompt.request(row, params, sample_index, json_schema=self.schema, system=self._system_for(row), **extra)

    # -- the novelty gate --------------------------------------------------------------------------
    def gate(self):
        if self._gate is None:
            from synthwright.embed import load_embedder
            from synthwright.filters import NoveltyGate

            self._gate = NoveltyGate(load_embedder(self.options.novelty_embedder), self.options.novelty_epsilon)
        return self._gate

    def carries_state(self) -> bool:
        return self.options.novelty_epsilon is not None  # the gate remembers earlier batches

    def warm_start(self, kept: Iterator[Row]) -> None:
        """On resume, the gate must know what earlier batches already admitted."""
        if self.options.novelty_epsilon is None:
            return
        column = self.options.output_column
        rows = [row for row in kept if isinstance(row.get(column), str)]
        if rows:
            self.gate().add([row[column] for row in rows], [row["_meta"]["id"] for row in rows])

    def _admit(self, children: list[tuple[Row, int, Row]], result: BatchResult) -> list[tuple[Row, int]]:
        if not children:
            return []
        column = self.options.output_column
        decision = self.gate().admit([c[column] for _, _, c in children], [c["_meta"]["id"] for _, _, c in children])
        rejected = []
        for (row, sample_index, child), keep, twin, distance in zip(children, decision.keep, decision.neighbour, decision.distance):
            if keep:
                result.keep(child)
                continue
            result.drop(with_meta(child, duplicate_of=twin, cosine_distance=round(float(distance), 6)), "dropped_near_duplicate")
            rejected.append((row, sample_index))
        return rejected

    def _system_for(self, row: Row) -> str | None:
        """The persona (when configured) goes first, then the step's own system prompt."""
        persona = row.get(self.options.persona_column) if self.options.persona_column else None
        parts = [p for p in (persona, self.options.system) if p]
        return "\n\n".join(parts) or None

    def _child(self, result: BatchResult, row: Row, sample_index: int, response: LLMResponse) -> Row | None:
        if not response.ok:
            result.fail(row, response.error or "unknown error")
            return None
        if self.schema is not None and response.parse_error:
            result.fail(row, f"invalid_json: {response.parse_error}")
            return None
        child = child_row(
            row, self.name, sample_index, recipe="generate", model=self.options.model,
            template_hash=self.prompt.template_hash,
        )
        child[self.options.output_column] = response.text
        if self.options.logprobs and response.logprobs:
            # InPars filters generated queries by this: a low mean log-probability marks a
            # generation the model itself found unlikely (often off-topic or garbled).
            child[self.options.output_column + "_logprob"] = sum(t.logprob for t in response.logprobs) / len(response.logprobs)
        if self.schema is not None:
            child[self.options.output_column + "_json"] = response.parsed
        return child
