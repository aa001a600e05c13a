"""Pipeline configuration: YAML validated by typed models, errors with file and line.

```yaml
name: questions
seed: 13
models:                       # optional: models with settings, named by id in the steps
  - id: writer
    spec: openai:gpt-4o-mini
    options: {max_concurrency: 16, price: 0.15/0.60}
steps:
  - name: topics
    uses: load
    with: {path: topics.jsonl}
  - name: questions
    uses: generate            # input: the previous step unless `input:` names another
    with: {model: writer, template: question.j2, samples: 2}   # or an inline spec
```

Each step's `with:` is validated against that step type's own `Options` model, and each
model's `options:` against its backend's, so a typo in an option name is an error that
points at its line, never a silently ignored key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthwright.core.step import StepOptions, step_class
from synthwright.errors import UserError
from synthwright.io.rows import check_input_file
from synthwright.llm.spec import ModelDef

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _checked_name(value: str, what: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError(f"{what} is letters, digits, '_', '-' or '.', starting with a letter or digit")
    return value


class _StepProblem(ValueError):
    """A problem a whole-pipeline check found, with where it is (so errors can name the line)."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc


class StepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    uses: str
    input: str | None = Field(None, description="The step whose output this step reads (default: the previous one)")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    batch_size: int | None = Field(None, ge=1)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return _checked_name(value, "a step name")

    def options(self) -> StepOptions:
        return step_class(self.uses).Options.model_validate(self.with_)


class ModelConfig(BaseModel):
    """An entry of `models:`: steps name the model by `id`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The name steps use for this model")
    spec: str = Field(description="The model spec, e.g. llamacpp:qwen2.5-coder-1.5b or openai:gpt-4o-mini")
    options: dict[str, Any] = Field(default_factory=dict, description="The backend's settings (`synthwright steps` lists them)")

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        return _checked_name(value, "a model id")

    def resolved(self) -> ModelDef:
        return ModelDef.build(self.spec, self.options)


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    seed: int = 0
    models: list[ModelConfig] = Field(default_factory=list)
    steps: list[StepConfig] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("a pipeline name is letters, digits, '_', '-' or '.' (it names the run folder)")
        return value

    @model_validator(mode="after")
    def _check_graph(self) -> "PipelineConfig":
        ids: set[str] = set()
        for index, model in enumerate(self.models):
            if model.id in ids:
                raise _StepProblem(("models", index, "id"), f"two models have the id '{model.id}'")
            ids.add(model.id)
        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            if step.name in seen:
                raise _StepProblem(("steps", index, "name"), f"two steps are named '{step.name}'")
            if step.input is not None and step.input not in seen:
                raise _StepProblem(("steps", index, "input"), f"step '{step.name}' reads '{step.input}', which is not an earlier step")
            seen.add(step.name)
        return self

    def model_defs(self) -> dict[str, ModelDef]:
        """The `models:` section, resolved: id -> ModelDef."""
        return {model.id: model.resolved() for model in self.models}

    def models_named_in(self, options: Any) -> dict[str, str]:
        """id -> spec of the models that step options name (a step's fingerprint holds them,
        so a model's new spec re-runs the steps that use it). A name counts wherever it stands
        in a string, alone or as part of one (`likelihood:ID`, `NAME=ID`)."""
        specs = {model.id: model.spec for model in self.models}
        return {name: specs[name] for text in _strings_in(options) for name in re.split(r"[:=]", text) if name in specs}

    def input_of(self, index: int) -> str | None:
        step = self.steps[index]
        if step.input is not None:
            return step.input
        return self.steps[index - 1].name if index > 0 else None


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings_in(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _strings_in(item)]
    return []


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline YAML file; errors name the file and line."""
    from synthwright.pipeline.steps import load_step_types

    load_step_types()
    path = Path(path)
    check_input_file(path, "Pipeline file")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)}).", "Fix the YAML syntax.") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the file must be a mapping with `name` and `steps`.", "See examples/pipeline.yaml.")
    return validate_pipeline(data, source=str(path), root=root)


def validate_pipeline(data: dict[str, Any], source: str = "<pipeline>", root: yaml.Node | None = None) -> PipelineConfig:
    """Validate a pipeline given as plain data (what YAML or the Python API builds)."""
    from synthwright.pipeline.steps import load_step_types

    load_step_types()
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise _located_error(exc, (), source, root) from None
    for index, model in enumerate(config.models):
        _check_model(model, ("models", index), source, root)
    for index, step in enumerate(config.steps):
        try:
            step.options()
        except ValidationError as exc:
            raise _located_error(exc, ("steps", index, "with"), source, root) from None
        except UserError as exc:  # unknown step type
            line = _line_of(root, ("steps", index, "uses"))
            raise UserError(f"{source}:{line}: {exc.problem}" if line else f"{source}: {exc.problem}", exc.fix) from None
    return config


def _check_model(model: ModelConfig, loc: tuple, source: str, root: yaml.Node | None) -> None:
    """A model's spec names a known backend, and its options are that backend's."""
    try:
        model.resolved()
    except ValidationError as exc:
        raise _located_error(exc, loc + ("options",), source, root) from None
    except UserError as exc:  # a bad spec or an unknown backend
        line = _line_of(root, loc + ("spec",))
        raise UserError(f"{source}:{line}: {exc.problem}" if line else f"{source}: {exc.problem}", exc.fix) from None


def _located_error(exc: ValidationError, prefix: tuple, source: str, root: yaml.Node | None) -> UserError:
    first = exc.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    loc = prefix + tuple(first["loc"]) + (cause.loc if isinstance(cause, _StepProblem) else ())
    line = _line_of(root, loc)
    where = f"{source}:{line}" if line else source
    field = ".".join(str(part) for part in loc) or "(top level)"
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    return UserError(f"{where}: {field}: {first['msg']}{more}.", "Fix that entry; `synthwright steps` lists every step type and its options.")


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """1-based line of the YAML node at `loc` (or of its nearest existing parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((key, value) for key, value in node.value if key.value == part), None)
            if pair is None:
                return line
            # The key's line: for a block value (`with:` then its options) the value starts
            # on the next line, but a problem with the whole value belongs to `with:`.
            key, node = pair
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
