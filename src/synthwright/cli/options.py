"""Command-line options made from a step's `Options` model.

A command that runs a step takes that step's options as flags: one list (name, type, default,
help) kept in the Options model, not a second hand-copied list in the command. `synthwright
steps` and the docs read the same descriptions.

```python
@app.command("generate")
@with_step_options(GenerateOptions, flags={"model": Flag("--model", "-m")})
def generate(input: Path = typer.Option(...), step_options: dict = None) -> None:
    options = validated(GenerateOptions, step_options)   # UserError naming the flag
```
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any, Literal

import typer
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from synthwright.errors import UserError

STEP_OPTIONS = "step_options"  # the parameter of the command that receives the values


class Flag:
    """How one field appears on the command line, where the default (`--field-name`, the
    field's type and description) does not fit: other flag names, a command-line type for a
    field whose own type has none (a dict), other help, more typer.Option arguments."""

    def __init__(self, *decls: str, type: Any = None, help: str | None = None, **extra: Any):
        self.decls, self.type, self.help, self.extra = decls, type, help, extra


def with_step_options(options: type[BaseModel], *, flags: Mapping[str, Flag] | None = None,
                      skip: Iterable[str] = ()) -> Callable:
    """Decorate a command: it keeps its own parameters and gains one option per field of
    `options` (except `skip`); their values reach it as a dict in `step_options`."""
    flags = dict(flags or {})
    skip = set(skip)
    unknown = (set(flags) | skip) - set(options.model_fields)
    if unknown:
        raise TypeError(f"{options.__name__} has no field(s) {', '.join(sorted(unknown))}")

    def decorate(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != STEP_OPTIONS]
        generated = [_parameter(name, info, flags.get(name, Flag())) for name, info in options.model_fields.items() if name not in skip]
        clash = {p.name for p in own} & {p.name for p in generated}
        if clash:
            raise TypeError(f"{command.__name__} has its own parameter(s) {', '.join(sorted(clash))}: skip those fields")
        names = [p.name for p in generated]

        @functools.wraps(command)
        def wrapper(**values: Any) -> Any:
            chosen = {name: _plain(values.pop(name)) for name in names}
            return command(**values, **{STEP_OPTIONS: chosen})

        parameters = own + generated
        wrapper.__signature__ = inspect.Signature(parameters)  # what typer reads
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


def validated(options: type[BaseModel], values: Mapping[str, Any], flags: Mapping[str, Flag] | None = None) -> BaseModel:
    """The step's options from the flags' values; a bad value is a UserError naming its flag."""
    try:
        return options.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else None
        message = error["msg"].removeprefix("Value error, ")
        where = f"{flag_name(name, (flags or {}).get(name))}: " if name else ""
        raise UserError(f"{where}{message}.", "See the command's --help for what each option takes.") from None


def flag_name(name: str, flag: Flag | None = None) -> str:
    """The long flag of a field, as the command shows it."""
    decls = (flag.decls if flag else ()) or (_default_decl(name),)
    longs = [d for d in decls if d.startswith("--")] or list(decls)
    return longs[0].split("/")[0]


def step_with(options: BaseModel) -> dict[str, Any]:
    """A step's `with:` as YAML would spell it: only what differs from the defaults."""
    return options.model_dump(mode="json", exclude_defaults=True)


def _default_decl(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parameter(name: str, info, flag: Flag) -> inspect.Parameter:
    annotation, extra = (flag.type, {}) if flag.type is not None else _cli_type(info.annotation, name)
    default = _default(info, annotation)
    decls = flag.decls or (_default_decl(name) if annotation is not bool or default is False
                           else f"{_default_decl(name)}/--no-{name.replace('_', '-')}",)
    help_text = flag.help or info.description
    option = typer.Option(default, *decls, help=f"{help_text}." if help_text and not help_text.endswith(".") else help_text,
                          **_bounds(info, annotation), **extra, **flag.extra)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def _default(info, annotation: Any) -> Any:
    if info.default is PydanticUndefined and info.default_factory is None:
        return ...  # required
    value = info.get_default(call_default_factory=True)
    if isinstance(annotation, type) and issubclass(annotation, Enum) and value is not None:
        return annotation(value)
    return list(value) if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    """A choice back to the string the Options model takes."""
    return value.value if isinstance(value, Enum) else value


def _cli_type(annotation: Any, name: str) -> tuple[Any, dict[str, Any]]:
    """The command-line form of a field's type: optional types lose their None (the default
    says it), literals become a choice; a type with no command-line form needs a Flag(type=...)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(inner) == 1:
            annotation = inner[0]
    if typing.get_origin(annotation) is Literal:  # typer shows an Enum as a choice
        values = [str(v) for v in typing.get_args(annotation)]
        return Enum(f"{name}_choice", {v: v for v in values}, type=str), {}
    if annotation in (str, int, float, bool):
        return annotation, {}
    if typing.get_origin(annotation) is list and typing.get_args(annotation)[0] in (str, int, float):
        return annotation, {}
    raise TypeError(f"option '{name}' ({annotation}) has no command-line form: give it a Flag(type=...) or skip it")


def _bounds(info, annotation: Any) -> dict[str, Any]:
    """ge/le limits as typer's min/max, so --help shows the range (gt/lt stay pydantic's)."""
    if annotation not in (int, float):
        return {}
    bounds = {}
    for rule in info.metadata:
        if getattr(rule, "ge", None) is not None:
            bounds["min"] = rule.ge
        if getattr(rule, "le", None) is not None:
            bounds["max"] = rule.le
    return bounds
