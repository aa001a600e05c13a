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

from synthwright.core.lineage import Row, add_score, derive_id, with_meta
from synthwright.core.step import BatchResult, Stage, StepOptions, register_step
from synthwright.errors import UserError
from synthwright.llm.records import LLMRequest, Message, SamplingParams
from synthwright.recipes.quality import clean_generated_text, length_problem, refusal_problem, start_problem

SENTINEL = "\x00MAGPIE_QUERY\x00"
# Pre-query text for templates by name, {system} filled in (for servers we cannot render on).
KNOWN_TEMPLATES = {
    "chatml": "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n",
    "llama3": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n",
}
# Besides end-of-turn tokens: a small model sometimes writes the role name as text and goes
# on to answer its own query ("...in LLVM?\n\nAssistant```cpp ..."); cut there.
END_OF_QUERY_STOPS = ("<|im_end|>", "<|eot_id|>", "<|im_start|>", "</s>", "<|end|>", "\nAssistant", "\nassistant", "\nASSISTANT")


_QUALITY = """Rate the user query below for quality: is it clear, specific and well-formed, with everything needed to answer it? 1 = very poor, 5 = excellent.

Query:
{query}

Reply with one digit from 1 to 5."""
_DIFFICULTY = """Rate how difficult the user query below is to answer well. 1 = very easy, 5 = very hard.

Query:
{query}

Reply with one digit from 1 to 5."""


def _expected(response) -> float | None:
    if not response.ok or not response.choice_probs:
        return None
    return round(sum(int(digit) * p for digit, p in response.choice_probs.items()), 4)


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
    oversample: float = Field(1.5, ge=1.0, description="Draw this many times the queries still needed, to survive the filters")
    max_rounds: int = Field(4, ge=1, description="Draw again (new samples) until n queries pass, at most this many times")
    novelty_epsilon: float | None = Field(None, ge=0.0, le=2.0, description="Drop a query within this cosine distance of a kept one (else exact dedup)")
    judge_model: str | None = Field(None, description="Tag each query with quality and difficulty (1-5) from this judge")
    min_quality: float | None = Field(None, ge=1.0, le=5.0, description="Drop queries the judge rates below this quality")

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
        if not backend.renders_chat:
            raise UserError(
                f"Magpie cannot see the chat template of {o.model}.",
                "Add `template: chatml` (or llama3), or `pre_query:` with the raw text up to the user turn.",
            )
        rendered = backend.render_chat([{"role": "system", "content": o.system}, {"role": "user", "content": SENTINEL}], add_generation_prompt=False)
        return rendered.split(SENTINEL)[0]

    _gate = None

    def fingerprint_extra(self):
        return {"pre_query": self.options.pre_query, "template": self.options.template}

    def run(self, rows: Iterable[Row]) -> BatchResult:
        o = self.options
        result = BatchResult()
        kept: list[Row] = []
        seen: set[str] = set()
        drawn = 0
        # Rounds: filters drop a share of drafts that depends on the model (Qwen-1.5B: half
        # started with punctuation in one run), so draw again for what is still missing.
        for _ in range(o.max_rounds):
            missing = o.n - len(kept)
            if missing <= 0:
                break
            # After the first round, size the draw by the survival rate seen so far.
            survival = len(kept) / drawn if drawn else 1.0
            count = int(missing * o.oversample / max(survival, 0.1) + 0.999)
            queries = self._draw_queries(result, first=drawn, count=count)
            drawn += count
            kept += self._tag_and_filter_by_judge(self._filter_queries(queries, result, seen), result)
        result.stats.rows_in = drawn
        for row in kept[o.n:]:
            result.drop(row, "over_n")
        kept = kept[: o.n]
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

    def _draw_queries(self, result: BatchResult, first: int, count: int) -> list[Row]:
        o = self.options
        pre_query = self.pre_query_text()
        requests = [
            LLMRequest(
                prompt=pre_query, sample_index=i,
                params=SamplingParams(temperature=o.temperature, top_p=o.top_p, max_tokens=o.query_max_tokens, stop=END_OF_QUERY_STOPS, seed=self.context.seed_for(self.name, i)),
            )
            for i in range(first, first + count)
        ]
        answers, usage = self.context.ask(o.model, self.name, requests)
        result.stats.add_usage(usage)
        rows = []
        for i, answer in enumerate(answers, first):
            meta = {"id": derive_id(self.name, i), "step": self.name, "recipe": "magpie", "model": o.model, "sample_index": i, "system": o.system}
            row = {"instruction": clean_generated_text(answer.text) if answer.ok else "", "_meta": meta}
            if not answer.ok:
                result.fail(row, answer.error or "query failed")
                continue
            rows.append(row)
        return rows

    def _filter_queries(self, rows: list[Row], result: BatchResult, seen: set[str]) -> list[Row]:
        kept = []
        for row in rows:
            text = row["instruction"]
            normal = " ".join(text.lower().split())
            reason = (
                start_problem(text)
                or length_problem(text, self.options.min_words, self.options.max_words)
                or ("duplicate_query" if normal in seen else None)
            )
            if reason:
                result.drop(row, reason)
                continue
            seen.add(normal)
            kept.append(row)
        return self._novel(kept, result) if self.options.novelty_epsilon is not None else kept

    def _novel(self, rows: list[Row], result: BatchResult) -> list[Row]:
        """The paper's dedup, semantically: drop queries within epsilon of a kept one."""
        from synthwright.embed import load_embedder
        from synthwright.filters import NoveltyGate

        if self._gate is None:  # one gate across rounds: a later round's query may repeat an earlier one
            self._gate = NoveltyGate(load_embedder("minilm"), self.options.novelty_epsilon)
        decision = self._gate.admit([r["instruction"] for r in rows], [r["_meta"]["id"] for r in rows])
        kept = []
        for row, keep, twin, distance in zip(rows, decision.keep, decision.neighbour, decision.distance):
            if keep:
                kept.append(row)
            else:
                result.drop(with_meta(row, duplicate_of=twin, cosine_distance=round(float(distance), 6)), "dropped_near_duplicate")
        return kept

    def _tag_and_filter_by_judge(self, rows: list[Row], result: BatchResult) -> list[Row]:
        """Magpie's quality and difficulty tags: expected 1-5 scores from a judge's digit probabilities."""
        o = self.options
        if o.judge_model is None or not rows:
            return rows
        scale = ("1", "2", "3", "4", "5")
        questions = [
            LLMRequest(messages=(Message(role="user", content=prompt.format(query=row["instruction"])),), choices=scale)
            for row in rows for prompt in (_QUALITY, _DIFFICULTY)
        ]
        answers, usage = self.context.ask(o.judge_model, f"{self.name}.tags", questions)
        result.stats.add_usage(usage)
        kept = []
        for index, row in enumerate(rows):
            quality, difficulty = (_expected(answers[2 * index + k]) for k in (0, 1))
            tagged = {**row, "query_quality": quality, "query_difficulty": difficulty}
            tagged = add_score(add_score(tagged, "magpie.quality", quality, model=o.judge_model), "magpie.difficulty", difficulty, model=o.judge_model)
            if o.min_quality is not None and (quality is None or quality < o.min_quality):
                result.drop(tagged, "low_quality_query")
                continue
            kept.append(tagged)
        return kept
