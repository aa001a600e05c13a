"""Evol-Instruct: evolve instructions into harder and rarer ones, then eliminate bad evolutions.

Each round, every instruction in the pool is rewritten by one operation, chosen with a
seeded draw: five in-depth operations (add constraints, deepening, concretizing, increase
reasoning steps, complicate input) and in-breadth mutation (a new, rarer instruction in
the same domain). Each evolution is answered by the teacher, then eliminated if

- it gained nothing over its parent (an LLM equality check says they are equal),
- the teacher could not answer it (a short response with refusal markers),
- its response is only punctuation and stop words,
- it copies the rewriting prompt's scaffolding ("#Rewritten Prompt#", "given prompt").

A surviving evolution replaces its parent in the pool; an eliminated one leaves the parent
in the pool for the next round (as in the paper). The evolution tree is in lineage: each
row's parent, round and operation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from synthwright.core.lineage import Row, child_row, meta_of, with_meta
from synthwright.core.step import BatchResult, Stage, StepOptions, register_step
from synthwright.llm.records import LLMRequest, Message, SamplingParams
from synthwright.recipes.quality import clean_generated_text, new_content_words, refusal_problem, scaffolding_problem, stopword_only_problem

Operation = Literal["add_constraints", "deepening", "concretizing", "increase_reasoning", "complicate_input", "breadth"]
OPERATIONS: tuple[str, ...] = ("add_constraints", "deepening", "concretizing", "increase_reasoning", "complicate_input", "breadth")

_IN_DEPTH = """You rewrite requests for an AI assistant so that they become somewhat harder to answer well, while staying reasonable, natural and answerable by a person. Keep any input the request contains (code, tables, text). Add no more than 10 to 20 words. Do not mention that this is a rewrite.

How to make it harder: {how}

Request:
{instruction}

Reply with the rewritten request only."""

HOW = {
    "add_constraints": "add one more constraint or requirement the answer must satisfy.",
    "deepening": "if the request asks about a particular issue, ask for more depth and breadth on it.",
    "concretizing": "replace a general concept with a more specific one.",
    "increase_reasoning": "if it can be solved in one or two simple steps, make it explicitly require several steps of reasoning.",
    "complicate_input": "add a concrete input the answer must work with, such as a short table, a code snippet, a list of figures or a formula.",
}

_BREADTH = """You write new requests for an AI assistant. Taking the request below as inspiration, write a brand-new request in the same domain but about a rarer, more specific topic. It should be about as long and as hard as the original, natural, and answerable by a person.

Request:
{instruction}

Reply with the new request only."""

_EQUALITY = """Here are two requests to an AI assistant.

Request 1:
{a}

Request 2:
{b}

Do they ask for the same thing, with the same constraints and requirements and the same depth and breadth? Answer Equal or Different."""


def evolution_prompt(operation: str, instruction: str) -> str:
    if operation == "breadth":
        return _BREADTH.format(instruction=instruction)
    return _IN_DEPTH.format(how=HOW[operation], instruction=instruction)


class EvolOptions(StepOptions):
    model: str = Field(description="The teacher that evolves and answers")
    judge_model: str | None = Field(None, description="Model for the equality check (default: the teacher)")
    column: str = Field("instruction", description="The instruction column of the input rows")
    response_column: str = "response"
    rounds: int = Field(3, ge=1, le=10, description="Rounds of evolution (at most this many when `n` is set)")
    n: int | None = Field(None, ge=1, description="Stop once this many evolutions are kept (output capped at n)")
    operations: list[Operation] = Field(list(OPERATIONS))
    temperature: float = 0.7
    max_tokens: int = Field(256, description="For evolved instructions")
    response_max_tokens: int = 384
    equal_threshold: float = Field(0.5, description="The LLM equality check calls a pair equal above this P(Equal)")
    min_new_words: int = Field(
        3, ge=0,
        description="An evolution judged equal is dropped only if it also adds fewer new content words than this (0: trust the LLM alone)",
    )
    include_parents: bool = Field(False, description="Also output the round-0 instructions")


@register_step("evol_instruct")
class EvolInstructStage(Stage):
    Options = EvolOptions
    description = "Evol-Instruct: in-depth and in-breadth evolution over rounds, with the elimination step."

    def required_columns(self) -> tuple[str, ...]:
        return (self.options.column,)

    def fingerprint_extra(self):
        return {"prompts": [_IN_DEPTH, _BREADTH, _EQUALITY, HOW]}

    def run(self, rows: Iterable[Row]) -> BatchResult:
        result = BatchResult()
        pool = list(rows)
        result.stats.rows_in = len(pool)
        if self.options.include_parents:
            for row in pool:
                result.keep(row)
        for round_number in range(1, self.options.rounds + 1):
            pool = self._round(pool, round_number, result)
            if self.options.n is not None and len(result.kept) >= self.options.n:
                break
        if self.options.n is not None:
            result.kept = result.kept[: self.options.n]
            result.stats.rows_out = len(result.kept)
        return result

    def _round(self, pool: list[Row], round_number: int, result: BatchResult) -> list[Row]:
        o = self.options
        operations = [self.context.rng(self.name, meta_of(row).get("id"), round_number).choice(o.operations) for row in pool]
        evolved = self._evolve(pool, operations, round_number, result)
        candidates = []
        for parent, operation, text in zip(pool, operations, evolved):
            if text is None:
                result.fail(self._child(parent, operation, round_number, ""), "evolution request failed")
                continue
            reason = scaffolding_problem(text) or (None if text else "empty_evolution")
            if reason is None:
                candidates.append((parent, operation, text))
            else:
                result.drop(self._child(parent, operation, round_number, text), reason)
        survivors = self._drop_equal(candidates, round_number, result)
        responses = self._answer([text for _, _, text in survivors], round_number, result)
        next_pool = {meta_of(p).get("id"): p for p in pool}
        for (parent, operation, text), response in zip(survivors, responses):
            child = self._child(parent, operation, round_number, text)
            if response is None:
                result.fail(child, "teacher answer failed")
                continue
            child[o.response_column] = response
            reason = refusal_problem(response) or stopword_only_problem(response)
            if reason:
                result.drop(child, reason)
                continue
            result.keep(child)
            next_pool[meta_of(parent).get("id")] = child  # the evolution replaces its parent
        return list(next_pool.values())

    def _child(self, parent: Row, operation: str, round_number: int, text: str) -> Row:
        child = child_row(parent, self.name, round_number, recipe="evol_instruct", model=self.options.model, round=round_number, evolution=operation)
        child[self.options.column] = text
        child.pop(self.options.response_column, None)
        return child

    def _evolve(self, pool: list[Row], operations: list[str], round_number: int, result: BatchResult) -> list[str | None]:
        o = self.options
        requests = [
            LLMRequest(
                messages=(Message(role="user", content=evolution_prompt(op, str(row[o.column]))),),
                params=SamplingParams(temperature=o.temperature, max_tokens=o.max_tokens, seed=self.context.seed_for(self.name, "evolve", meta_of(row).get("id"), round_number)),
            )
            for row, op in zip(pool, operations)
        ]
        answers, usage = self.context.ask(o.model, self.name, requests)
        result.stats.add_usage(usage)
        return [clean_generated_text(a.text) if a.ok else None for a in answers]

    def _drop_equal(self, candidates: list, round_number: int, result: BatchResult) -> list:
        """The elimination step's information-gain check: an LLM asked whether parent and
        evolution are the same request."""
        o = self.options
        requests = [
            LLMRequest(messages=(Message(role="user", content=_EQUALITY.format(a=parent[o.column], b=text)),), choices=("Equal", "Different"))
            for parent, _, text in candidates
        ]
        answers, usage = self.context.ask(o.judge_model or o.model, f"{self.name}.equality", requests)
        result.stats.add_usage(usage)
        survivors = []
        for candidate, answer in zip(candidates, answers):
            parent, operation, text = candidate
            p_equal = answer.choice_probs["Equal"] if answer.ok and answer.choice_probs else 0.0
            added = new_content_words(str(parent[o.column]), text)
            # Measured here: Qwen2.5-Coder-1.5B is at chance on this check (P(Equal) 0.49-0.77
            # for both paraphrases and real gains), so its "equal" must be backed by the
            # lexical evidence: few new content words.
            lexically_same = o.min_new_words == 0 or added < o.min_new_words
            if p_equal > o.equal_threshold and lexically_same:
                child = with_meta(self._child(parent, operation, round_number, text), p_equal=round(p_equal, 4), new_content_words=added)
                result.drop(child, "no_information_gain")
            else:
                survivors.append(candidate)
        return survivors

    def _answer(self, instructions: list[str], round_number: int, result: BatchResult) -> list[str | None]:
        o = self.options
        requests = [
            LLMRequest(messages=(Message(role="user", content=text),), params=SamplingParams(temperature=0.0, max_tokens=o.response_max_tokens))
            for text in instructions
        ]
        answers, usage = self.context.ask(o.model, f"{self.name}.answer", requests)
        result.stats.add_usage(usage)
        return [a.text.strip() if a.ok else None for a in answers]
