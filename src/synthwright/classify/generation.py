"""Pipeline steps that write labelled examples: `class_prompts` (the teacher proposes
attributes; prompt rows are drawn from their combinations), `write_examples` (the teacher
writes one text per prompt row, cleaned on arrival) and `clean_text` (the same cleaning for
any text column)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from synthwright.classify.clean import CLEANING_VERSION, clean_text
from synthwright.classify.prompts import (
    DEFAULT_LENGTHS, EXAMPLE_PROMPT, STYLE_PROMPT, SUBTOPIC_PROMPT, clean_items, fitting_subtopics, merge_distinct, prompt_rows, with_edge_cases,
)
from synthwright.classify.task import TaskSpec, load_task
from synthwright.core.files import write_json_report
from synthwright.core.lineage import Row, derive_id, with_meta
from synthwright.core.step import BatchResult, RowStep, SourceStep, StepOptions, register_step
from synthwright.errors import UserError
from synthwright.llm.offline_models import DEFAULT_TEACHER
from synthwright.llm.records import SamplingParams
from synthwright.recipes.generate_step import GenerateOptions, GenerateStep
from synthwright.recipes.template import TemplatePrompt


class TaskOptions(StepOptions):
    task: TaskSpec | str = Field(description="The task: {labels: {NAME: description}, register: ...} inline, or a YAML file")


class ReadsTask:
    """Mixin: the step's task spec, loaded once (paths relative to the pipeline file)."""

    _task: TaskSpec | None = None

    @property
    def task(self) -> TaskSpec:
        if self._task is None:
            self._task = load_task(self.options.task, self.context.workdir)
        return self._task

    def task_fingerprint(self) -> dict[str, Any]:
        """The task's content (a task file's edits re-run the step) and its style sample's texts."""
        return {"task": self.task.model_dump(mode="json", by_alias=True, exclude={"style_examples"}), "style": self.task.style_sample(self.context.workdir)}


class ClassPromptsOptions(TaskOptions):
    model: str = DEFAULT_TEACHER
    per_label: int = Field(100, ge=1, description="Prompt rows (so examples) per label")
    subtopics: int = Field(24, ge=0, description="Subtopics the teacher proposes per label (0: none)")
    styles: int | list[str] = Field(0, description="Writing styles: a list to draw from, or how many the teacher should propose (0: none)")
    lengths: list[str] = Field(list(DEFAULT_LENGTHS), min_length=1, description="Lengths to ask for, drawn evenly")
    examples_per_prompt: int = Field(3, ge=0, le=10, description="Real style texts shown in each prompt, rotated")
    filter_subtopics: bool = Field(True, description="Drop a proposed subtopic that MiniLM puts nearer another label's description")
    temperature: float = Field(0.8, ge=0.0)


@register_step("class_prompts")
class ClassPromptsStep(ReadsTask, SourceStep):
    """AttrPrompt: attribute values from the teacher, then balanced prompt rows from their combinations."""

    Options = ClassPromptsOptions
    description = "Ask the teacher for subtopics per label and styles for the register; draw balanced prompt rows from them."

    def fingerprint_extra(self) -> dict[str, Any]:
        # version: how rows are drawn (bumped when the drawing code changes what it yields)
        return {**self.task_fingerprint(), "prompts": [SUBTOPIC_PROMPT, STYLE_PROMPT, EXAMPLE_PROMPT], "version": 2}

    def read(self) -> Iterator[Row]:
        o = self.options
        task = self.task
        style_sample = task.style_sample(self.context.workdir)
        subtopics, strays = self._subtopics_that_fit(task, self._propose_subtopics(task)) if o.subtopics else ({}, {})
        subtopics = with_edge_cases(task, subtopics)
        styles = o.styles if isinstance(o.styles, list) else (
            self._propose(STYLE_PROMPT, {"register": task.text_register, "n": o.styles}, o.styles, "styles") if o.styles else [])
        self._write_attributes({"subtopics": subtopics, "dropped_subtopics": strays, "styles": styles, "style_sample": len(style_sample)})
        rows = prompt_rows(task, subtopics, styles, style_sample, per_label=o.per_label, lengths=o.lengths,
                           examples_per_prompt=o.examples_per_prompt, rng_for=lambda *parts: self.context.rng(self.name, *parts))
        for index, row in enumerate(rows):
            yield {**row, "_meta": {"id": derive_id(self.name, index), "step": self.name, "source": "class_prompts", "label": row["label"]}}

    def _propose_subtopics(self, task: TaskSpec) -> dict[str, list[str]]:
        """Subtopics per label, asked in rounds of at most 12 (a small model asked for 30 at
        once starts repeating itself), merged without near-repeats."""
        proposals = {}
        for label in task.labels:
            others = ", ".join(f'"{name}"' for name in task.names if name != label.name)
            merged: list[str] = []
            for round_index in range(-(-self.options.subtopics // 12)):
                variables = {"register": task.text_register, "label": label.name, "description": label.description, "others": others,
                             "n": min(12, self.options.subtopics)}
                merged = merge_distinct(merged, self._propose(SUBTOPIC_PROMPT, variables, 12, f"subtopics of {label.name}", round_index))
            proposals[label.name] = merged[: self.options.subtopics]
        return proposals

    def _propose(self, template: str, variables: dict[str, Any], n: int, what: str, round_index: int = 0) -> list[str]:
        """A list from the teacher; another sample if one is unusable."""
        prompt = TemplatePrompt(source=template, name="class_prompts")
        for sample_index in range(3 * round_index, 3 * round_index + 3):
            params = SamplingParams(temperature=self.options.temperature, max_tokens=14 * n + 20,
                                    seed=self.context.seed_for(self.name, what, sample_index))
            request = prompt.request(variables, params, sample_index)
            (response,), _usage = self.context.ask(self.options.model, self.name, [request])
            items = clean_items(response.text, n) if response.ok else []
            if len(items) >= min(2, n):
                return items
        raise UserError(f"The teacher {self.options.model} gave no usable list of {what} in 3 tries "
                        f"(last answer: {(response.error or response.text)[:120]!r}).",
                        "Use a stronger teacher, or set the step's `subtopics`/`styles` to 0 to go without them.")

    def _subtopics_that_fit(self, task: TaskSpec, proposals: dict[str, list[str]]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        if not self.options.filter_subtopics:
            return proposals, {}
        from synthwright.embed import load_embedder

        return fitting_subtopics(task, proposals, load_embedder("minilm").embed)

    def _write_attributes(self, attributes: dict[str, Any]) -> None:
        write_json_report(self.context.output_path(f"{self.name}.json"), attributes)


class WriteExamplesOptions(GenerateOptions):
    model: str = DEFAULT_TEACHER
    prompt: str | None = EXAMPLE_PROMPT
    temperature: float = Field(0.9, ge=0.0)
    max_tokens: int = Field(160, ge=1)
    output_column: str = "text"
    min_words: int = Field(3, ge=1, description="Drop cleaned texts shorter than this")
    max_words: int = Field(120, ge=1, description="Drop cleaned texts longer than this")


@register_step("write_examples")
class WriteExamplesStep(GenerateStep):
    """`generate` with the labelled-example prompt; each text is cleaned as it arrives, so
    the novelty gate compares clean texts."""

    Options = WriteExamplesOptions
    description = "The teacher writes one text per prompt row (label + attributes + style examples); scaffolding is stripped, bad texts dropped by reason."

    def fingerprint_extra(self) -> dict[str, Any]:
        return {**super().fingerprint_extra(), "cleaning": CLEANING_VERSION}

    def _child(self, result, row, sample_index, response):
        child = super()._child(result, row, sample_index, response)
        if child is None:
            return None
        column = self.options.output_column
        echoes = [row[key] for key in ("style", "subtopic", "length") if isinstance(row.get(key), str) and row[key]]
        cleaned = clean_text(child[column], [row["label"]], min_words=self.options.min_words, max_words=self.options.max_words,
                             echoes=echoes)
        child = {key: value for key, value in child.items() if key not in ("examples", "description", "register")}
        child = with_meta({**child, column: cleaned.text, f"{column}_raw": child[column]}, recipe="write_examples",
                          label=row["label"], cleaned=cleaned.stripped or None)
        if cleaned.drop is not None:
            result.drop(child, cleaned.drop)
            return None
        return child


class CleanTextOptions(StepOptions):
    column: str = "text"
    label_column: str | None = Field("label", description="Drop texts that name their own label (None: skip that check)")
    min_words: int = Field(3, ge=1)
    max_words: int = Field(120, ge=1)


@register_step("clean_text")
class CleanTextStep(RowStep):
    Options = CleanTextOptions
    description = "Strip a teacher's scaffolding (preambles, markdown, field labels, quotes) from a text column; drop empty, refused or off-length texts by reason."
    default_batch_size = 1024

    def required_columns(self) -> tuple[str, ...]:
        return (self.options.column,)

    def fingerprint_extra(self) -> dict[str, Any]:
        return {"cleaning": CLEANING_VERSION}

    def process(self, rows: list[Row]) -> BatchResult:
        o = self.options
        result = BatchResult.for_input(len(rows))
        for row in rows:
            labels = [str(row[o.label_column])] if o.label_column and row.get(o.label_column) is not None else []
            cleaned = clean_text(str(row.get(o.column) or ""), labels, min_words=o.min_words, max_words=o.max_words)
            out = with_meta({**row, o.column: cleaned.text}, cleaned=cleaned.stripped or None)
            if cleaned.drop is None:
                result.keep(out)
            else:
                result.drop(out, cleaned.drop)
        return result

