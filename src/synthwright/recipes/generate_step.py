"""`generate`: a Jinja template per row, N samples each, as a pipeline step.

The step form of `synthwright generate`: each sample becomes a child row with its own id,
the parent's id, the generator model and the template hash in its lineage.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from synthwright.core.lineage import Row, child_row
from synthwright.core.step import BatchResult, RowStep, StepOptions, register_step
from synthwright.llm.records import LLMRequest, LLMResponse, SamplingParams
from synthwright.recipes.template import RowRenderError, TemplatePrompt, load_json_schema


class GenerateOptions(StepOptions):
    model: str = Field(description="Model spec, e.g. llamacpp:smollm2-135m")
    template: str | None = Field(None, description="Path to a Jinja template file")
    prompt: str | None = Field(None, description="Inline Jinja template (instead of `template`)")
    system: str | None = None
    raw: bool = False
    samples: int = Field(1, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(256, ge=1)
    top_p: float | None = None
    stop: list[str] = []
    json_schema: dict[str, Any] | str | None = Field(None, description="A schema object or a path to one")
    output_column: str = "generation"
    persona_column: str | None = Field(None, description="Column whose text (a persona) becomes the system prompt")

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
        result = BatchResult()
        result.stats.rows_in = len(rows)
        jobs, requests = self._requests(rows, result)
        answers: dict[int, LLMResponse] = {}
        engine = self.context.engine(self.options.model, self.name)
        usage = engine.run(requests, lambda i, _req, resp: answers.__setitem__(i, resp))
        result.stats.add_usage(usage)
        for index, (row, sample_index, request) in enumerate(jobs):
            self._collect(result, row, sample_index, request, answers[index])
        return result

    def _requests(self, rows: list[Row], result: BatchResult):
        o = self.options
        jobs, requests = [], []
        for row in rows:
            for sample_index in range(o.samples):
                params = SamplingParams(
                    temperature=o.temperature, max_tokens=o.max_tokens, top_p=o.top_p, stop=tuple(o.stop),
                    seed=self.context.seed_for(self.name, row["_meta"]["id"], sample_index),
                )
                try:
                    request = self.prompt.request(row, params, sample_index, json_schema=self.schema, system=self._system_for(row))
                except RowRenderError as exc:
                    result.fail(row, str(exc))
                    break
                jobs.append((row, sample_index, request))
                requests.append(request)
        return jobs, requests

    def _system_for(self, row: Row) -> str | None:
        """The persona (when configured) goes first, then the step's own system prompt."""
        persona = row.get(self.options.persona_column) if self.options.persona_column else None
        parts = [p for p in (persona, self.options.system) if p]
        return "\n\n".join(parts) or None

    def _collect(self, result: BatchResult, row: Row, sample_index: int, request: LLMRequest, response: LLMResponse) -> None:
        if not response.ok:
            result.fail(row, response.error or "unknown error")
            return
        if self.schema is not None and response.parse_error:
            result.fail(row, f"invalid_json: {response.parse_error}")
            return
        child = child_row(
            row, self.name, sample_index, recipe="generate", model=self.options.model,
            template_hash=self.prompt.template_hash,
        )
        child[self.options.output_column] = response.text
        if self.schema is not None:
            child[self.options.output_column + "_json"] = response.parsed
        result.keep(child)
