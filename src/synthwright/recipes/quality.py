"""Cheap quality rules the instruction recipes share (Self-Instruct, Evol-Instruct, Magpie).

Each rule returns a drop reason or None, so a recipe can report exactly why a row went.
"""

from __future__ import annotations

import re

# Self-Instruct drops instructions a text-only model cannot act on (images, files, audio...).
DEFAULT_BLACKLIST = (
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
    "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram",
)
REFUSAL_MARKERS = (
    "sorry", "i cannot", "i can't", "i can not", "i am unable", "i'm unable", "as an ai", "i am not able",
    "i'm not able", "cannot fulfill", "can't help with",
)
# Words that carry no content: a response made only of these (and punctuation) says nothing.
STOP_WORDS = frozenset(
    "a an the and or but if then of to in on at by for with from as is are was were be been being it its this that "
    "these those i you he she we they me him her us them my your our their not no yes so do does did done have has had "
    "can could will would shall should may might must here there what which who whom when where why how all any some".split()
)
SCAFFOLDING = ("#rewritten prompt#", "#given prompt#", "given prompt", "rewritten prompt", "#created prompt#", "prompt rewriter")


def word_count(text: str) -> int:
    return len(text.split())


def length_problem(text: str, min_words: int, max_words: int) -> str | None:
    words = word_count(text)
    if words < min_words:
        return "too_short"
    if words > max_words:
        return "too_long"
    return None


def blacklist_problem(text: str, blacklist: tuple[str, ...] = DEFAULT_BLACKLIST) -> str | None:
    lowered = text.lower()
    hit = next((w for w in blacklist if re.search(rf"\b{re.escape(w)}\b", lowered)), None)
    return "blacklisted_keyword" if hit else None


def start_problem(text: str) -> str | None:
    """Self-Instruct: drop instructions starting with punctuation or a non-ASCII character."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    if not stripped[0].isascii():
        return "starts_non_ascii"
    if not stripped[0].isalnum():
        return "starts_with_punctuation"
    return None


def refusal_problem(response: str, max_words: int = 80) -> str | None:
    """The teacher could not answer: a short response with a refusal marker."""
    lowered = response.lower()
    if word_count(response) < max_words and any(marker in lowered for marker in REFUSAL_MARKERS):
        return "teacher_cannot_answer"
    return None


def stopword_only_problem(response: str) -> str | None:
    words = re.findall(r"[a-z0-9']+", response.lower())
    if not words or all(w in STOP_WORDS for w in words):
        return "response_only_stopwords"
    return None


def scaffolding_problem(text: str) -> str | None:
    lowered = text.lower()
    return "copies_prompt_scaffolding" if any(s in lowered for s in SCAFFOLDING) else None


def clean_generated_text(text: str) -> str:
    """Strip what small models wrap answers in: quotes, a leading label, code fences."""
    text = text.strip()
    text = re.sub(r"^```[a-z]*\n?|\n?```$", "", text).strip()
    text = re.sub(r"^(#?\s*(rewritten|new|created)\s+(prompt|instruction|request)\s*#?\s*:?)\s*", "", text, flags=re.I)
    text = re.sub(r"^\*\*[^*\n]{1,30}\*\*\s*:?\s*", "", text)  # a markdown label such as **Question**:
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def new_content_words(parent: str, evolved: str) -> int:
    """Content words (not stop words) the evolved text has that its parent lacks: a cheap
    measure of information gain that does not depend on a small judge's opinion."""
    def words(text: str) -> set[str]:
        return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in STOP_WORDS}

    return len(words(evolved) - words(parent))
