"""`filter`: simple text rules on one column, each drop labelled with the rule that fired.

Covers the cheap filters every recipe paper uses: length bounds in words or characters,
a keyword blacklist, patterns that must or must not match, text that starts with
punctuation or non-ASCII (Self-Instruct's rules), and empty answers.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from synthwright.core.lineage import Row
from synthwright.core.step import FilterStep, StepOptions, register_step


class TextRuleOptions(StepOptions):
    column: str = Field(description="The text column the rules look at")
    min_words: int | None = Field(None, ge=0)
    max_words: int | None = Field(None, ge=1)
    min_chars: int | None = Field(None, ge=0)
    max_chars: int | None = Field(None, ge=1)
    blacklist: list[str] = Field([], description="Drop rows containing any of these words (case-insensitive)")
    must_match: str | None = Field(None, description="Regular expression the text must contain")
    must_not_match: str | None = Field(None, description="Regular expression the text must not contain")
    drop_leading_punctuation: bool = False
    drop_non_ascii_start: bool = False
    strip_quotes: bool = Field(False, description="Strip surrounding quotes before the rules (and in the output)")

    @field_validator("must_match", "must_not_match")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        """A bad pattern is found when the pipeline is read, not as a traceback mid-run."""
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return pattern


@register_step("filter")
class TextRuleFilter(FilterStep):
    Options = TextRuleOptions
    description = "Drop rows whose text breaks a rule (length, blacklist, pattern)."

    def __init__(self, name, options: TextRuleOptions, context):
        super().__init__(name, options, context)
        words = [re.escape(w) for w in options.blacklist]
        self._blacklist = re.compile(r"\b(" + "|".join(words) + r")\b", re.IGNORECASE) if words else None
        self._must = re.compile(options.must_match) if options.must_match else None
        self._must_not = re.compile(options.must_not_match) if options.must_not_match else None

    def required_columns(self) -> tuple[str, ...]:
        return (self.options.column,)

    def process(self, rows):
        if self.options.strip_quotes:
            rows = [{**row, self.options.column: _strip_quotes(str(row.get(self.options.column) or ""))} for row in rows]
        return super().process(rows)

    def keep(self, row: Row) -> str | None:
        o = self.options
        text = str(row.get(o.column) or "").strip()
        words = len(text.split())
        checks = (
            (not text, "empty"),
            (o.min_words is not None and words < o.min_words, "too_few_words"),
            (o.max_words is not None and words > o.max_words, "too_many_words"),
            (o.min_chars is not None and len(text) < o.min_chars, "too_short"),
            (o.max_chars is not None and len(text) > o.max_chars, "too_long"),
            (self._blacklist is not None and self._blacklist.search(text) is not None, "blacklisted_word"),
            (self._must is not None and self._must.search(text) is None, "pattern_missing"),
            (self._must_not is not None and self._must_not.search(text) is not None, "pattern_forbidden"),
            (o.drop_leading_punctuation and bool(text) and not text[0].isalnum(), "starts_with_punctuation"),
            (o.drop_non_ascii_start and bool(text) and not text[0].isascii(), "starts_non_ascii"),
        )
        return next((reason for failed, reason in checks if failed), None)


def _strip_quotes(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text
