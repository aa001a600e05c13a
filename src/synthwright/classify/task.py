"""What a classification task is: its labels (each with a one-line description), the
register its texts are written in, and where real examples of that register live.

A task is written once, in YAML or on the command line, and every classify step reads the
same spec: the prompts, the label check, the students and the evaluation all name labels
the same way. Real labelled rows (the evaluation set, the real-label comparison) are read
through `LabelledTexts`, which refuses a label the spec does not know before any work starts.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from synthwright.errors import UserError
from synthwright.io.rows import iter_rows, read_rows

STYLE_SAMPLE_LIMIT = 50  # real texts shown to the teacher as examples of the register, at most


class LabelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    # Cases on the border with another label that belong to this one, by the task's own rules
    # (AG News files a technology company's earnings under Sci/Tech, not Business). A teacher
    # left alone writes the middle of each class; these are written for on purpose.
    edge_cases: tuple[str, ...] = ()

    @model_serializer(mode="wrap")
    def _without_empty_edges(self, handler: Any) -> dict[str, Any]:
        # A label without edge cases dumps as before, so fingerprints of existing runs hold.
        dumped = handler(self)
        if not self.edge_cases:
            dumped.pop("edge_cases", None)
        return dumped


class TaskSpec(BaseModel):
    """Labels, register and (optionally) a small real style sample."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    labels: tuple[LabelSpec, ...] = Field(description="The classes, each with a one-line description")
    # `register` is the YAML name; the attribute is `text_register` (BaseModel has a `register`).
    text_register: str = Field("short text", alias="register", description="What the texts are, e.g. 'news article (headline and first sentence)'")
    style_examples: str | None = Field(None, description="JSONL/Parquet of real texts in the register (at most 50 are used; never the evaluation set)")
    style_columns: tuple[str, ...] = Field(("text",), description="Columns joined to make one style text")
    style_limit: int = Field(20, ge=1, le=STYLE_SAMPLE_LIMIT)
    style_min_words: int = Field(0, ge=0, description="Skip style texts shorter than this (a train file of phrases holds fragments)")

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_from_mapping(cls, value: Any) -> Any:
        """`labels: {World: "...", Sports: "..."}` is the short form of a list of {name, description};
        a label's value may also be a mapping `{description: ..., edge_cases: [...]}`."""
        if isinstance(value, dict):
            return [{"name": str(name), **spec} if isinstance(spec, dict) else {"name": str(name), "description": spec or ""}
                    for name, spec in value.items()]
        return value

    @model_validator(mode="after")
    def _distinct_labels(self) -> "TaskSpec":
        names = [label.name for label in self.labels]
        if len(names) < 2:
            raise ValueError("a classification task needs at least two labels")
        repeated = [name for name, count in Counter(names).items() if count > 1]
        if repeated:
            raise ValueError(f"label '{repeated[0]}' is given twice")
        return self

    @property
    def names(self) -> list[str]:
        return [label.name for label in self.labels]

    def description(self, name: str) -> str:
        return next(label.description for label in self.labels if label.name == name)

    def edge_cases(self, name: str) -> list[str]:
        return list(next(label.edge_cases for label in self.labels if label.name == name))

    def index(self, name: str) -> int:
        return self.names.index(name)

    def style_sample(self, workdir: Path) -> list[str]:
        """The real style texts (the first `style_limit` long enough in the file), or none."""
        if not self.style_examples:
            return []
        path = Path(self.style_examples).expanduser()
        texts = (join_columns(row, self.style_columns) for row in iter_rows(path if path.is_absolute() else workdir / path))
        return list(itertools.islice((t for t in texts if t and len(t.split()) >= self.style_min_words), self.style_limit))


def join_columns(row: dict[str, Any], columns: Sequence[str]) -> str:
    """The text of a row: its named columns joined (a title and a body become one text)."""
    parts = [str(row[c]).strip() for c in columns if row.get(c) not in (None, "")]
    return " ".join(parts)


def load_task(value: TaskSpec | dict | str, workdir: Path) -> TaskSpec:
    """A task given inline (a mapping) or as a path to a YAML file."""
    if isinstance(value, TaskSpec):
        return value
    base = None
    if isinstance(value, str):
        path = Path(value).expanduser()
        path = path if path.is_absolute() else workdir / path
        if not path.is_file():
            raise UserError(f"Task file '{path}' does not exist.", "Give a YAML file with `labels:` (and `register:`), or the task inline.")
        try:
            value = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise UserError(f"Task file '{path}' is not valid YAML: {exc}.", "Fix the file.") from None
        if not isinstance(value, dict):
            raise UserError(f"Task file '{path}' holds no mapping.", "Write `labels:` and `register:` at the top level.")
        base = path.parent
    try:
        task = TaskSpec.model_validate(value)
    except ValidationError as exc:
        problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'task'}: {e['msg']}" for e in exc.errors())
        raise UserError(f"The task spec is invalid: {problem}.", "Give `labels` as {NAME: description} (or {NAME: {description: ..., edge_cases: [...]}}) with at least two labels.") from None
    if task.style_examples and base is not None and not Path(task.style_examples).expanduser().is_absolute():
        # A task file's paths are relative to the file, wherever the pipeline that names it lives.
        task = task.model_copy(update={"style_examples": str(base / task.style_examples)})
    return task


@dataclass(frozen=True)
class LabelledTexts:
    """Real texts with labels named as in the task spec (an evaluation or training set)."""

    ids: list[str]
    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def per_label(self) -> Counter:
        return Counter(self.labels)

    def subset(self, positions: Sequence[int]) -> "LabelledTexts":
        return LabelledTexts([self.ids[i] for i in positions], [self.texts[i] for i in positions], [self.labels[i] for i in positions])

    def sample_per_label(self, per_label: int, seed: int) -> "LabelledTexts":
        """The first `per_label` rows of each label after a seeded shuffle (the few-shot set)."""
        import random

        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        taken: Counter = Counter()
        chosen = []
        for i in order:
            if taken[self.labels[i]] < per_label:
                taken[self.labels[i]] += 1
                chosen.append(i)
        return self.subset(sorted(chosen))

    def stratified_positions(self, limit: int | None, seed: int) -> list[int]:
        """Positions of at most `limit` rows, each label's share as in the whole set (largest
        remainder, so the shares add up to `limit` exactly), in file order."""
        if limit is None or limit >= len(self):
            return list(range(len(self)))
        import random

        rng = random.Random(seed)
        counts = self.per_label()
        exact = {label: limit * count / len(self) for label, count in counts.items()}
        quota = {label: int(value) for label, value in exact.items()}
        for label in sorted(exact, key=lambda l: (quota[l] - exact[l], l))[: limit - sum(quota.values())]:
            quota[label] += 1
        chosen = []
        for label in sorted(counts):
            positions = [i for i, value in enumerate(self.labels) if value == label]
            rng.shuffle(positions)
            chosen += positions[: quota[label]]
        return sorted(chosen)

    def stratified_sample(self, limit: int | None, seed: int) -> "LabelledTexts":
        """At most `limit` rows, the same share of each label as the whole set."""
        return self.subset(self.stratified_positions(limit, seed))


def load_labelled(path: str | Path, task: TaskSpec, *, text_columns: Sequence[str] = ("text",), label_column: str = "label_text",
                  what: str = "evaluation file") -> LabelledTexts:
    """Rows of a JSONL/Parquet file as (id, text, label); every label must be one of the task's."""
    rows = read_rows(path)
    missing_text = [i for i, row in enumerate(rows) if not join_columns(row, text_columns)]
    if len(missing_text) == len(rows):
        raise UserError(f"The {what} '{path}' has no text in column(s) {', '.join(text_columns)}.",
                        f"Name the text column(s) it has (its first row has: {', '.join(sorted(rows[0]))}).")
    if any(label_column not in row for row in rows):
        raise UserError(f"The {what} '{path}' has rows without a '{label_column}' column.",
                        f"Name the label column it has (its first row has: {', '.join(sorted(rows[0]))}).")
    unknown = sorted({str(row[label_column]) for row in rows} - set(task.names))
    if unknown:
        raise UserError(f"The {what} '{path}' has label(s) {', '.join(repr(u) for u in unknown)} that the task spec does not name "
                        f"(it names: {', '.join(task.names)}).",
                        "Add those labels to the spec (with a description), or use the file's label names in the spec.")
    kept = [row for row in rows if join_columns(row, text_columns)]
    return LabelledTexts(
        ids=[str(row.get("id", i)) for i, row in enumerate(kept)],
        texts=[join_columns(row, text_columns) for row in kept],
        labels=[str(row[label_column]) for row in kept],
    )
