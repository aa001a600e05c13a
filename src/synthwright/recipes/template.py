"""A Jinja template rendered per input row: the simplest recipe, and `synthwright generate`'s.

The template's text becomes the user message (or the raw prompt with `raw=True`). Columns
are template variables; a column the template needs but the rows lack is reported up
front, before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from synthwright.errors import UserError
from synthwright.io.rows import check_input_file
from synthwright.llm.records import LLMRequest, Message, SamplingParams

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


class RowRenderError(Exception):
    """One row cannot be rendered (it lacks a column the template uses)."""


@dataclass(frozen=True)
class TemplatePrompt:
    source: str
    name: str = "<template>"
    system: str | None = None
    raw: bool = False

    @classmethod
    def from_file(cls, path: str | Path, system: str | None = None, raw: bool = False) -> "TemplatePrompt":
        path = Path(path)
        check_input_file(path, "Template file")
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError(f"Template file '{path}' is not UTF-8 text.", "Re-save it as UTF-8.") from None
        return cls(source=source, name=str(path), system=system, raw=raw)

    def __post_init__(self):
        try:
            object.__setattr__(self, "_compiled", _ENV.from_string(self.source))
            variables = jinja2.meta.find_undeclared_variables(_ENV.parse(self.source))
        except jinja2.TemplateSyntaxError as exc:
            raise UserError(f"{self.name}:{exc.lineno}: template syntax error: {exc.message}.", "Fix the Jinja syntax.") from None
        object.__setattr__(self, "variables", frozenset(variables))

    def __reduce__(self):
        # A compiled Jinja template does not pickle: a worker process compiles its own.
        return (type(self), (self.source, self.name, self.system, self.raw))

    @property
    def template_hash(self) -> str:
        """Identifies the prompt wording in lineage: same hash, same prompt."""
        text = f"{self.system or ''}\x00{self.raw}\x00{self.source}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def check_columns(self, rows: list[dict[str, Any]]) -> None:
        """Fail before sending anything if no row has a column the template uses."""
        present = set().union(*(row.keys() for row in rows))
        missing = sorted(self.variables - present)
        if missing:
            raise UserError(
                f"Template {self.name} uses column(s) {', '.join(missing)} that the input rows do not have "
                f"(they have: {', '.join(sorted(present)) or 'none'}).",
                "Rename the template variables or the input columns so they match.",
            )

    def render(self, row: dict[str, Any]) -> str:
        try:
            return self._compiled.render(**row)
        except jinja2.UndefinedError as exc:
            raise RowRenderError(f"template needs a value this row lacks: {exc.message}") from None

    def request(
        self, row: dict[str, Any], params: SamplingParams, sample_index: int = 0, system: str | None = None, **extra: Any
    ) -> LLMRequest:
        """The request for one row; `system` replaces the template's system prompt."""
        text = self.render(row)
        if self.raw:
            return LLMRequest(prompt=text, params=params, sample_index=sample_index, **extra)
        system = system or self.system
        messages = ((Message(role="system", content=system),) if system else ()) + (
            Message(role="user", content=text),
        )
        return LLMRequest(messages=messages, params=params, sample_index=sample_index, **extra)


def load_json_schema(path: Path) -> dict[str, Any]:
    check_input_file(Path(path), "JSON schema file")
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"JSON schema file '{path}' is not valid JSON ({exc}).", "Fix the file.") from None
    if not isinstance(schema, dict):
        raise UserError(f"JSON schema file '{path}' holds a {type(schema).__name__}, not an object.", "A schema is a JSON object.")
    return schema

