"""Self-Instruct: bootstrap new tasks from seed tasks, round after round, until N.

Each prompt shows 8 in-context tasks, 6 from the human seeds and 2 from the machine pool
(when it has any), and asks for more. New instructions are filtered (3 to 150 words, no
blacklisted keyword, not starting with punctuation or non-ASCII, ROUGE-L <= 0.7 against
every instruction already in the pool), then classified (is it a classification task?),
and given an instance: classification tasks output-first (label, then an input that has
it, so labels don't collapse onto one class), others input-first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from pydantic import Field

from synthwright.core.lineage import Row, derive_id, meta_of
from synthwright.core.step import BatchResult, Stage, StepOptions, register_step
from synthwright.io.rows import read_rows
from synthwright.llm.records import LLMRequest, Message, SamplingParams
from synthwright.recipes.quality import blacklist_problem, clean_generated_text, length_problem, start_problem

HUMAN_IN_CONTEXT = 6
MACHINE_IN_CONTEXT = 2

_TASKS_PROMPT = "Come up with a series of diverse tasks a person might ask an AI assistant to do. Vary the topic, the verb and the kind of answer.\n\n{examples}Task {next}:"
_IS_CLASSIFICATION = """Can the following task be regarded as a classification task with a small, fixed set of output labels?

Task: {instruction}

Answer Yes or No."""
_INPUT_FIRST = """Write one example for the task below. If the task needs an input (a text, some data, a question), write it after "Input:"; if it needs none, write "Input: <none>". Then write the correct answer after "Output:".

Task: {instruction}
"""
_OUTPUT_FIRST = """Given the classification task below, first pick one possible class label and write it after "Output:", then write an input that has that label after "Input:".

Task: {instruction}
"""


def builtin_seed_path() -> Path:
    return Path(str(resources.files("synthwright.recipes") / "data" / "seed_tasks.jsonl"))


_TASK_BREAK = re.compile(r"\n\s*(?:Task\s*\d+\s*[:.]|\d+\s*[.)]|[-*])\s*")


def parse_tasks(text: str) -> list[str]:
    """Split the continuation ('first task\nTask 10: ...' or a numbered or bulleted list)
    into instructions, one per item; text after a blank line belongs to no task."""
    tasks = []
    for part in _TASK_BREAK.split("\n" + text.strip()):
        task = clean_generated_text(part.split("\n\n")[0].strip())
        if task:
            tasks.append(task)
    return tasks


def parse_instance(text: str, output_first: bool) -> tuple[str, str] | None:
    match_in = re.search(r"Input:\s*(.*?)(?=\n\s*Output:|\Z)", text, flags=re.S)
    match_out = re.search(r"Output:\s*(.*?)(?=\n\s*Input:|\Z)", text, flags=re.S)
    if not match_out or not match_out.group(1).strip():
        return None
    instance_input = match_in.group(1).strip() if match_in else ""
    if instance_input.lower() in ("<none>", "none", "n/a"):
        instance_input = ""
    return instance_input, match_out.group(1).strip()


class SelfInstructOptions(StepOptions):
    model: str
    n: int = Field(50, ge=1, description="How many new tasks to make")
    seeds: str | None = Field(None, description="Seed tasks file (JSONL with `instruction`, optional `input`, `output`, `is_classification`); default: built-in seeds")
    prompts_per_round: int = Field(4, ge=1, description="Generation prompts sent in parallel per round")
    max_rounds: int = Field(50, ge=1)
    rouge_threshold: float = Field(0.7, description="Drop an instruction whose ROUGE-L with any pooled one exceeds this")
    min_words: int = 3
    max_words: int = 150
    temperature: float = 0.7
    max_tokens: int = 384


@register_step("self_instruct")
class SelfInstructStage(Stage):
    Options = SelfInstructOptions
    description = "Self-Instruct: bootstrap tasks from seeds with ROUGE-L, length and keyword filters, then make instances."

    def fingerprint_extra(self):
        return {"prompts": [_TASKS_PROMPT, _IS_CLASSIFICATION, _INPUT_FIRST, _OUTPUT_FIRST], "seeds": str(self._seed_path())}

    def _seed_path(self) -> Path:
        return self.context.resolve(self.options.seeds) if self.options.seeds else builtin_seed_path()

    def run(self, rows: Iterable[Row]) -> BatchResult:
        result = BatchResult()
        seeds = self._load_seeds(list(rows))
        result.stats.rows_in = len(seeds)
        # The ROUGE-L pool: seeds first, then every machine task admitted. A sparse overlap
        # bound means only plausible pairs get an exact LCS (no loop over all pairs).
        from synthwright.filters.rouge_index import RougeLIndex  # numpy/scipy: loaded when the step runs

        pool = RougeLIndex(self.options.rouge_threshold)
        self._rouge(pool, seeds)
        machine: list[Row] = []
        for round_number in range(1, self.options.max_rounds + 1):
            if len(machine) >= self.options.n:
                break
            fresh = self._generate_round(seeds, machine, round_number, pool, result)
            machine.extend(fresh[: self.options.n - len(machine)])
        for row in self._with_instances(machine, result):
            result.keep(row)
        return result

    def _load_seeds(self, rows: list[Row]) -> list[Row]:
        seeds = rows or read_rows(self._seed_path())
        out = []
        for index, row in enumerate(seeds):
            meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
            out.append({
                "instruction": str(row["instruction"]),
                "input": str(row.get("input") or ""),
                "output": str(row.get("output") or row.get("reference_output") or ""),
                "is_classification": bool(row.get("is_classification", meta.get("is_classification", False))),
                "_meta": meta_of(row) or {"id": derive_id("seed", index), "step": "seed"},
            })
        return out

    @staticmethod
    def _rouge(pool, rows: list[Row]):
        """(row, drop) for each row against the pool (and earlier rows of the batch); kept rows join the pool."""
        from synthwright.filters.base import FilterStats
        from synthwright.filters.rouge_index import filter_batch

        keyed = [{"text": row["instruction"], "id": row["_meta"]["id"]} for row in rows]
        decisions = filter_batch(pool, keyed, 0, "text", "id", FilterStats())
        return [(row, drop) for row, (_, drop) in zip(rows, decisions)]

    def _generate_round(self, seeds, machine, round_number, pool, result) -> list[Row]:
        o = self.options
        contexts = []
        requests = []
        for prompt_index in range(o.prompts_per_round):
            rng = self.context.rng(self.name, round_number, prompt_index)
            shown = rng.sample(seeds, min(HUMAN_IN_CONTEXT, len(seeds))) + rng.sample(machine, min(MACHINE_IN_CONTEXT, len(machine)))
            rng.shuffle(shown)
            examples = "".join(f"Task {i}: {task['instruction']}\n" for i, task in enumerate(shown, 1))
            contexts.append(shown)
            requests.append(LLMRequest(
                messages=(Message(role="user", content=_TASKS_PROMPT.format(examples=examples, next=len(shown) + 1)),),
                params=SamplingParams(temperature=o.temperature, max_tokens=o.max_tokens, stop=("Task 20",), seed=rng.randrange(2**31)),
            ))
        answers, usage = self.context.ask(o.model, self.name, requests)
        result.stats.add_usage(usage)
        candidates = []
        for prompt_index, (shown, answer) in enumerate(zip(contexts, answers)):
            if not answer.ok:
                result.stats.failed["generation request failed"] += 1
                continue
            parents = [meta_of(t).get("id") for t in shown]
            for position, instruction in enumerate(parse_tasks(answer.text)):
                row = self._machine_row(instruction, round_number, parents, prompt_index, position)
                reason = self._rule_problem(instruction)
                if reason:
                    result.drop(row, reason)
                else:
                    candidates.append(row)
        fresh = []
        for row, drop in self._rouge(pool, candidates):
            if drop is None:
                fresh.append(row)
            else:
                result.drop({**row, "_meta": {**row["_meta"], "duplicate_of": drop.duplicate_of, "rouge_l_f": drop.value}}, "rouge_l_too_similar")
        return fresh

    def _machine_row(self, instruction: str, round_number: int, parents: list, index: int, position: int) -> Row:
        meta = {
            "id": derive_id(self.name, round_number, index, position, instruction), "step": self.name, "recipe": "self_instruct",
            "model": self.options.model, "round": round_number, "parents": parents,
        }
        return {"instruction": instruction, "_meta": meta}

    def _rule_problem(self, instruction: str) -> str | None:
        o = self.options
        return start_problem(instruction) or length_problem(instruction, o.min_words, o.max_words) or blacklist_problem(instruction)

    def _with_instances(self, machine: list[Row], result: BatchResult) -> list[Row]:
        o = self.options
        questions = [
            LLMRequest(messages=(Message(role="user", content=_IS_CLASSIFICATION.format(instruction=r["instruction"])),), choices=("Yes", "No"))
            for r in machine
        ]
        verdicts, usage = self.context.ask(o.model, f"{self.name}.classify", questions)
        result.stats.add_usage(usage)
        is_classification = [bool(v.ok and v.choice_probs and v.choice_probs["Yes"] > 0.5) for v in verdicts]
        instance_requests = [
            LLMRequest(
                messages=(Message(role="user", content=(_OUTPUT_FIRST if cls else _INPUT_FIRST).format(instruction=r["instruction"])),),
                params=SamplingParams(temperature=0.0, max_tokens=o.max_tokens),
            )
            for r, cls in zip(machine, is_classification)
        ]
        instances, usage = self.context.ask(o.model, f"{self.name}.instances", instance_requests)
        result.stats.add_usage(usage)
        complete = []
        for row, cls, answer in zip(machine, is_classification, instances):
            parsed = parse_instance(answer.text, output_first=cls) if answer.ok else None
            if parsed is None:
                result.drop({**row, "is_classification": cls}, "instance_unparsed" if answer.ok else "instance_request_failed")
                continue
            complete.append({**row, "input": parsed[0], "output": parsed[1], "is_classification": cls})
        return complete
