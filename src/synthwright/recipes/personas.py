"""Personas: who is asking shapes what gets asked.

Prepending a randomised persona ("You are a 45-year-old structural engineer reviewing
seismic codes...") pushes the teacher out of its favourite topics and styles. Two sources:

- `PersonaSampler`: a built-in attribute library (occupation, expertise, age band,
  register, goal), weighted and seeded: the same seed gives the same personas.
- `text_to_persona` step: derive personas from a corpus, Persona Hub style: "who would
  write or need this text?", one persona per document.

The `personas` step attaches one persona to each row (column `persona`, id in lineage);
the `generate` step's `persona_column` option makes it the system prompt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import Field

from synthwright.core.lineage import Row, derive_id, meta_of, with_meta
from synthwright.core.step import BatchResult, RowStep, StepOptions, register_step
from synthwright.llm.records import LLMRequest, Message, SamplingParams

# (value, weight): weights make common people common and rare ones rare, as real traffic is.
OCCUPATIONS = [
    ("software developer", 3), ("high-school teacher", 2), ("nurse", 2), ("student", 4), ("accountant", 2),
    ("structural engineer", 1), ("small-business owner", 2), ("data analyst", 2), ("retired postal worker", 1),
    ("journalist", 1), ("lawyer", 1), ("farmer", 1), ("graphic designer", 1), ("electrician", 1),
    ("pharmacist", 1), ("research biologist", 1), ("customer-support agent", 2), ("chef", 1),
    ("librarian", 1), ("truck driver", 1), ("civil servant", 1), ("product manager", 2),
    ("physics PhD student", 1), ("mechanic", 1), ("musician", 1), ("sales representative", 2),
    ("social worker", 1), ("architect", 1), ("police officer", 1), ("stay-at-home parent", 2),
]
EXPERTISE = [("a complete beginner", 3), ("somewhat familiar with the subject", 4), ("an expert", 2), ("a specialist who wants precise detail", 1)]
AGE_BANDS = [("18-24", 3), ("25-34", 4), ("35-44", 3), ("45-54", 2), ("55-64", 2), ("65+", 1)]
REGISTERS = [
    ("write casually, in short sentences", 4), ("write formally and politely", 2), ("are terse and skip greetings", 3),
    ("are a non-native English speaker who writes simple English", 2), ("ramble a little before getting to the point", 1),
    ("type on a phone, often without capital letters", 2),
]
GOALS = [
    ("need to get a task done at work today", 4), ("are studying for an exam", 2), ("are curious and exploring", 3),
    ("are trying to fix something that broke", 3), ("are comparing options before deciding", 2), ("are preparing to teach others", 1),
]
ATTRIBUTES = {"occupation": OCCUPATIONS, "expertise": EXPERTISE, "age": AGE_BANDS, "register": REGISTERS, "goal": GOALS}


@dataclass(frozen=True)
class Persona:
    id: str
    description: str
    attributes: dict[str, str]


def _weighted(rng: random.Random, options: list[tuple[str, int]]) -> str:
    values, weights = zip(*options)
    return rng.choices(values, weights=weights, k=1)[0]


def describe(attributes: dict[str, str]) -> str:
    occupation = attributes["occupation"]
    article = "an" if occupation[0] in "aeiou" else "a"
    return (
        f"You are {article} {occupation}, aged {attributes['age']}, {attributes['expertise']}. "
        f"You {attributes['register']} and {attributes['goal']}."
    )


class PersonaSampler:
    """Seeded persona draws from the attribute library (or your own, same shape)."""

    def __init__(self, seed: int = 0, attributes: dict[str, list[tuple[str, int]]] | None = None):
        self.attributes = attributes or ATTRIBUTES
        self.seed = seed

    def sample(self, key: object) -> Persona:
        """The persona for `key` (a row id, an index): the same key, the same persona."""
        rng = random.Random(f"{self.seed}:{key}")
        chosen = {name: _weighted(rng, options) for name, options in self.attributes.items()}
        return Persona(id=derive_id("persona", *sorted(chosen.items())), description=describe(chosen), attributes=chosen)


class PersonaOptions(StepOptions):
    output_column: str = "persona"
    source_column: str | None = Field(None, description="Take personas from this column of the input rows instead of the library")


@register_step("personas")
class PersonaStep(RowStep):
    Options = PersonaOptions
    description = "Attach a seeded persona to each row (column `persona`, persona id in lineage)."
    default_batch_size = 1024

    def process(self, rows: list[Row]) -> BatchResult:
        sampler = PersonaSampler(seed=self.context.seed_for(self.name))
        result = BatchResult.for_input(len(rows))
        for row in rows:
            if self.options.source_column:
                text = str(row[self.options.source_column])
                persona = Persona(id=derive_id("persona", text), description=text, attributes={})
            else:
                persona = sampler.sample(meta_of(row).get("id"))
            result.keep(with_meta({**row, self.options.output_column: persona.description}, persona_id=persona.id))
        return result


TEXT_TO_PERSONA_PROMPT = """Read the text below. Who is likely to write, read or need it? Describe that person in one sentence that starts with "You are", naming their job or role, their expertise and what they want. Reply with that sentence only.

Text:
{text}"""


class TextToPersonaOptions(StepOptions):
    column: str = Field(description="The text column of the corpus rows")
    model: str
    max_chars: int = Field(1500, description="Truncate long documents to this many characters")
    output_column: str = "persona"
    temperature: float = 0.7


@register_step("text_to_persona")
class TextToPersonaStep(RowStep):
    Options = TextToPersonaOptions
    description = "Derive a persona from each corpus document (who would write or need this?)."
    default_batch_size = 32

    def fingerprint_extra(self):
        return {"prompt": TEXT_TO_PERSONA_PROMPT}

    def required_columns(self) -> tuple[str, ...]:
        return (self.options.column,)

    def process(self, rows: list[Row]) -> BatchResult:
        o = self.options
        result = BatchResult.for_input(len(rows))
        requests = [
            LLMRequest(
                messages=(Message(role="user", content=TEXT_TO_PERSONA_PROMPT.format(text=str(row[o.column])[: o.max_chars])),),
                params=SamplingParams(temperature=o.temperature, max_tokens=80, seed=self.context.seed_for(self.name, meta_of(row).get("id"))),
            )
            for row in rows
        ]
        answers = {}
        result.stats.add_usage(self.context.engine(o.model).run(requests, lambda i, _r, resp: answers.__setitem__(i, resp), step=self.name,
                                                                        owner=self.context.owner(self.name)))
        for i, row in enumerate(rows):
            response = answers[i]
            text = response.text.strip().strip('"') if response.ok else ""
            if not text.lower().startswith("you are"):
                result.fail(row, response.error or "persona_unparsed: answer does not start with 'You are'")
                continue
            result.keep(with_meta({**row, o.output_column: text}, persona_id=derive_id("persona", text)))
        return result
