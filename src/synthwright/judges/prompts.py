"""Judge prompts. Wording matters a lot for small models (see MODELS.md):

- the instruction comes BEFORE the texts: small models follow what they read first, and a
  trailing instruction after long documents was followed worse;
- pairwise documents are labelled "Document 1" / "Document 2" and the answer is "1" or "2":
  with "A"/"B" labels Qwen-1.5B picked A 77-90% of the time, with this wording it had no
  position bias on clear cases;
- the answer is one token (a digit, Yes/No), so its next-token probabilities are the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthwright.judges.rubric import SCALE, Criterion, Rubric
from synthwright.llm.records import LLMRequest, Message, SamplingParams

POINTWISE_SYSTEM = "You are an impartial data quality judge."
SCALE_CHOICES = tuple(str(i) for i in range(SCALE[0], SCALE[1] + 1))
BINARY_CHOICES = ("Yes", "No")
_GREEDY = SamplingParams(temperature=0.0, max_tokens=1)


def truncate(text: str, max_chars: int | None) -> str:
    """Cut at a word boundary; judging long documents costs time the verdict rarely needs."""
    if max_chars is None or len(text) <= max_chars:
        return text
    cut = text[:max_chars].rsplit(" ", 1)[0]
    return cut + " ..."


def _chat(system: str, user: str, **fields: Any) -> LLMRequest:
    return LLMRequest(messages=(Message(role="system", content=system), Message(role="user", content=user)), **fields)


def _texts_block(rubric: Rubric, text: str, context: str | None, max_chars: int | None) -> str:
    parts = []
    if context is not None:
        parts.append(f"{rubric.context_label}: {truncate(context, max_chars)}")
    parts.append(f"{rubric.text_label}: {truncate(text, max_chars)}")
    return "\n\n".join(parts)


def _scale_lines(criterion: Criterion) -> str:
    if not criterion.anchors:
        return f"{SCALE[0]} = very poor, {SCALE[1]} = excellent"
    return "\n".join(f"{SCALE[0] + i} = {anchor}" for i, anchor in enumerate(criterion.anchors))


def criterion_request(rubric: Rubric, criterion: Criterion, text: str, context: str | None, max_chars: int | None) -> LLMRequest:
    """One criterion, answered with one token whose probabilities give the expected score."""
    label = rubric.text_label.lower()
    if criterion.binary:
        instruction = f"{criterion.question} Answer Yes or No."
        choices = BINARY_CHOICES
    else:
        instruction = (
            f"Rate the {label} for {criterion.name.replace('_', ' ')}. {criterion.question}\n{_scale_lines(criterion)}\n"
            f"Reply with a single digit from {SCALE[0]} to {SCALE[1]}."
        )
        choices = SCALE_CHOICES
    user = f"{instruction}\n\n{_texts_block(rubric, text, context, max_chars)}"
    return _chat(POINTWISE_SYSTEM, user, choices=choices, params=_GREEDY)


def rubric_schema(criteria: tuple[Criterion, ...]) -> dict[str, Any]:
    """JSON schema for a whole-rubric answer: a short reason first (it is read before the
    scores are written, which helps), then one score per criterion."""
    # No maxLength on the reason: llama-cpp-python checks the grammar against the whole
    # vocabulary at every token, and the deeply nested rule a maxLength becomes made that
    # ~7x slower. A reason that runs past max_tokens fails the row as invalid_json, with its text.
    properties: dict[str, Any] = {"reason": {"type": "string"}}
    for c in criteria:
        properties[c.name] = {"type": "boolean"} if c.binary else {"type": "integer", "enum": list(range(SCALE[0], SCALE[1] + 1))}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def rubric_json_request(rubric: Rubric, criteria: tuple[Criterion, ...], text: str, context: str | None, max_chars: int | None) -> LLMRequest:
    """All criteria in one structured answer: for backends that give no probabilities."""
    label = rubric.text_label.lower()
    lines = []
    for c in criteria:
        if c.binary:
            lines.append(f"- {c.name}: {c.question} (true or false)")
        else:
            anchors = "; ".join(f"{SCALE[0] + i} = {a}" for i, a in enumerate(c.anchors)) if c.anchors else f"{SCALE[0]} = very poor, {SCALE[1]} = excellent"
            lines.append(f"- {c.name}: {c.question} ({anchors})")
    instruction = (
        f"Rate the {label} on each criterion:\n" + "\n".join(lines)
        + f"\nAnswer with a JSON object: a \"reason\" of at most 20 words, then one field per criterion "
        f"(an integer from {SCALE[0]} to {SCALE[1]}, or true/false)."
    )
    user = f"{instruction}\n\n{_texts_block(rubric, text, context, max_chars)}"
    return _chat(POINTWISE_SYSTEM, user, json_schema=rubric_schema(criteria), params=SamplingParams(temperature=0.0, max_tokens=160))


def reason_request(rubric: Rubric, text: str, context: str | None, max_chars: int | None) -> LLMRequest:
    """A one-sentence free-text reason (an extra generation: off by default on the probability path)."""
    label = rubric.text_label.lower()
    names = ", ".join(c.name.replace("_", " ") for c in rubric.criteria)
    user = (
        f"In one sentence, judge the {label} for {names}, and say why.\n\n"
        f"{_texts_block(rubric, text, context, max_chars)}"
    )
    return _chat(POINTWISE_SYSTEM, user, params=SamplingParams(temperature=0.0, max_tokens=60, stop=("\n",)))


@dataclass(frozen=True)
class PairwisePrompt:
    """The pairwise question. The defaults are MODELS.md's measured search-relevance wording;
    change `instruction` (and the labels) to fit the data: "supports the claim" for claims,
    "answers the instruction better" for responses."""

    system: str = "You are an impartial search relevance judge."
    # Measured on clear cases with Qwen-1.5B: "Which document is more relevant to ...?" had
    # the second document win 72% of single-order verdicts (both orders agreed on 55% of
    # pairs); this wording: 47.5% and 95%.
    instruction: str = "Which of the two documents answers the search query? Reply with 1 or 2."
    context_label: str = "Query"
    item_label: str = "Document"

    def request(self, context: str, first: str, second: str, max_chars: int | None) -> LLMRequest:
        user = (
            f"{self.instruction}\n\n{self.context_label}: {truncate(context, max_chars)}\n\n"
            f"{self.item_label} 1: {truncate(first, max_chars)}\n\n{self.item_label} 2: {truncate(second, max_chars)}"
        )
        return _chat(self.system, user, choices=("1", "2"), params=_GREEDY)
