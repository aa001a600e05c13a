"""Magpie: an aligned model, given only its chat template up to the user turn, writes a
user query itself; then it answers that query.

With the in-process llama.cpp backend the pre-query text comes from the model's own chat
template (rendered with a sentinel user message and cut before it). For an
OpenAI-compatible completions endpoint, name the template (`template: chatml`) or give
the pre-query text (`pre_query`). A system prompt steers the topic or persona.

Filters from the paper: query length bounds, dedup of queries (exact after
normalisation here; run a `dedup` step after for semantic near-duplicates), and refusals.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field, model_validator

from synthwright.core.lineage import Row, derive_id
from synthwright.core.step import BatchResult, Stage, StepOptions, register_step
from synthwright.errors import UserError
from synthwright.llm.records import LLMRequest, Message, SamplingParams
from synthwright.recipes.quality import clean_generated_text, length_problem, refusal_problem

SENTINEL = "\x00MAGPIE_QUERY\x00"
# Pre-query text for templates by name, {system} filled in (for servers we cannot render on).
KNOWN_TEMPLATES = {
    "chatml": "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n",
    "llama3": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n",
}
END_OF_QUERY_STOPS = ("<|im_end|>", "<|eot_id|>", "<|im_start|>", "</s>", "<|end|>")


class MagpieOptions(StepOptions):
    model: str
    n: int = Field(20, ge=1)
    system: str = Field("You are a helpful assistant.", description="Steers the topic or persona of the queries")
    template: str | None = Field(None, description=f"Template name for servers: {', '.join(KNOWN_TEMPLATES)}")
    pre_query: str | None = Field(None, description="Raw text up to the user turn (overrides `template`)")
    temperature: float = 1.0
    top_p: float = 0.99
    query_max_tokens: int = 128
    response_max_tokens: int = 384
    min_words: int = 3
    max_words: int = 120
    oversample: float = Field(1.5, ge=1.0, description="Draw this many times n queries, to survive the filters")

    @model_validator(mode="after")
    def _bounds(self) -> "MagpieOptions":
        if self.min_words > self.max_words:
            raise ValueError("min_words must not exceed max_words")
        return self


@register_step("magpie")
class MagpieStage(Stage):
    Options = MagpieOptions
    description = "Magpie: the model writes user queries from its own chat template, then answers them."

    def pre_query_text(self) -> str:
        o = self.options
        if o.pre_query is not None:
            return o.pre_query
        if o.template is not None:
            if o.template not in KNOWN_TEMPLATES:
                raise UserError(f"Unknown Magpie template '{o.template}'.", f"Use one of: {', '.join(KNOWN_TEMPLATES)}, or give pre_query.")
            return KNOWN_TEMPLATES[o.template].format(system=o.system)
        backend = self.context.backend(o.model)
        if not hasattr(backend, "render_chat"):
            raise UserError(
                f"Magpie cannot see the chat template of {o.model}.",
                "Add `template: chatml` (or llama3), or `pre_query:` with the raw text up to the user turn.",
            )
        rendered = backend.render_chat([{"role": "system", "content": o.system}, {"role": "user", "content": SENTINEL}], add_generation_prompt=False)
        return rendered.split(SENTINEL)[0]

    def fingerprint_extra(self):
        return {"pre_query": self.options.pre_query, "template": self.options.template}

    def run(self, rows: Iterable[Row]) -> BatchResult:
        o = self.options
        result = BatchResult()
        queries = self._draw_queries(result)
        kept = self._filter_queries(queries, result)[: o.n]
        requests = [
            LLMRequest(
                messages=(Message(role="system", content=o.system), Message(role="user", content=row["instruction"])),
                params=SamplingParams(temperature=0.0, max_tokens=o.response_max_tokens),
            )
            for row in kept
        ]
        answers, usage = self.context.ask(o.model, f"{self.name}.answer", requests)
        result.stats.add_usage(usage)
        for row, answer in zip(kept, answers):
            if not answer.ok:
                result.fail(row, answer.error or "answer failed")
                continue
            response = answer.text.strip()
            reason = refusal_problem(response)
            if reason:
                result.drop({**row, "response": response}, reason)
                continue
            result.keep({**row, "response": response})
        return result

    def _draw_queries(self, result: BatchResult) -> list[Row]:
        o = self.options
        pre_query = self.pre_query_text()
        total = int(o.n * o.oversample + 0.999)
        requests = [
            LLMRequest(
                prompt=pre_query, sample_index=i,
                params=SamplingParams(temperature=o.temperature, top_p=o.top_p, max_tokens=o.query_max_tokens, stop=END_OF_QUERY_STOPS, seed=self.context.seed_for(self.name, i)),
            )
            for i in range(total)
        ]
        answers, usage = self.context.ask(o.model, self.name, requests)
        result.stats.add_usage(usage)
        rows = []
        for i, answer in enumerate(answers):
            meta = {"id": derive_id(self.name, i), "step": self.name, "recipe": "magpie", "model": o.model, "sample_index": i, "system": o.system}
            row = {"instruction": clean_generated_text(answer.text) if answer.ok else "", "_meta": meta}
            if not answer.ok:
                result.fail(row, answer.error or "query failed")
                continue
            rows.append(row)
        result.stats.rows_in = len(requests)
        return rows

    def _filter_queries(self, rows: list[Row], result: BatchResult) -> list[Row]:
        seen: set[str] = set()
        kept = []
        for row in rows:
            text = row["instruction"]
            normal = " ".join(text.lower().split())
            reason = length_problem(text, self.options.min_words, self.options.max_words) or ("duplicate_query" if normal in seen else None)
            if reason:
                result.drop(row, reason)
                continue
            seen.add(normal)
            kept.append(row)
        return kept
