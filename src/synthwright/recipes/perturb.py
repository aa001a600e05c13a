"""Failure modes real users have, injected on purpose, each tagged in lineage.

Teachers write clean, well-formed requests; real users make typos, leave out referents and
paste half a sentence. These steps put that back:

- `typos`: keyboard-adjacent substitutions, deletions, transpositions, doubled letters,
  casing slips and missing end punctuation, at a per-word rate, seeded per row.
- `malform`: truncation, lost whitespace, shouting, a repeated fragment.
- `ambiguity`: an LLM rewrite that drops a referent or a constraint.
- `mix_real`: blend in a fraction of real rows from a file, marked as real.

Every changed row gains a tag in `_meta.perturbations`, and (by default) keeps the clean
text in `<column>_original`, so a student can be trained to map noisy to clean.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from synthwright.core.lineage import Row, derive_id, meta_of, with_meta
from synthwright.core.step import BatchResult, RowStep, Stage, StepOptions, register_step
from synthwright.io.rows import read_rows
from synthwright.llm.records import LLMRequest, Message, SamplingParams

# QWERTY neighbours: a slipped finger hits one of these instead.
_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
KEYBOARD_NEIGHBOURS: dict[str, str] = {}
for r, row in enumerate(_KEY_ROWS):
    for c, key in enumerate(row):
        near = [row[i] for i in (c - 1, c + 1) if 0 <= i < len(row)]
        for other in (r - 1, r + 1):
            if 0 <= other < len(_KEY_ROWS):
                near += [_KEY_ROWS[other][i] for i in (c - 1, c, c + 1) if 0 <= i < len(_KEY_ROWS[other])]
        KEYBOARD_NEIGHBOURS[key] = "".join(near)

TypoKind = Literal["substitution", "deletion", "transposition", "doubling", "casing"]
TYPO_KINDS: tuple[str, ...] = ("substitution", "deletion", "transposition", "doubling", "casing")
_WORD = re.compile(r"[A-Za-z]{2,}")


def _typo(word: str, kind: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    if kind == "substitution":
        near = KEYBOARD_NEIGHBOURS.get(word[i].lower())
        if not near:
            return word
        new = rng.choice(near)
        return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]
    if kind == "deletion":
        return word[:i] + word[i + 1 :]
    if kind == "transposition":
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "doubling":
        return word[:i] + word[i] + word[i:]
    return word.swapcase() if rng.random() < 0.3 else word[0].swapcase() + word[1:]  # casing


def inject_typos(
    text: str, rate: float, rng: random.Random, kinds: tuple[str, ...] = TYPO_KINDS, drop_end_punctuation: float = 0.0
) -> tuple[str, int]:
    """Give each word of 2+ letters a typo with probability `rate`; returns (text, typos made)."""
    made = 0

    def maybe(match: re.Match) -> str:
        nonlocal made
        word = match.group(0)
        if rng.random() >= rate:
            return word
        changed = _typo(word, rng.choice(kinds), rng)
        made += changed != word
        return changed

    noisy = _WORD.sub(maybe, text)
    if drop_end_punctuation and noisy.rstrip()[-1:] in ".?!" and rng.random() < drop_end_punctuation:
        noisy = noisy.rstrip()[:-1]
        made += 1
    return noisy, made


class TypoOptions(StepOptions):
    column: str
    rate: float = Field(0.05, ge=0.0, le=1.0, description="Probability that a word gets a typo")
    fraction: float = Field(1.0, ge=0.0, le=1.0, description="Share of rows to perturb")
    kinds: list[TypoKind] = Field(list(TYPO_KINDS))
    drop_end_punctuation: float = Field(0.3, ge=0.0, le=1.0, description="Probability of losing the final . ? !")
    keep_original: bool = True


class _PerRowPerturbation(RowStep):
    """Shared shape: pick rows by `fraction` (seeded per row), change their column, tag them."""

    default_batch_size = 1024
    tag = ""

    def required_columns(self) -> tuple[str, ...]:
        return (self.options.column,)

    def process(self, rows: list[Row]) -> BatchResult:
        result = BatchResult.for_input(len(rows))
        for row in rows:
            rng = self.context.rng(self.name, meta_of(row).get("id"))
            if rng.random() >= self.options.fraction:
                result.keep(row)
                continue
            result.keep(self._perturb(row, rng))
        return result

    def _perturb(self, row: Row, rng: random.Random) -> Row:
        column = self.options.column
        text = str(row.get(column) or "")
        noisy, tag = self.perturb_text(text, rng)
        if noisy == text:
            return row
        changed = {**row, column: noisy}
        if self.options.keep_original:
            changed[f"{column}_original"] = text
        tags = list(meta_of(row).get("perturbations") or []) + [tag]
        return with_meta(changed, perturbations=tags)

    def perturb_text(self, text: str, rng: random.Random) -> tuple[str, str]:
        raise NotImplementedError


@register_step("typos")
class TypoStep(_PerRowPerturbation):
    Options = TypoOptions
    description = "Inject keyboard typos, casing slips and missing punctuation at a seeded per-word rate."

    def perturb_text(self, text: str, rng: random.Random) -> tuple[str, str]:
        o = self.options
        noisy, made = inject_typos(text, o.rate, rng, tuple(o.kinds), o.drop_end_punctuation)
        return noisy, f"typos:{made}"


MalformKind = Literal["truncate", "no_whitespace", "shouting", "repeat_fragment", "no_punctuation"]


def malform(text: str, kind: str, rng: random.Random) -> str:
    words = text.split()
    if kind == "truncate" and len(words) > 3:
        return " ".join(words[: max(2, int(len(words) * rng.uniform(0.4, 0.85)))])
    if kind == "no_whitespace":
        return " ".join(text.split())  # newlines and indentation gone: a pasted blob
    if kind == "shouting":
        return text.upper()
    if kind == "repeat_fragment" and len(words) > 3:
        start = rng.randrange(len(words) - 2)
        return " ".join(words + words[start : start + 3])
    if kind == "no_punctuation":
        return re.sub(r"[^\w\s]", "", text)
    return text


class MalformOptions(StepOptions):
    column: str
    fraction: float = Field(0.2, ge=0.0, le=1.0)
    kinds: list[MalformKind] = Field(["truncate", "no_whitespace", "shouting", "repeat_fragment", "no_punctuation"])
    keep_original: bool = True


@register_step("malform")
class MalformStep(_PerRowPerturbation):
    Options = MalformOptions
    description = "Make some inputs malformed: truncated, whitespace lost, all caps, repeated fragment, no punctuation."

    def perturb_text(self, text: str, rng: random.Random) -> tuple[str, str]:
        kind = rng.choice(self.options.kinds)
        return malform(text, kind, rng), f"malformed:{kind}"


AMBIGUITY_PROMPT = """Rewrite the request below the way a hurried real user might send it: remove ONE specific referent (a name, a number, the object being talked about) or ONE constraint, so that it becomes ambiguous or underspecified. Keep everything else the same. Reply with the rewritten request only.

Request:
{text}"""


class AmbiguityOptions(StepOptions):
    column: str
    model: str
    fraction: float = Field(0.2, ge=0.0, le=1.0)
    temperature: float = 0.7
    max_tokens: int = 200
    keep_original: bool = True


@register_step("ambiguity")
class AmbiguityStep(RowStep):
    Options = AmbiguityOptions
    description = "Ask an LLM to drop a referent or a constraint from some rows, making them ambiguous."
    default_batch_size = 32

    def required_columns(self) -> tuple[str, ...]:
        return (self.options.column,)

    def fingerprint_extra(self):
        return {"prompt": AMBIGUITY_PROMPT}

    def process(self, rows: list[Row]) -> BatchResult:
        o = self.options
        result = BatchResult.for_input(len(rows))
        chosen = [i for i, row in enumerate(rows) if self.context.rng(self.name, meta_of(row).get("id")).random() < o.fraction]
        requests = [self._request(rows[i]) for i in chosen]
        answers: dict[int, str | None] = {}

        def collect(index, _request, response):
            answers[chosen[index]] = response.text.strip() if response.ok else None

        result.stats.add_usage(self.context.engine(o.model).run(requests, collect, step=self.name, owner=self.context.owner(self.name)))
        for i, row in enumerate(rows):
            if i not in answers:
                result.keep(row)
            elif answers[i] is None or not answers[i]:
                result.fail(row, "ambiguity rewrite failed")
            else:
                changed = {**row, o.column: answers[i].strip().strip('"')}
                if o.keep_original:
                    changed[f"{o.column}_original"] = row[o.column]
                tags = list(meta_of(row).get("perturbations") or []) + ["ambiguity"]
                result.keep(with_meta(changed, perturbations=tags, model=o.model))
        return result

    def _request(self, row: Row) -> LLMRequest:
        o = self.options
        params = SamplingParams(temperature=o.temperature, max_tokens=o.max_tokens, seed=self.context.seed_for(self.name, meta_of(row).get("id")))
        prompt = AMBIGUITY_PROMPT.format(text=row[o.column])
        return LLMRequest(messages=(Message(role="user", content=prompt),), params=params)


class MixRealOptions(StepOptions):
    path: str = Field(description="A .jsonl or .parquet file of real rows")
    fraction: float = Field(0.2, gt=0.0, lt=1.0, description="Share of real rows in the output")
    column_map: dict[str, str] = Field({}, description="Rename real columns to the synthetic names: {real: synthetic}")


@register_step("mix_real")
class MixRealStep(Stage):
    Options = MixRealOptions
    description = "Blend a fraction of real rows (marked real: true in lineage) into the synthetic rows."

    def run(self, rows: Iterable[Row]) -> BatchResult:
        o = self.options
        synthetic = list(rows)
        path = self.context.resolve(o.path)
        real = read_rows(path)
        wanted = round(len(synthetic) * o.fraction / (1.0 - o.fraction))
        rng = self.context.rng(self.name, "sample")
        picked = rng.sample(range(len(real)), min(wanted, len(real)))
        result = BatchResult.for_input(len(synthetic))
        for row in synthetic:
            result.keep(row)
        for index in sorted(picked):
            renamed = {o.column_map.get(k, k): v for k, v in real[index].items() if k != "_meta"}
            meta = {"id": derive_id(path.name, index), "step": self.name, "source": path.name, "source_index": index, "real": True}
            result.keep({**renamed, "_meta": meta})
        return result
