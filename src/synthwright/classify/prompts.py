"""The teacher's prompts for classification data, and how prompt rows are drawn.

Label-conditioned generation collapses: asked for "a Sci/Tech news article" sixty times, a
small teacher writes about quantum computing half the time. AttrPrompt (Yu et al., 2023)
counters it by having the teacher first propose attribute values (subtopics per label,
styles for the register) and then conditioning each request on a sampled combination. The
combinations are drawn so every subtopic is used about equally (a cycle over a seeded
shuffle), and the real style examples rotate from one round of labels to the next: a round
shares them, so llama.cpp evaluates that part of the prompt once per round, not per request.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from synthwright.classify.task import TaskSpec
from synthwright.core.rotation import rotated_examples  # noqa: F401  (shared with the reranker; tests import it from here)

SUBTOPIC_PROMPT = """\
We are collecting examples of {{ register }} for a text classifier.
One of the classes is "{{ label }}"{% if description %}: {{ description }}{% endif %}.
Other classes are: {{ others }}.

List {{ n }} distinct, specific subtopics that a {{ register }} of class "{{ label }}" could be about. \
Cover the whole breadth of the class, from the most common subtopics to rarer ones; \
each subtopic is a short phrase (2 to 6 words), and none of them should fit another class.
Write one subtopic per line, numbered, and nothing else."""

STYLE_PROMPT = """\
We are collecting examples of {{ register }} for a text classifier.
List {{ n }} distinct ways such a text can be written: the writer, tone or angle, \
each a short phrase (2 to 8 words). Make them as different from each other as real texts of this kind are.
Write one per line, numbered, and nothing else."""

EXAMPLE_PROMPT = """\
{% if examples %}Real examples of {{ register }}:
{% for example in examples %}- {{ example }}
{% endfor %}
{% endif %}Write one new {{ register }} of the class "{{ label }}"{% if description %} ({{ description }}){% endif %}.
It is about: {{ subtopic }}.
Style: {{ style }}. Length: {{ length }}.
Write it in the same form as the real examples. Reply with that one text only: no title line, no label, no list, no markdown."""

DEFAULT_LENGTHS = ("one short sentence", "one sentence", "two sentences")


_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


def clean_items(answer: str, limit: int) -> list[str]:
    """A numbered list from the teacher as usable attribute values: one per line, numbering and
    markdown stripped, distinct, at most `limit`. (Plain lines, not a JSON grammar: a small
    model under a grammar tends to repeat items until its token budget runs out.)"""
    lines = [line for line in answer.splitlines() if line.strip()]
    numbered = [line for line in lines if _NUMBERING.match(line)]
    seen: dict[str, str] = {}
    for line in numbered or lines:  # "Here are 12 subtopics:" above a numbered list is not one
        text = _NUMBERING.sub("", line).strip().strip("*_\"'`").rstrip(".").strip()
        if 1 <= len(text.split()) <= 12 and text.lower() not in seen:
            seen[text.lower()] = text
    return list(seen.values())[:limit]


def fitting_subtopics(task: TaskSpec, proposals: dict[str, list[str]], embed: Callable[[list[str]], Any]
                      ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(kept, dropped) subtopics per label: a subtopic is kept only if its embedding is nearest
    its own label's "name: description". A small teacher lists "Sports news" among World's
    subtopics, and every text written for it would be a mislabelled example. A label left
    with none keeps its first proposal."""
    from synthwright.classify.labelling import label_texts

    label_vectors = embed(label_texts(task))
    kept, dropped = {}, {}
    for index, label in enumerate(task.names):
        items = proposals.get(label, [])
        nearest = (embed(items) @ label_vectors.T).argmax(axis=1).tolist() if items else []
        kept[label] = [item for item, best in zip(items, nearest) if best == index] or items[:1]
        dropped[label] = [item for item, best in zip(items, nearest) if best != index]
    return kept, dropped


def with_edge_cases(task: TaskSpec, subtopics: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each label's subtopics plus the task's edge cases for it, drawn like any other subtopic.
    They skip the MiniLM fit filter on purpose: an edge case sits nearer another label's
    description by nature (that is why the teacher never writes it unasked). A stated edge case
    that repeats a subtopic (or another edge case) is drawn once."""
    return {label: merge_distinct(subtopics.get(label, []), task.edge_cases(label))
            for label in task.names if subtopics.get(label) or task.edge_cases(label)}


def merge_distinct(kept: list[str], new: list[str]) -> list[str]:
    """`kept` plus the items of `new` that do not repeat one already there: a new item whose
    words are mostly (two thirds) those of a kept one is a repeat ("Boxing match (pro)")."""
    def words(text: str) -> set[str]:
        return set(re.findall(r"[a-z0-9]+", text.lower()))

    merged = list(kept)
    for item in new:
        mine = words(item)
        if all(len(mine & words(other)) < 2 / 3 * max(1, min(len(mine), len(words(other)))) for other in merged):
            merged.append(item)
    return merged


def cycle_draw(values: Sequence[str], count: int, rng: random.Random) -> list[str]:
    """`count` values using each about equally often: a shuffled cycle, reshuffled each lap.
    The first n of a longer draw from the same stream are the draw of n."""
    drawn: list[str] = []
    while values and len(drawn) < count:
        lap = list(values)
        rng.shuffle(lap)
        drawn += lap
    return drawn[:count]


def prompt_rows(task: TaskSpec, subtopics: dict[str, list[str]], styles: list[str], style_sample: list[str], *,
                per_label: int, lengths: Sequence[str], examples_per_prompt: int,
                rng_for: Callable[..., random.Random]) -> list[dict[str, Any]]:
    """`per_label` prompt rows per label, labels interleaved (so a partial run stays balanced).

    Each (label, attribute) draws from its own seeded stream, so the rows of a small run are
    the first rows of a larger one: raising `per_label` reuses every request already answered."""
    shuffled_style = list(style_sample)
    rng_for("style sample").shuffle(shuffled_style)
    columns = {}
    for label in task.names:
        columns[label] = {
            "subtopic": cycle_draw(subtopics.get(label) or ["any subtopic of the class"], per_label, rng_for(label, "subtopic")),
            "style": cycle_draw(styles or ["plain"], per_label, rng_for(label, "style")),
            "length": cycle_draw(list(lengths), per_label, rng_for(label, "length")),
        }
    rows = []
    for j in range(per_label):
        for label in task.names:
            rows.append({
                "label": label, "description": task.description(label), "register": task.text_register,
                "subtopic": columns[label]["subtopic"][j], "style": columns[label]["style"][j], "length": columns[label]["length"][j],
                # One window per round of labels: the round's prompts share their start (the real
                # examples), which llama.cpp evaluates once for all of them.
                "examples": rotated_examples(shuffled_style, j, examples_per_prompt),
            })
    return rows
