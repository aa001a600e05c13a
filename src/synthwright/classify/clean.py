"""Cleaning what the teacher wrote into a text a real user could have written.

Small teachers wrap their texts in scaffolding: "Sure! Here is ...", "**Headline:**",
"Source: New York Times", code fences, surrounding quotes, a trailing "(Word count: 32)".
Each of these is stripped, and the kinds stripped are recorded on the row; a text that is
left empty, is a refusal, still names its own class, or falls outside the length bounds is
dropped with that reason. Nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

CLEANING_VERSION = 2  # in the fingerprint of every step that cleans: a changed rule re-runs them

_PREAMBLE = re.compile(
    r"^\s*(sure|certainly|of course|okay|ok|here(?:'s| is| are)|below is)\b[^\n]*?(:|\n)\s*", re.IGNORECASE)
_FENCE = re.compile(r"^```[a-z]*\s*|\s*```$", re.IGNORECASE)
_FIELD_LINE = re.compile(
    r"^\s*[#>*_\s]*(source|date|dateline|byline|author|category|class|label|sentiment|topic|subtopic|style|tone|length|"
    r"word count|note)\s*[*_]*\s*:[ \t]*(?:\S+[ \t]*){0,6}$",  # a short field line; a long one is prose
    re.IGNORECASE | re.MULTILINE,
)
_FIELD_PREFIX = re.compile(
    r"^\s*[#>*_\s]*(headline|title|article|text|review|sentence|news|summary|body|example|snippet)\s*[*_]*\s*:\s*[*_]*\s*",
    re.IGNORECASE | re.MULTILINE,
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.+)$", re.MULTILINE)
_MARKDOWN = re.compile(r"(\*\*|__|\*|^#+\s*|^\s*[-•]\s+)", re.MULTILINE)
_TRAILING_NOTE = re.compile(r"\s*\((?:word count|words|\d+\s+words)[^)]*\)\s*$", re.IGNORECASE)
_QUOTES = ('"', "'", "“", "”", "‘", "’", "«", "»")
_REFUSAL = re.compile(r"\b(I'm sorry|I am sorry|I cannot|I can't|as an AI|I'm unable|I am unable)\b", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[(?:[A-Z][a-z]+ ?){1,3}\]|\b(?:XYZ|ABC Corp|Lorem ipsum)\b")


@dataclass
class Cleaned:
    text: str
    stripped: list[str] = field(default_factory=list)  # kinds of scaffolding removed
    drop: str | None = None  # the reason the text cannot be used, or None


def _sub(pattern: re.Pattern, text: str, kind: str, stripped: list[str], repl: str = "") -> str:
    new = pattern.sub(repl, text)
    if new != text:
        stripped.append(kind)
    return new


def _leading(phrases: Sequence[str]) -> re.Pattern:
    """A pattern for any of `phrases` written in front of a text, followed by a colon."""
    return re.compile(r"^\s*[*_]*(" + "|".join(re.escape(p) for p in phrases) + r")[*_]*\s*:\s*", re.IGNORECASE)


def _unquote(text: str, stripped: list[str]) -> str:
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES and text.count(text[0]) <= 2:
        text = text[1:-1].strip()
        stripped.append("quotes")
    return text


def clean_text(text: str, labels: Sequence[str] = (), *, min_words: int = 3, max_words: int = 120, echoes: Sequence[str] = ()) -> Cleaned:
    """`text` without scaffolding, and the reason to drop it if there is one. `echoes` are
    phrases of the prompt (the style asked for) that a teacher may write in front of its text."""
    stripped: list[str] = []
    text = (text or "").strip()
    text = _sub(_FENCE, text, "code_fence", stripped)
    text = _sub(_PREAMBLE, text, "preamble", stripped)
    if labels:  # "Sports: The Yankees won." - the class written in front of the text
        text = _sub(_leading(labels), text, "label_prefix", stripped)
    if echoes:  # "A report quoting an official: ..." - the style asked for, written in front
        text = _sub(_leading(echoes), text, "prompt_echo", stripped)
    items = _LIST_ITEM.findall(text)
    if len(items) >= 2:  # asked for one text, the teacher wrote a list: keep its first item
        text = items[0]
        stripped.append("list_first_item")
    text = _sub(_FIELD_LINE, text, "field_line", stripped)
    text = _sub(_FIELD_PREFIX, text, "field_prefix", stripped)
    text = _sub(_MARKDOWN, text, "markdown", stripped)
    text = _sub(_TRAILING_NOTE, text, "word_count", stripped)
    text = " ".join(text.split())  # one paragraph, as real short texts are
    text = _unquote(text, stripped)
    return Cleaned(text=text, stripped=sorted(set(stripped)), drop=_drop_reason(text, labels, min_words, max_words))


def _drop_reason(text: str, labels: Sequence[str], min_words: int, max_words: int) -> str | None:
    words = len(text.split())
    if not text:
        return "empty"
    if _REFUSAL.search(text):
        return "refusal"
    if _PLACEHOLDER.search(text):
        return "placeholder"
    if words < min_words:
        return "too_short"
    if words > max_words:
        return "too_long"
    if any(re.search(rf"\b(class|label|category)\b\W+{re.escape(label)}\b", text, re.IGNORECASE) for label in labels):
        return "names_its_label"
    return None
